import { useLocation } from "preact-iso";
import { useEffect, useState } from "preact/hooks";
import { describe } from "../action";
import { api } from "../api";
import { TimeBars, type Bucket } from "../charts/time-bars";
import { TopBars } from "../charts/top-bars";
import { percent } from "../format";

interface Figures {
  conversations: number;
  fallback_conversations: number;
  sessions: number;
  users: number;
  new_users: number;
}

interface Analytics {
  from: number;
  to: number;
  bucket: "hour" | "day" | "week";
  series: (Bucket & Figures)[];
  totals: Figures & { fallback_rate: number | null };
  top_intents: { name: string; conversations: number }[];
  top_actions: { name: string; conversations: number }[];
  fallback: { intent: string; action: string };
}

const DAY = 86400;
const RANGES = [7, 30, 90];
const BUCKETS = ["hour", "day", "week"] as const;
const MAX_BUCKETS = 1000; // as the API allows
const BUCKET_SECONDS = { hour: 3600, day: DAY, week: 7 * DAY };

/** Whole UTC days (the buckets' time zone) ending today; `to` is inclusive like the list's `until`. */
export function range(days: number, now: number = Date.now() / 1000): { from: number; to: number } {
  const today = Math.floor(now / DAY) * DAY;
  return { from: today - (days - 1) * DAY, to: today + DAY - 0.001 };
}

/** The conversation list of the same conversations: its filters are the API's parameters. */
function listOf(from: number, to: number, filter: Record<string, string> = {}): string {
  return `/conversations?${new URLSearchParams({ ...filter, start: String(from), until: String(to) })}`;
}

export function AnalyticsPage() {
  const { query, route } = useLocation();
  const days = RANGES.includes(Number(query.days)) ? Number(query.days) : 30;
  const bucket = (BUCKETS as readonly string[]).includes(query.bucket) ? (query.bucket as Analytics["bucket"]) : "day";
  const [data, setData] = useState<Analytics | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const { from, to } = range(days);
    setError(null);
    api
      .get<Analytics>(`/api/statistics/analytics?${new URLSearchParams({ from: String(from), to: String(to), bucket })}`)
      .then(setData, (e) => setError(describe(e)));
  }, [days, bucket]);
  const choose = (next: { days?: number; bucket?: Analytics["bucket"] }) => {
    const n = next.days ?? days;
    // A period with more buckets than the API gives goes by day instead.
    const fits = (b: Analytics["bucket"]) => (n * DAY) / BUCKET_SECONDS[b] <= MAX_BUCKETS;
    const b = [next.bucket, bucket].find((x) => x && fits(x)) ?? "day";
    route(`/analytics?${new URLSearchParams({ days: String(n), bucket: b })}`);
  };
  // A bucket's list ends 1 ms before the next bucket starts: the list's `until` is inclusive.
  const bucketList = (b: Bucket, filter?: Record<string, string>) => listOf(b.start, data && b.end >= data.to ? data.to : b.end - 0.001, filter);

  return (
    <section aria-labelledby="analytics-title" class="analytics">
      <h1 id="analytics-title">Analytics</h1>
      <div class="toolbar" role="group" aria-label="Period">
        {RANGES.map((n) => (
          <button type="button" aria-pressed={n === days} onClick={() => choose({ days: n })}>
            Last {n} days
          </button>
        ))}
        <label>
          Bars per{" "}
          <select value={bucket} onChange={(e) => choose({ bucket: (e.currentTarget as HTMLSelectElement).value as Analytics["bucket"] })}>
            {BUCKETS.map((b) => (
              <option value={b} disabled={(days * DAY) / BUCKET_SECONDS[b] > MAX_BUCKETS}>
                {b}
              </option>
            ))}
          </select>
        </label>
        <span class="hint">times in UTC; every chart opens the conversations it counts</span>
      </div>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      {!data && !error && <p role="status">Loading…</p>}
      {data && (
        <>
          <dl class="figures" aria-label="Totals of the period">
            <div>
              <dt>Conversations</dt>
              <dd>
                <a href={listOf(data.from, data.to)}>{data.totals.conversations}</a>
              </dd>
            </div>
            <div>
              <dt>Users</dt>
              <dd>{data.totals.users}</dd>
            </div>
            <div>
              <dt>New users</dt>
              <dd>{data.totals.new_users}</dd>
            </div>
            <div>
              <dt>Sessions</dt>
              <dd>{data.totals.sessions}</dd>
            </div>
            <div>
              <dt>Fallback rate</dt>
              <dd>{percent(data.totals.fallback_rate)}</dd>
            </div>
          </dl>
          <TimeBars
            title="Conversations by their latest message"
            buckets={data.series}
            series={[{ name: "conversations", color: "#2563eb", values: data.series.map((b) => b.conversations) }]}
            href={(i) => bucketList(data.series[i])}
          />
          <TimeBars
            title="Users and sessions by when the session started"
            buckets={data.series}
            series={[
              { name: "users", color: "#0f766e", values: data.series.map((b) => b.users) },
              { name: "new users", color: "#5eead4", values: data.series.map((b) => b.new_users) },
              { name: "sessions", color: "#7c3aed", values: data.series.map((b) => b.sessions) },
            ]}
            href={(i) => bucketList(data.series[i])}
          />
          <TimeBars
            title="Fallback rate: conversations where the bot fell back"
            buckets={data.series}
            series={[
              {
                name: "fell back",
                color: "#dc2626",
                values: data.series.map((b) => (b.conversations ? b.fallback_conversations / b.conversations : 0)),
                format: (v) => percent(v),
              },
            ]}
            href={(i) => bucketList(data.series[i])}
          />
          <p class="note">
            A conversation fell back when Rasa classified a message as <code>{data.fallback.intent}</code> or ran{" "}
            <code>{data.fallback.action}</code>: see the conversations{" "}
            <a href={listOf(data.from, data.to, { intent: data.fallback.intent })}>with {data.fallback.intent}</a> and{" "}
            <a href={listOf(data.from, data.to, { action: data.fallback.action })}>with {data.fallback.action}</a>.
          </p>
          <div class="columns">
            <TopBars
              title="Top intents"
              unit="conversations"
              lines={data.top_intents.map((t) => ({ name: t.name, count: t.conversations, href: listOf(data.from, data.to, { intent: t.name }) }))}
            />
            <TopBars
              title="Top actions"
              unit="conversations"
              lines={data.top_actions.map((t) => ({ name: t.name, count: t.conversations, href: listOf(data.from, data.to, { action: t.name }) }))}
            />
          </div>
        </>
      )}
    </section>
  );
}
