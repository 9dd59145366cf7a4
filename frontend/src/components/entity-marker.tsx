import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../api";
import { entityLabel, mark, segments, span, type Entity } from "../training/entities";

/** The message with its entities highlighted (its text stays the message's own: the entities
 * are named in words by <EntityList>). */
export function MarkedText({ text, entities }: { text: string; entities: readonly Entity[] }) {
  return (
    <span class="marked-text">
      {segments(text, entities).map((part) => (part.entity ? <mark title={entityLabel(part.entity)}>{part.text}</mark> : part.text))}
    </span>
  );
}

/** The entities of a message in words: “ny” city (role: to). */
export function EntityList({ text, entities }: { text: string; entities: readonly Entity[] }) {
  if (entities.length === 0) return <span class="empty">—</span>;
  return (
    <ul class="entity-list">
      {entities.map((e) => (
        <li>
          <mark>{text.slice(e.start, e.end)}</mark> {entityLabel(e)}
        </li>
      ))}
    </ul>
  );
}

/** Mark entities of `text` by selecting words (mouse, or Shift+arrows in the read-only field),
 * naming the entity (and optionally its role and group), then "Mark entity". */
export function EntityMarker({
  text,
  entities,
  names,
  onChange,
  focus = false,
}: {
  text: string;
  entities: readonly Entity[];
  /** Whether the message field takes the focus when the marker opens (opened by a key). */
  focus?: boolean;
  /** Entity names to suggest. */
  names: readonly string[];
  onChange: (entities: Entity[]) => void;
}) {
  const field = useRef<HTMLInputElement>(null);
  const entityField = useRef<HTMLInputElement>(null);
  const [chosen, setChosen] = useState<{ start: number; end: number } | null>(null);
  const [entity, setEntity] = useState("");
  const [role, setRole] = useState("");
  const [group, setGroup] = useState("");
  const id = useRef(`marker-${Math.random().toString(36).slice(2, 8)}`).current;
  useEffect(() => {
    if (focus) field.current?.focus();
  }, []);
  const pick = () => {
    const input = field.current;
    if (input) setChosen(span(text, input.selectionStart ?? 0, input.selectionEnd ?? 0));
  };
  const add = () => {
    if (!chosen || !entity.trim()) return;
    const added: Entity = { ...chosen, entity: entity.trim() };
    if (role.trim()) added.role = role.trim();
    if (group.trim()) added.group = group.trim();
    onChange(mark(entities, added));
    setChosen(null);
    field.current?.focus();
  };
  return (
    <fieldset class="entity-marker">
      <legend>Entities of “{text}”</legend>
      <label class="stacked">
        Select the words of an entity
        {/* Not readOnly: Chromium moves no caret in a read-only field, so Shift+arrows could not
            select there. Edits are refused instead (beforeinput covers typing, paste, drop, cut). */}
        <input
          ref={field}
          value={text}
          aria-readonly="true"
          class="selectable"
          onBeforeInput={(e) => e.preventDefault()}
          onSelect={pick}
          onKeyUp={pick}
          onMouseUp={pick}
          onKeyDown={(e) => {
            if (e.key === "Enter") {
              e.preventDefault();
              entityField.current?.focus();
            }
          }}
          aria-describedby={`${id}-chosen`}
        />
      </label>
      <p id={`${id}-chosen`} class="hint" aria-live="polite">
        {chosen ? `Selected “${text.slice(chosen.start, chosen.end)}” (characters ${chosen.start}–${chosen.end})` : "Nothing selected"}
      </p>
      <div
        class="inline"
        onKeyDown={(e) => {
          // Enter names the entity; it must not submit a form the marker sits in.
          if (e.key === "Enter" && (e.target as HTMLElement).matches("input")) {
            e.preventDefault();
            add();
          }
        }}
      >
        <label>
          Entity <input ref={entityField} list={`${id}-names`} value={entity} onInput={(e) => setEntity(e.currentTarget.value)} maxLength={200} />
        </label>
        <label>
          Role <input value={role} onInput={(e) => setRole(e.currentTarget.value)} maxLength={200} size={10} />
        </label>
        <label>
          Group <input value={group} onInput={(e) => setGroup(e.currentTarget.value)} maxLength={200} size={10} />
        </label>
        <button type="button" disabled={!chosen || !entity.trim()} onClick={add}>
          Mark entity
        </button>
      </div>
      <datalist id={`${id}-names`}>
        {names.map((n) => (
          <option value={n} />
        ))}
      </datalist>
      <p class="marked-preview">
        <MarkedText text={text} entities={entities} />
      </p>
      <ul class="entity-list" aria-label={`Entities marked in “${text}”`}>
        {entities.length === 0 && <li class="empty">No entities</li>}
        {entities.map((e) => (
          <li>
            “{text.slice(e.start, e.end)}” {entityLabel(e)}{" "}
            <button type="button" class="small" onClick={() => onChange(entities.filter((x) => x !== e))}>
              Remove<span class="visually-hidden"> {e.entity} “{text.slice(e.start, e.end)}”</span>
            </button>
          </li>
        ))}
      </ul>
    </fieldset>
  );
}

/** The entity names the training data uses, to suggest while marking. */
export function useEntityNames(): string[] {
  const [names, setNames] = useState<string[]>([]);
  useEffect(() => {
    api.get<{ entity: string }[]>("/api/projects/default/entities").then((list) => setNames(list.map((e) => e.entity)), () => {});
  }, []);
  return names;
}
