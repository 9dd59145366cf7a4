// Entities of a message as the API takes them ({start, end, entity, value?, role?, group?};
// docs/design.md §training data), and the pure steps of marking one by selecting text.

export interface Entity {
  start: number;
  end: number;
  entity: string;
  value?: string;
  role?: string;
  group?: string;
}

/** The characters a selection covers, without the spaces at its edges; null when nothing is left. */
export function span(text: string, start: number, end: number): { start: number; end: number } | null {
  let [from, to] = start <= end ? [start, end] : [end, start];
  from = Math.max(0, from);
  to = Math.min(text.length, to);
  while (from < to && /\s/.test(text[from])) from++;
  while (to > from && /\s/.test(text[to - 1])) to--;
  return from < to ? { start: from, end: to } : null;
}

/** `entities` with `added` in its place (by start); the ones it overlaps give way, since Rasa's
 * YAML cannot write overlapping spans. */
export function mark(entities: readonly Entity[], added: Entity): Entity[] {
  return [...entities.filter((e) => e.end <= added.start || e.start >= added.end), added].sort((a, b) => a.start - b.start);
}

/** What the API keeps of an entity (Rasa's parse data adds extractor, confidence, ...); a value
 * that is not the text's own words (a synonym's) is kept. */
export function forApi(text: string, entity: Entity & Record<string, unknown>): Entity {
  const kept: Entity = { start: entity.start, end: entity.end, entity: entity.entity };
  if (typeof entity.value === "string" && entity.value !== text.slice(entity.start, entity.end)) kept.value = entity.value;
  if (entity.role) kept.role = entity.role;
  if (entity.group) kept.group = entity.group;
  return kept;
}

/** The entities Rasa predicted for a message, in the API's shape (those without a span dropped). */
export function predicted(text: string, entities: readonly Record<string, unknown>[] | undefined): Entity[] {
  return (entities ?? [])
    .filter((e) => typeof e.start === "number" && typeof e.end === "number" && typeof e.entity === "string")
    .map((e) => forApi(text, e as unknown as Entity & Record<string, unknown>))
    .reduce<Entity[]>((kept, e) => mark(kept, e), []);
}

/** The text cut at the entities' edges, for showing them highlighted. */
export function segments(text: string, entities: readonly Entity[]): { text: string; entity?: Entity }[] {
  const parts: { text: string; entity?: Entity }[] = [];
  let at = 0;
  for (const entity of [...entities].sort((a, b) => a.start - b.start)) {
    if (entity.start < at) continue;
    if (entity.start > at) parts.push({ text: text.slice(at, entity.start) });
    parts.push({ text: text.slice(entity.start, entity.end), entity });
    at = entity.end;
  }
  if (at < text.length) parts.push({ text: text.slice(at) });
  return parts;
}

/** "entity", "entity (role: r, group: g)": how an entity is named on the screen. */
export function entityLabel(entity: Entity): string {
  const extra = [entity.role && `role: ${entity.role}`, entity.group && `group: ${entity.group}`].filter(Boolean);
  return extra.length ? `${entity.entity} (${extra.join(", ")})` : entity.entity;
}
