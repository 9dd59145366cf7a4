// The intent confusion matrix of an NLU evaluation, rebuilt from what rasa-x keeps of Rasa's
// answer: the per-intent report (its support) and every misclassified example. Rasa's HTTP
// evaluation does not return the matrix itself, but these two hold all of it: a row's
// off-diagonal cells are its errors by predicted intent, its diagonal the rest of its support.

export interface IntentError {
  text: string;
  intent: string;
  intent_prediction: { name: string | null; confidence: number | null };
}

export interface ReportLine {
  precision: number;
  recall: number;
  "f1-score": number;
  support: number;
}

/** sklearn's summary lines of a classification report, which are no intents. */
const SUMMARIES = new Set(["accuracy", "micro avg", "macro avg", "weighted avg"]);

/** The per-intent lines of a report, by intent name. */
export function intentLines(report: Record<string, unknown>): [string, ReportLine][] {
  return Object.entries(report).filter(
    (entry): entry is [string, ReportLine] => !SUMMARIES.has(entry[0]) && typeof entry[1] === "object" && entry[1] !== null,
  );
}

export interface Confusion {
  /** true intents, one row each */
  rows: string[];
  /** predicted intents: the true ones first, then those only ever predicted (e.g. no intent) */
  columns: string[];
  /** counts[row][column] */
  counts: number[][];
}

export const NO_INTENT = "(none)";

export function confusion(report: Record<string, unknown>, errors: IntentError[]): Confusion {
  const lines = intentLines(report).sort(([a], [b]) => a.localeCompare(b));
  const rows = lines.map(([intent]) => intent);
  const predictedOnly = [...new Set(errors.map((e) => e.intent_prediction.name || NO_INTENT))].filter((p) => !rows.includes(p)).sort();
  const columns = [...rows, ...predictedOnly];
  const counts = rows.map(() => columns.map(() => 0));
  for (const error of errors) {
    const row = rows.indexOf(error.intent);
    if (row >= 0) counts[row][columns.indexOf(error.intent_prediction.name || NO_INTENT)] += 1;
  }
  lines.forEach(([, line], row) => {
    const wrong = counts[row].reduce((sum, n) => sum + n, 0);
    counts[row][row] = Math.max(0, line.support - wrong);
  });
  return { rows, columns, counts };
}

/** The matrix as the API gives it when it kept Rasa's predictions ({labels, matrix}, "" for no
 * intent): rows for the intents that have examples, columns for every label. */
export function fromMatrix({ labels, matrix }: { labels: string[]; matrix: number[][] }): Confusion {
  const named = labels.map((label) => label || NO_INTENT);
  const kept = matrix.map((row, i) => [named[i], row] as const).filter(([, row]) => row.some((n) => n > 0));
  return { rows: kept.map(([label]) => label), columns: named, counts: kept.map(([, row]) => [...row]) };
}
