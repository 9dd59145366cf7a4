// The conversation filters: the page's URL query uses the API's own parameter names
// (GET /api/conversations), so a bookmarked or shared view is the API query plus `page`.

export type FilterKind = "values" | "text" | "number" | "confidence" | "boolean" | "date" | "choice";

export interface FilterSpec {
  param: string;
  label: string;
  kind: FilterKind;
  /** The facet route that lists the values to pick from (kind "values"). */
  valuesFrom?: string;
  choices?: readonly string[];
}

export const FILTERS: readonly FilterSpec[] = [
  { param: "intent", label: "Intent", kind: "values", valuesFrom: "/api/conversationIntents" },
  { param: "action", label: "Action", kind: "values", valuesFrom: "/api/conversationActions" },
  { param: "entity", label: "Entity", kind: "values", valuesFrom: "/api/conversationEntities" },
  { param: "policies", label: "Policy", kind: "values", valuesFrom: "/api/conversationPolicies" },
  { param: "input_channels", label: "Channel", kind: "values", valuesFrom: "/api/conversations/inputChannels" },
  { param: "text", label: "Text", kind: "text" },
  { param: "review_status", label: "Review status", kind: "choice", choices: ["unread", "reviewed", "saved_for_later"] },
  { param: "is_flagged", label: "Flagged", kind: "boolean" },
  { param: "in_training_data", label: "In training data", kind: "boolean" },
  { param: "tags_any", label: "Tag", kind: "values" },
  { param: "minimumUserMessages", label: "Min. user messages", kind: "number" },
  { param: "minimumNluConfidence", label: "Min. intent confidence", kind: "confidence" },
  { param: "maximumNluConfidence", label: "Max. intent confidence", kind: "confidence" },
  { param: "minimumConfidence", label: "Min. action confidence", kind: "confidence" },
  { param: "maximumConfidence", label: "Max. action confidence", kind: "confidence" },
  { param: "start", label: "From", kind: "date" },
  { param: "until", label: "Until", kind: "date" },
  { param: "rasa_environment", label: "Environment", kind: "values" },
];

export const PAGE_SIZE = 20;
const BY_PARAM = new Map(FILTERS.map((f) => [f.param, f]));

export interface Chip {
  param: string;
  value: string;
  label: string;
}

/** One chip per value in the query (list parameters split on commas, as the API does). */
export function chips(query: URLSearchParams, describe: (spec: FilterSpec, value: string) => string = plain): Chip[] {
  const result: Chip[] = [];
  for (const spec of FILTERS) {
    for (const value of values(query, spec.param)) {
      result.push({ param: spec.param, value, label: `${spec.label}: ${describe(spec, value)}` });
    }
  }
  return result;
}

function plain(spec: FilterSpec, value: string): string {
  if (spec.kind === "date") return new Date(Number(value) * 1000).toISOString().slice(0, 16).replace("T", " ");
  if (spec.kind === "boolean") return value === "true" ? "yes" : "no";
  return value.replace(/_/g, " ");
}

export function values(query: URLSearchParams, param: string): string[] {
  const spec = BY_PARAM.get(param);
  const multi = spec?.kind === "values" || spec?.kind === "choice";
  return query
    .getAll(param)
    .flatMap((raw) => (multi ? raw.split(",") : [raw]))
    .map((v) => v.trim())
    .filter(Boolean);
}

/** The query with `value` added to `param` (a single-valued filter is replaced); back to page 1. */
export function withFilter(query: URLSearchParams, param: string, value: string): URLSearchParams {
  const spec = BY_PARAM.get(param);
  const next = new URLSearchParams(query);
  next.delete("page");
  const multi = spec?.kind === "values" || spec?.kind === "choice";
  const current = multi ? values(query, param) : [];
  if (!current.includes(value)) current.push(value);
  next.delete(param);
  next.set(param, current.join(","));
  return next;
}

/** The query without one chip's value; back to page 1. */
export function withoutFilter(query: URLSearchParams, param: string, value: string): URLSearchParams {
  const next = new URLSearchParams(query);
  next.delete("page");
  const rest = values(query, param).filter((v) => v !== value);
  next.delete(param);
  if (rest.length) next.set(param, rest.join(","));
  return next;
}

export function pageOf(query: URLSearchParams): number {
  const page = Number(query.get("page") ?? "1");
  return Number.isInteger(page) && page >= 1 ? page : 1;
}

/** The API query of the page shown: the filters as they are, `page` turned into limit/offset. */
export function apiQuery(query: URLSearchParams): string {
  const next = new URLSearchParams();
  for (const spec of FILTERS) for (const v of query.getAll(spec.param)) next.append(spec.param, v);
  next.set("limit", String(PAGE_SIZE));
  next.set("offset", String((pageOf(query) - 1) * PAGE_SIZE));
  return next.toString();
}

/** Date presets, as [label, start in Unix seconds] for the `start` filter. */
export function datePresets(now: Date = new Date()): [string, number][] {
  const midnight = new Date(now.getFullYear(), now.getMonth(), now.getDate());
  const day = 24 * 3600;
  const today = Math.floor(midnight.getTime() / 1000);
  return [
    ["Today", today],
    ["Last 7 days", today - 6 * day],
    ["Last 30 days", today - 29 * day],
  ];
}
