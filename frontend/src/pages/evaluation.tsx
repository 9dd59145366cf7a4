import { confusion, fromMatrix, intentLines, type IntentError } from "../charts/confusion";
import { ConfusionHeatmap } from "../charts/heatmap";
import { percent, when } from "../format";

export interface Evaluation {
  model: string;
  data_version: string;
  created_at: number;
  requested_by: string | null;
  /** the held-back fraction of the NLU data evaluated on; null or absent: all of it */
  holdout?: number | null;
  examples?: number | null;
  accuracy: number | null;
  f1_score: number | null;
  precision: number | null;
  intent_evaluation: {
    report?: Record<string, unknown>;
    errors?: IntentError[];
    /** kept from Rasa's predictions; evaluations stored without it are rebuilt from the errors */
    confusion?: { labels: string[]; matrix: number[][] };
  } | null;
}

const score = (value: number | undefined) => (value == null ? "—" : value.toFixed(2));

/** A model's NLU evaluation: the summary, the per-intent table, the confusion matrix and the
 * misclassified examples, as Rasa reported them. */
export function EvaluationReport({ evaluation }: { evaluation: Evaluation }) {
  const report = evaluation.intent_evaluation?.report ?? {};
  const errors = evaluation.intent_evaluation?.errors ?? [];
  const lines = intentLines(report).sort(([a], [b]) => a.localeCompare(b));
  return (
    <section aria-labelledby="evaluation-title" class="evaluation">
      <h2 id="evaluation-title">Evaluation of {evaluation.model}</h2>
      <p class="summary">
        Accuracy <strong>{percent(evaluation.accuracy)}</strong> · F1 <strong>{score(evaluation.f1_score ?? undefined)}</strong> · precision{" "}
        <strong>{score(evaluation.precision ?? undefined)}</strong> · run {when(evaluation.created_at)} by {evaluation.requested_by ?? "—"} on{" "}
        {evaluation.examples != null && `${evaluation.examples} examples, `}
        {evaluation.holdout != null ? `the held-back ${percent(evaluation.holdout)} of ` : ""}the training data version{" "}
        <code>{evaluation.data_version.slice(0, 8)}</code>
      </p>
      {lines.length === 0 ? (
        <p class="empty">Rasa reported no intents for this model.</p>
      ) : (
        <>
          <table class="list" aria-label="Per-intent results">
            <thead>
              <tr>
                <th scope="col">Intent</th>
                <th scope="col">Precision</th>
                <th scope="col">Recall</th>
                <th scope="col">F1</th>
                <th scope="col">Support</th>
              </tr>
            </thead>
            <tbody>
              {lines.map(([intent, line]) => (
                <tr key={intent}>
                  <th scope="row">{intent}</th>
                  <td>{score(line.precision)}</td>
                  <td>{score(line.recall)}</td>
                  <td>{score(line["f1-score"])}</td>
                  <td>{line.support}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <h3>Confusion matrix</h3>
          <div class="chart-scroll">
            <ConfusionHeatmap
              matrix={evaluation.intent_evaluation?.confusion ? fromMatrix(evaluation.intent_evaluation.confusion) : confusion(report, errors)}
              title="Intent confusion matrix"
            />
          </div>
        </>
      )}
      <h3>Misclassified examples</h3>
      {errors.length === 0 ? (
        <p class="empty">Every example was predicted as its intent.</p>
      ) : (
        <table class="list" aria-label="Misclassified examples">
          <thead>
            <tr>
              <th scope="col">Example</th>
              <th scope="col">Intent</th>
              <th scope="col">Predicted</th>
              <th scope="col">Confidence</th>
            </tr>
          </thead>
          <tbody>
            {errors.map((e) => (
              <tr>
                <th scope="row">{e.text}</th>
                <td>{e.intent}</td>
                <td>{e.intent_prediction.name ?? "no intent"}</td>
                <td>{percent(e.intent_prediction.confidence)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
