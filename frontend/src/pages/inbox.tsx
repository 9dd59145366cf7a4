import { useLocation } from "preact-iso";
import { Fragment } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { useAction } from "../action";
import { api, segment, type Page } from "../api";
import { SelectBox } from "../components/select-box";
import { Confirm } from "../components/confirm";
import { EntityList, EntityMarker, MarkedText, useEntityNames } from "../components/entity-marker";
import { predicted, type Entity } from "../training/entities";
import { percent, when } from "../format";
import { emptySelection, retain, toggle, type Selection } from "../selection";

const P = "/api/projects/default";
const PAGE_SIZE = 50;

interface LogEntry {
  id: number;
  text: string;
  intent: string | null;
  confidence: number | null;
  entities: Record<string, unknown>[];
  time: number;
  conversation_id: string | null;
}

// The triage keys, printed on their buttons (one definition for both).
export const KEYS = { confirm: "c", intent: "i", entities: "e", archive: "a", open: "o", select: "x" } as const;

/** Sent on window whenever the inbox changed, so the navigation's badge counts again. */
export const INBOX_CHANGED = "rasax:inbox-changed";

/** The number of messages waiting in the inbox, for the navigation's badge. */
export async function inboxCount(): Promise<number> {
  return (await api.page<LogEntry>(`${P}/logs?limit=1`)).total;
}

