import { describe, expect, it } from "vitest";
import { confusion, fromMatrix, intentLines } from "./confusion";

const line = (support: number) => ({ precision: 1, recall: 1, "f1-score": 1, support });
const error = (intent: string, predicted: string | null) => ({ text: "x", intent, intent_prediction: { name: predicted, confidence: 0.5 } });

describe("confusion", () => {
  it("puts each error in its row and predicted column and the rest of the support on the diagonal", () => {
    const report = { greet: line(5), goodbye: line(3), accuracy: 0.75, "macro avg": line(8), "weighted avg": line(8) };
    const m = confusion(report, [error("greet", "goodbye"), error("greet", "goodbye"), error("goodbye", "greet")]);
    expect(m.rows).toEqual(["goodbye", "greet"]);
    expect(m.columns).toEqual(["goodbye", "greet"]);
    expect(m.counts).toEqual([
      [2, 1],
      [2, 3],
    ]);
  });

  it("adds a column for an intent only ever predicted, and for no intent at all", () => {
    const m = confusion({ greet: line(4), "micro avg": line(4) }, [error("greet", "affirm"), error("greet", null)]);
    expect(m.columns).toEqual(["greet", "(none)", "affirm"]);
    expect(m.counts).toEqual([[2, 1, 1]]);
  });

  it("reads no summary line as an intent", () => {
    expect(intentLines({ a: line(1), accuracy: 1, "weighted avg": line(1) }).map(([k]) => k)).toEqual(["a"]);
  });
});

describe("fromMatrix", () => {
  it("keeps the rows of intents with examples and names no intent", () => {
    const m = fromMatrix({ labels: ["", "bye", "hi"], matrix: [[0, 0, 0], [0, 2, 1], [1, 0, 3]] });
    expect(m).toEqual({ rows: ["bye", "hi"], columns: ["(none)", "bye", "hi"], counts: [[0, 2, 1], [1, 0, 3]] });
  });
});
