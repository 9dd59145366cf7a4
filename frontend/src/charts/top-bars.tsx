// The most frequent values as horizontal inline-SVG bars, each a link to the conversations
// holding the value.

const ROW = 24;
const LABEL = 220;
const WIDTH = 520;

export interface TopLine {
  name: string;
  count: number;
  href: string;
}

export function TopBars({ title, lines, unit }: { title: string; lines: TopLine[]; unit: string }) {
  if (lines.length === 0)
    return (
      <figure class="chart">
        <figcaption>{title}</figcaption>
        <p class="empty">None in this period.</p>
      </figure>
    );
  const max = Math.max(1, ...lines.map((l) => l.count));
  const room = WIDTH - LABEL - 50;
  return (
    <figure class="chart">
      <figcaption>{title}</figcaption>
      <svg viewBox={`0 0 ${WIDTH} ${lines.length * ROW}`} role="group" aria-label={title}>
        {lines.map((line, i) => (
          <a href={line.href} aria-label={`${line.name}: ${line.count} ${unit}`} class="top-line">
            <text x={LABEL - 8} y={i * ROW + ROW / 2 + 4} text-anchor="end" class="name">
              {line.name.length > 30 ? `${line.name.slice(0, 29)}…` : line.name}
            </text>
            <rect x={LABEL} y={i * ROW + 4} width={Math.max(2, (line.count / max) * room)} height={ROW - 8} class="bar" />
            <text x={LABEL + Math.max(2, (line.count / max) * room) + 6} y={i * ROW + ROW / 2 + 4} class="count">
              {line.count}
            </text>
          </a>
        ))}
      </svg>
    </figure>
  );
}
