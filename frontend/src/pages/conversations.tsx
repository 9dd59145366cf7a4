import { useLocation } from "preact-iso";
import { describe } from "../action";
import { useEffect, useState } from "preact/hooks";
import { api, segment, type Page } from "../api";
import {
  apiQuery,
  chips,
  datePresets,
  FILTERS,
  pageOf,
  PAGE_SIZE,
  withFilter,
  withoutFilter,
  type FilterSpec,
} from "../filters";
import { percent, REVIEW_LABELS, when } from "../format";

export interface Tag {
  id: number;
  value: string;
  color: string;
}

export interface ConversationSummary {
  sender_id: string;
  n_user_messages: number;
  latest_input_channel: string | null;
  latest_event_time: number | null;
  minimum_intent_confidence: number | null;
  review_status: string;
  intents: string[];
  has_flagged_messages: boolean;
  tags: Tag[];
}

function useQuery(): [URLSearchParams, (next: URLSearchParams) => void] {
  const { url, path, route } = useLocation();
  const query = new URLSearchParams(url.split("?")[1] ?? "");
  const go = (next: URLSearchParams) => {
    const text = next.toString();
    route(text ? `${path}?${text}` : path);
  };
  return [query, go];
}

function AddFilter({ onAdd, tags }: { onAdd: (param: string, value: string) => void; tags: Tag[] }) {
  const [param, setParam] = useState(FILTERS[0].param);
  const [value, setValue] = useState("");
  const [options, setOptions] = useState<string[]>([]);
  const spec = FILTERS.find((f) => f.param === param) as FilterSpec;

  useEffect(() => {
    setValue("");
    setOptions([]);
    if (spec.valuesFrom) api.get<string[]>(spec.valuesFrom).then(setOptions, () => setOptions([]));
  }, [param]);

  const submit = (event: Event) => {
    event.preventDefault();
    let v = value.trim();
    if (!v) return;
    if (spec.kind === "date") v = String(Math.floor(new Date(v).getTime() / 1000));
    if (param === "tags_any") {
      const tag = tags.find((t) => t.value === v);
      if (!tag) return;
      v = String(tag.id);
    }
    onAdd(param, v);
    setValue("");
  };

  const input = () => {
    switch (spec.kind) {
      case "boolean":
        return (
          <select id="filter-value" value={value} onChange={(e) => setValue(e.currentTarget.value)} required>
            <option value="">choose…</option>
            <option value="true">yes</option>
            <option value="false">no</option>
          </select>
        );
      case "choice":
        return (
          <select id="filter-value" value={value} onChange={(e) => setValue(e.currentTarget.value)} required>
            <option value="">choose…</option>
            {spec.choices!.map((c) => (
              <option value={c}>{REVIEW_LABELS[c] ?? c}</option>
            ))}
          </select>
        );
      case "number":
        return <input id="filter-value" type="number" min="0" step="1" value={value} onInput={(e) => setValue(e.currentTarget.value)} required />;
      case "confidence":
        return <input id="filter-value" type="number" min="0" max="1" step="0.01" value={value} onInput={(e) => setValue(e.currentTarget.value)} required />;
      case "date":
        return <input id="filter-value" type="datetime-local" value={value} onInput={(e) => setValue(e.currentTarget.value)} required />;
      default: {
        const listed = param === "tags_any" ? tags.map((t) => t.value) : options;
        return (
          <>
            <input id="filter-value" list="filter-options" value={value} onInput={(e) => setValue(e.currentTarget.value)} required />
            <datalist id="filter-options">
              {listed.map((o) => (
                <option value={o} />
              ))}
            </datalist>
          </>
        );
      }
    }
  };

  return (
    <form class="add-filter" onSubmit={submit} aria-label="Add a filter">
      <label for="filter-param">Filter</label>
      <select id="filter-param" value={param} onChange={(e) => setParam(e.currentTarget.value)}>
        {FILTERS.map((f) => (
          <option value={f.param}>{f.label}</option>
        ))}
      </select>
      <label for="filter-value">Value</label>
      {input()}
      <button type="submit">Add filter</button>
      <span class="presets" role="group" aria-label="Date presets">
        {datePresets().map(([label, start]) => (
          <button type="button" onClick={() => onAdd("start", String(start))}>
            {label}
          </button>
        ))}
      </span>
    </form>
  );
}

// An export is at most this many conversations (10 requests of the API's largest page).
const EXPORT_LIMIT = 10_000;
const EXPORT_PAGE = 1000;

/** Every conversation the filters match (up to EXPORT_LIMIT), as one JSON file to download. */
async function exportList(query: URLSearchParams): Promise<number> {
  const filters = new URLSearchParams(apiQuery(query));
  const all: ConversationSummary[] = [];
  for (let offset = 0; offset < EXPORT_LIMIT; offset += EXPORT_PAGE) {
    filters.set("limit", String(EXPORT_PAGE));
    filters.set("offset", String(offset));
    const page = await api.page<ConversationSummary>(`/api/conversations?${filters}`);
    all.push(...page.items);
    if (all.length >= page.total || page.items.length < EXPORT_PAGE) break;
  }
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([JSON.stringify(all, null, 2)], { type: "application/json" }));
  link.download = "conversations.json";
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
  return all.length;
}

