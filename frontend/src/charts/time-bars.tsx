// Bars over time as inline SVG: one group of bars per time bucket, each group a link (to the
// conversation list of that bucket), so a chart is also the way into the conversations it counts.

export interface Bucket {
  start: number;
  end: number;
}

export interface Series {
  name: string;
  color: string;
  values: number[];
  /** how a value reads (a count by default) */
  format?: (value: number) => string;
}

const HEIGHT = 160;
const AXIS = 44;
const BOTTOM = 22;
const WIDTH = 760;

/** A bucket's dates as a person reads them (UTC, the buckets' own time zone). */
export function period(bucket: Bucket): string {
  const day = (t: number) => new Date(t * 1000).toISOString().slice(0, 10);
  const hour = (t: number) => new Date(t * 1000).toISOString().slice(0, 16).replace("T", " ");
  const length = bucket.end - bucket.start;
  if (length <= 3600) return `${hour(bucket.start)} UTC`;
  if (length <= 86400) return day(bucket.start);
  return `${day(bucket.start)} – ${day(bucket.end - 1)}`;
}

export function TimeBars({ title, buckets, series, href }: { title: string; buckets: Bucket[]; series: Series[]; href: (i: number) => string }) {
  const max = Math.max(1, ...series.flatMap((s) => s.values));
  const step = (WIDTH - AXIS) / Math.max(1, buckets.length);
  const bar = Math.max(1, (step * 0.8) / series.length);
  const y = (v: number) => HEIGHT - (v / max) * (HEIGHT - 8);
  const format = (s: Series, v: number) => (s.format ? s.format(v) : String(v));
  const labelled = new Set([0, Math.floor((buckets.length - 1) / 2), buckets.length - 1]);
  return (
    <figure class="chart">
      <figcaption>
        {title}
        {series.length > 1 &&
          series.map((s) => (
            <span class="legend">
              <span class="swatch" style={{ background: s.color }} /> {s.name}
            </span>
          ))}
      </figcaption>
      <svg viewBox={`0 0 ${WIDTH} ${HEIGHT + BOTTOM}`} role="group" aria-label={title}>
        <line x1={AXIS} x2={WIDTH} y1={HEIGHT} y2={HEIGHT} class="axis-line" />
        <text x={AXIS - 6} y={y(max) + 4} text-anchor="end" class="tick">
          {format(series[0], max)}
        </text>
        <text x={AXIS - 6} y={HEIGHT} text-anchor="end" class="tick">
          0
        </text>
        {buckets.map((bucket, i) => (
          <a
            href={href(i)}
            class="bucket"
            aria-label={`${period(bucket)}: ${series.map((s) => `${format(s, s.values[i])} ${s.name}`).join(", ")}`}
          >
            <rect x={AXIS + i * step} y={0} width={step} height={HEIGHT} class="hover" />
            {series.map((s, k) => (
              <rect
                x={AXIS + i * step + step * 0.1 + k * bar}
                y={y(s.values[i])}
                width={bar}
                height={HEIGHT - y(s.values[i])}
                fill={s.color}
                data-value={s.values[i]}
              />
            ))}
            {labelled.has(i) && (
              <text
                x={i === buckets.length - 1 ? WIDTH : AXIS + i * step + (i === 0 ? 0 : step / 2)}
                y={HEIGHT + 16}
                text-anchor={i === buckets.length - 1 ? "end" : i === 0 ? "start" : "middle"}
                class="tick"
              >
                {period(bucket).slice(0, 10)}
              </text>
            )}
          </a>
        ))}
      </svg>
    </figure>
  );
}
