import { describe, expect, it } from "vitest";
import { forApi, mark, predicted, segments, span } from "./entities";

describe("marking entities by selecting text", () => {
  it("trims the spaces at a selection's edges and takes a backwards selection", () => {
    const text = "fly to  New York tomorrow";
    expect(span(text, 6, 17)).toEqual({ start: 8, end: 16 });
    expect(span(text, 16, 8)).toEqual({ start: 8, end: 16 });
    expect(span(text, 6, 8)).toBeNull();
    expect(span(text, 3, 3)).toBeNull();
  });

  it("puts an entity in its place and drops the ones it overlaps", () => {
    const city = { start: 7, end: 15, entity: "city" };
    const day = { start: 16, end: 24, entity: "date" };
    expect(mark([day], city)).toEqual([city, day]);
    const newYork = { start: 7, end: 10, entity: "state" };
    expect(mark([city, day], newYork)).toEqual([newYork, day]);
    // Touching spans do not overlap.
    expect(mark([{ start: 0, end: 7, entity: "a" }], city)).toHaveLength(2);
  });

  it("keeps what the API takes of Rasa's predictions", () => {
    const text = "i want ny pizza";
    const rasa = [
      { start: 7, end: 9, entity: "city", value: "New York", extractor: "DIETClassifier", confidence_entity: 0.9, role: "to" },
      { start: 10, end: 15, entity: "food", value: "pizza", group: "1" },
      { entity: "time", value: "2026-01-01" },
    ];
    expect(predicted(text, rasa)).toEqual([
      { start: 7, end: 9, entity: "city", value: "New York", role: "to" },
      { start: 10, end: 15, entity: "food", group: "1" },
    ]);
    expect(forApi(text, { start: 7, end: 9, entity: "city", value: "ny" })).toEqual({ start: 7, end: 9, entity: "city" });
  });

  it("cuts the text at the entities' edges", () => {
    const city = { start: 7, end: 9, entity: "city" };
    expect(segments("i want ny pizza", [city])).toEqual([{ text: "i want " }, { text: "ny", entity: city }, { text: " pizza" }]);
    expect(segments("ny", [{ start: 0, end: 2, entity: "city" }])).toHaveLength(1);
  });
});