export function ConversationList() {
  const [query, go] = useQuery();
  const [page, setPage] = useState<Page<ConversationSummary> | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [tags, setTags] = useState<Tag[]>([]);
  const apiText = apiQuery(query);
  const current = pageOf(query);

  useEffect(() => {
    api.get<Tag[]>("/api/conversations/tags").then(setTags, () => setTags([]));
  }, []);

  useEffect(() => {
    let live = true;
    setError(null);
    api.page<ConversationSummary>(`/api/conversations?${apiText}`).then(
      (p) => live && setPage(p),
      (e) => live && setError(describe(e)),
    );
    return () => {
      live = false;
    };
  }, [apiText]);

  const pages = page ? Math.max(1, Math.ceil(page.total / PAGE_SIZE)) : 1;
  const toPage = (n: number) => {
    const next = new URLSearchParams(query);
    if (n === 1) next.delete("page");
    else next.set("page", String(n));
    go(next);
  };
  const tagName = (id: string) => tags.find((t) => String(t.id) === id)?.value ?? id;
  const active = chips(query, (spec, value) =>
    spec.param === "tags_any"
      ? tagName(value)
      : spec.kind === "date"
        ? new Date(Number(value) * 1000).toLocaleString()
        : spec.kind === "boolean"
          ? value === "true" ? "yes" : "no"
          : REVIEW_LABELS[value] ?? value,
  );

  return (
    <section aria-labelledby="conversations-title">
      <h1 id="conversations-title">Conversations</h1>
      <AddFilter onAdd={(param, value) => go(withFilter(query, param, value))} tags={tags} />
      {active.length > 0 && (
        <ul class="chips" aria-label="Active filters">
          {active.map((chip) => (
            <li key={`${chip.param}=${chip.value}`} class="chip">
              <span>{chip.label}</span>
              <button type="button" aria-label={`Remove filter ${chip.label}`} onClick={() => go(withoutFilter(query, chip.param, chip.value))}>
                ×
              </button>
            </li>
          ))}
          <li>
            <button type="button" class="link" onClick={() => go(new URLSearchParams())}>
              Clear all
            </button>
          </li>
        </ul>
      )}
      <p role="status" aria-live="polite" class="total">
        {error ? "" : page ? `${page.total.toLocaleString("en")} conversation${page.total === 1 ? "" : "s"}` : "Loading…"}
      </p>
      {page && page.total > 0 && (
        <p>
          <button type="button" onClick={() => exportList(query)}>
            Export {page.total > EXPORT_LIMIT ? `the first ${EXPORT_LIMIT.toLocaleString("en")}` : "these"} as JSON
          </button>
        </p>
      )}
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      {page && page.total === 0 && !error && (
        <p class="empty">
          {active.length
            ? "No conversation matches these filters."
            : "No conversations yet: once Rasa's event broker sends events to this stack they show here."}
        </p>
      )}
      {page && page.items.length > 0 && (
        <table class="list">
          <caption class="visually-hidden">Conversations, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Conversation</th>
              <th scope="col">Latest event</th>
              <th scope="col">User messages</th>
              <th scope="col">Channel</th>
              <th scope="col">Intents</th>
              <th scope="col">Lowest intent confidence</th>
              <th scope="col">Review</th>
              <th scope="col">Tags</th>
            </tr>
          </thead>
          <tbody>
            {page.items.map((c) => (
              <tr key={c.sender_id}>
                <th scope="row">
                  <a href={`/conversations/${segment(c.sender_id)}`}>{c.sender_id}</a>
                  {c.has_flagged_messages && <span class="flag" title="has flagged messages" aria-label="flagged"> ⚑</span>}
                </th>
                <td>{when(c.latest_event_time)}</td>
                <td>{c.n_user_messages}</td>
                <td>{c.latest_input_channel ?? "—"}</td>
                <td>{c.intents.join(", ")}</td>
                <td>{percent(c.minimum_intent_confidence)}</td>
                <td>{REVIEW_LABELS[c.review_status] ?? c.review_status}</td>
                <td>
                  {c.tags.map((t) => (
                    <span class="tag" style={{ borderColor: t.color }}>
                      {t.value}
                    </span>
                  ))}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {page && page.total > PAGE_SIZE && (
        <nav class="pager" aria-label="Pages">
          <button type="button" disabled={current <= 1} onClick={() => toPage(current - 1)}>
            Previous page
          </button>
          <span>
            Page {current} of {pages}
          </span>
          <button type="button" disabled={current >= pages} onClick={() => toPage(current + 1)}>
            Next page
          </button>
        </nav>
      )}
    </section>
  );
}
