import type { Confusion } from "./confusion";

const CELL = 34;
const LABEL_CHARS = 18;
const short = (label: string) => (label.length > LABEL_CHARS ? `${label.slice(0, LABEL_CHARS - 1)}…` : label);

/** Blue, darker for a larger share of the row: light cells stay readable with dark text. */
function shade(share: number): string {
  const lightness = Math.round(97 - share * 62);
  return `hsl(217 80% ${lightness}%)`;
}

/** A confusion matrix as an SVG heat map: true intents down, predicted across, each cell the
 * count, its colour the count's share of the row (so small intents are as readable as big ones). */
export function ConfusionHeatmap({ matrix, title }: { matrix: Confusion; title: string }) {
  const { rows, columns, counts } = matrix;
  const left = 8 * Math.min(LABEL_CHARS, Math.max(6, ...rows.map((r) => r.length))) + 12;
  const top = 8 * Math.min(LABEL_CHARS, Math.max(6, ...columns.map((c) => c.length))) + 12;
  const width = left + columns.length * CELL + Math.ceil(top * 0.6); // room for the last slanted label
  const height = top + rows.length * CELL + 4;
  return (
    <svg class="heatmap" role="img" aria-label={title} width={width} height={height} viewBox={`0 0 ${width} ${height}`}>
      <title>{title}: true intent by row, predicted intent by column</title>
      {columns.map((column, j) => (
        <text class="axis" x={left + j * CELL + CELL / 2} y={top - 6} transform={`rotate(-60 ${left + j * CELL + CELL / 2} ${top - 6})`}>
          <title>predicted {column}</title>
          {short(column)}
        </text>
      ))}
      {rows.map((row, i) => {
        const total = counts[i].reduce((sum, n) => sum + n, 0) || 1;
        return (
          <g data-row={row}>
            <text class="axis" x={left - 6} y={top + i * CELL + CELL / 2} text-anchor="end" dominant-baseline="middle">
              <title>true {row}</title>
              {short(row)}
            </text>
            {columns.map((column, j) => {
              const share = counts[i][j] / total;
              return (
                <g class="cell" data-true={row} data-predicted={column}>
                  <title>
                    {row} predicted as {column}: {counts[i][j]}
                  </title>
                  <rect x={left + j * CELL} y={top + i * CELL} width={CELL - 2} height={CELL - 2} fill={shade(share)} stroke={i === j ? "#1f2937" : "none"} />
                  <text x={left + j * CELL + (CELL - 2) / 2} y={top + i * CELL + (CELL - 2) / 2} text-anchor="middle" dominant-baseline="middle" fill={share > 0.55 ? "#fff" : "#111827"}>
                    {counts[i][j]}
                  </text>
                </g>
              );
            })}
          </g>
        );
      })}
    </svg>
  );
}