export function Inbox() {
  const { route } = useLocation();
  const [page, setPage] = useState<Page<LogEntry> | null>(null);
  const [intents, setIntents] = useState<string[]>([]);
  const [chosen, setChosen] = useState<Record<number, string>>({});
  // Entities as the annotator marked them; a message not in here keeps Rasa's prediction.
  const [marked, setMarked] = useState<Record<number, Entity[]>>({});
  const [marking, setMarking] = useState<number | null>(null);
  const entityNames = useEntityNames();
  const [selection, setSelection] = useState<Selection>(emptySelection);
  const [current, setCurrent] = useState(0);
  const [shown, setShown] = useState(PAGE_SIZE);
  const [bulk, setBulk] = useState<"confirm" | "archive" | null>(null);
  const rows = useRef<HTMLTableSectionElement>(null);

  const load = async () => {
    const next = await api.page<LogEntry>(`${P}/logs?limit=${shown}`);
    setPage(next);
    setSelection((s) => retain(s, next.items.map((e) => e.id)));
    setCurrent((c) => Math.min(c, Math.max(0, next.items.length - 1)));
    dispatchEvent(new Event(INBOX_CHANGED));
  };
  useEffect(() => {
    load();
  }, [shown]);
  useEffect(() => {
    api.get<{ intent: string }[]>(`${P}/intents`).then((list) => setIntents(list.map((i) => i.intent)), () => {});
  }, []);

  const intentOf = (entry: LogEntry) => chosen[entry.id] ?? entry.intent ?? "";
  const entitiesOf = (entry: LogEntry) => marked[entry.id] ?? predicted(entry.text, entry.entities);
  const annotation = (entry: LogEntry) => ({ intent: intentOf(entry).trim(), entities: entitiesOf(entry) });
  const [message, act, setMessage] = useAction(load);
  const confirmOne = (entry: LogEntry) => {
    const intent = intentOf(entry).trim();
    if (!intent) {
      setMessage(`Choose an intent for “${entry.text}” first`);
      return;
    }
    act(api.put(`${P}/logs/${entry.id}`, annotation(entry)), `“${entry.text}” added to the training data as ${intent}`);
  };
  const archiveOne = (entry: LogEntry) => act(api.del(`${P}/logs/${entry.id}`), `“${entry.text}” archived`);
  const selected = page ? page.items.filter((e) => selection.selected.has(e.id)) : [];
  const runBulk = () => {
    const kind = bulk;
    setBulk(null);
    if (kind === "archive") act(api.post(`${P}/logs/archive`, { ids: selected.map((e) => e.id) }), `${selected.length} messages archived`);
    else if (kind === "confirm")
      act(
        api.post(`${P}/logs/annotations`, selected.map((e) => ({ id: e.id, ...annotation(e) }))),
        `${selected.length} messages added to the training data`,
      );
  };

  const focusRow = (index: number) => {
    setCurrent(index);
    (rows.current?.querySelectorAll("tr[data-entry]")[index] as HTMLElement | undefined)?.focus();
  };
  const onKey = (event: KeyboardEvent) => {
    const target = event.target as HTMLElement;
    // Keys typed in a field or in an open entity marker are theirs, not triage.
    if (!page || target.matches("input, select, textarea") || target.closest(".marking") || event.ctrlKey || event.metaKey || event.altKey) return;
    const entry = page.items[current];
    const key = event.key;
    if (key === "ArrowDown" || key === "j") focusRow(Math.min(current + 1, page.items.length - 1));
    else if (key === "ArrowUp" || key === "k") focusRow(Math.max(current - 1, 0));
    else if (!entry) return;
    else if (key === KEYS.confirm) confirmOne(entry);
    else if (key === KEYS.archive) archiveOne(entry);
    else if (key === KEYS.intent) (rows.current?.querySelectorAll("input[data-intent]")[current] as HTMLInputElement | undefined)?.focus();
    else if (key === KEYS.entities) setMarking(marking === entry.id ? null : entry.id);
    else if (key === KEYS.select) setSelection((s) => toggle(s, page.items.map((e) => e.id), entry.id, event.shiftKey));
    else if (key === KEYS.open && entry.conversation_id) route(`/conversations/${segment(entry.conversation_id)}`);
    else return;
    event.preventDefault();
  };

  return (
    <section aria-labelledby="inbox-title" onKeyDown={onKey}>
      <h1 id="inbox-title">NLU inbox</h1>
      <p class="hint">
        What users said that is not training data yet. Keys: ↑/↓ move, <kbd>{KEYS.confirm}</kbd> confirm, <kbd>{KEYS.intent}</kbd> change intent,{" "}
        <kbd>{KEYS.entities}</kbd> mark entities (select words with Shift+arrows, name the entity; Esc closes),
        <kbd>{KEYS.archive}</kbd> archive, <kbd>{KEYS.open}</kbd> open the conversation, <kbd>{KEYS.select}</kbd> select (shift: a range).
      </p>
      <p role="status" aria-live="polite" class="total">
        {page ? `${page.total.toLocaleString("en")} message${page.total === 1 ? "" : "s"} to review` : "Loading…"}
        {message && <span class="note"> · {message}</span>}
      </p>
      {page && page.total === 0 && <p class="empty">The inbox is empty: new user messages arrive here as Rasa handles them.</p>}
      {selected.length > 0 && (
        <div class="toolbar" role="group" aria-label="Selected messages">
          <button type="button" onClick={() => setBulk("confirm")}>
            Confirm selected ({selected.length})
          </button>
          <button type="button" class="danger" onClick={() => setBulk("archive")}>
            Archive selected ({selected.length})
          </button>
        </div>
      )}
      {page && page.items.length > 0 && (
        <table class="list inbox">
          <thead>
            <tr>
              <th scope="col">
                <span class="visually-hidden">Selected</span>
              </th>
              <th scope="col">Message</th>
              <th scope="col">Intent</th>
              <th scope="col">Entities</th>
              <th scope="col">Confidence</th>
              <th scope="col">Received</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody ref={rows}>
            {page.items.map((entry, index) => (
              <Fragment key={entry.id}>
              <tr data-entry tabIndex={index === current ? 0 : -1} aria-selected={index === current} onFocus={() => setCurrent(index)}>
                <td>
                  <SelectBox
                    label={`Select “${entry.text}”`}
                    checked={selection.selected.has(entry.id)}
                    onToggle={(shift) => setSelection((s) => toggle(s, page.items.map((x) => x.id), entry.id, shift))}
                  />
                </td>
                <th scope="row">
                  <MarkedText text={entry.text} entities={entitiesOf(entry)} />
                </th>
                <td>
                  <input
                    list="inbox-intents"
                    data-intent
                    aria-label={`Intent of “${entry.text}”`}
                    value={intentOf(entry)}
                    onInput={(e) => setChosen({ ...chosen, [entry.id]: e.currentTarget.value })}
                    onKeyDown={(e) => {
                      if (e.key === "Enter") confirmOne(entry);
                      if (e.key === "Escape") (e.currentTarget.closest("tr") as HTMLElement).focus();
                    }}
                  />
                </td>
                <td>
                  <EntityList text={entry.text} entities={entitiesOf(entry)} />
                </td>
                <td>{percent(entry.confidence)}</td>
                <td>{when(entry.time)}</td>
                <td class="actions">
                  <button type="button" aria-keyshortcuts={KEYS.confirm} onClick={() => confirmOne(entry)}>
                    Confirm <kbd>{KEYS.confirm}</kbd>
                  </button>
                  <button
                    type="button"
                    aria-keyshortcuts={KEYS.entities}
                    aria-expanded={marking === entry.id}
                    aria-label={`Entities of “${entry.text}”`}
                    onClick={() => setMarking(marking === entry.id ? null : entry.id)}
                  >
                    Entities <kbd>{KEYS.entities}</kbd>
                  </button>
                  <button type="button" aria-keyshortcuts={KEYS.archive} onClick={() => archiveOne(entry)}>
                    Archive <kbd>{KEYS.archive}</kbd>
                  </button>
                  {entry.conversation_id && (
                    <a href={`/conversations/${segment(entry.conversation_id)}`} aria-keyshortcuts={KEYS.open}>
                      Conversation <kbd>{KEYS.open}</kbd>
                    </a>
                  )}
                </td>
              </tr>
              {marking === entry.id && (
                <tr
                  class="marking"
                  onKeyDown={(e) => {
                    // Esc closes the marker and goes back to the message's row.
                    if (e.key !== "Escape") return;
                    setMarking(null);
                    focusRow(index);
                  }}
                >
                  <td colSpan={7}>
                    <EntityMarker
                      focus
                      text={entry.text}
                      entities={entitiesOf(entry)}
                      names={entityNames}
                      onChange={(list) => setMarked({ ...marked, [entry.id]: list })}
                    />
                  </td>
                </tr>
              )}
              </Fragment>
            ))}
          </tbody>
        </table>
      )}
      {page && page.total > page.items.length && (
        <p>
          Showing {page.items.length} of {page.total}.{" "}
          <button type="button" onClick={() => setShown(shown + PAGE_SIZE)}>
            Show {Math.min(PAGE_SIZE, page.total - page.items.length)} more
          </button>
        </p>
      )}
      <datalist id="inbox-intents">
        {intents.map((i) => (
          <option value={i} />
        ))}
      </datalist>
      {bulk && (
        <Confirm
          title={bulk === "archive" ? `Archive ${selected.length} messages?` : `Add ${selected.length} messages to the training data?`}
          confirm={bulk === "archive" ? "Archive" : "Confirm"}
          onCancel={() => setBulk(null)}
          onConfirm={runBulk}
        >
          <ul>
            {selected.map((e) => (
              <li>
                “{e.text}” {bulk === "confirm" && <>as {intentOf(e)}</>}
              </li>
            ))}
          </ul>
        </Confirm>
      )}
    </section>
  );
}
