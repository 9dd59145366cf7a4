import { useLocation } from "preact-iso";
import { useEffect, useState } from "preact/hooks";
import { allowed } from "../access";
import { useAction } from "../action";
import { api, type Page } from "../api";
import { SelectBox } from "../components/select-box";
import { useConfirmDelete } from "../components/confirm-delete";
import { EditDelete, SaveCancel } from "../components/row-actions";
import { EntityList, EntityMarker, MarkedText, useEntityNames } from "../components/entity-marker";
import { forApi, type Entity } from "../training/entities";
import { trainingChanged } from "../training/data-version";
import { emptySelection, retain, toggle, type Selection } from "../selection";
import { useSession } from "../session";

const P = "/api/projects/default";
const PAGE_SIZE = 50;

interface Example {
  id: number;
  text: string;
  intent: string;
  entities: Entity[];
}

interface Intent {
  intent: string;
  example_count: number;
}

/** An example's text, intent and entities (marked by selecting words). An entity whose words an
 * edit of the text moved or changed is dropped rather than left on the wrong characters. */
function ExampleEditor({
  example,
  names,
  onSave,
  onCancel,
}: {
  example: Example;
  names: string[];
  onSave: (change: { text: string; intent: string; entities: Entity[] }) => void;
  onCancel: () => void;
}) {
  const [text, setText] = useState(example.text);
  const [entities, setEntities] = useState<Entity[]>(example.entities.map((e) => forApi(example.text, e as Entity & Record<string, unknown>)));
  const changeText = (next: string) => {
    setEntities(entities.filter((e) => next.slice(e.start, e.end) === text.slice(e.start, e.end)));
    setText(next);
  };
  return (
    <form
      class="example-editor"
      aria-label={`Edit “${example.text}”`}
      onSubmit={(e) => {
        e.preventDefault();
        const intent = String(new FormData(e.currentTarget).get("intent")).trim();
        // The text is saved trimmed: the entities move with it.
        const lead = text.length - text.trimStart().length;
        const trimmed = text.trim();
        const moved = entities.map((x) => ({ ...x, start: x.start - lead, end: x.end - lead })).filter((x) => x.start >= 0 && x.end <= trimmed.length);
        onSave({ text: trimmed, intent, entities: moved });
      }}
    >
      <div class="inline">
        <label>
          Text <input name="text" required maxLength={2000} value={text} onInput={(e) => changeText(e.currentTarget.value)} />
        </label>
        <label>
          Intent <input name="intent" list="training-intents" required defaultValue={example.intent} />
        </label>
        <SaveCancel onCancel={onCancel} />
      </div>
      <EntityMarker text={text} entities={entities} names={names} onChange={setEntities} />
    </form>
  );
}

/** NLU examples by intent: search, add, delete one or many. Search and intent live in the URL. */
export function Examples() {
  const { user, doc } = useSession();
  const { url, path, route } = useLocation();
  const query = new URLSearchParams(url.split("?")[1] ?? "");
  const text = query.get("text") ?? "";
  const intent = query.get("intent") ?? "";
  const mayEdit = allowed(doc, user!.roles, "POST", `${P}/training_examples`);
  const [page, setPage] = useState<Page<Example> | null>(null);
  const [intents, setIntents] = useState<Intent[]>([]);
  const [selection, setSelection] = useState<Selection>(emptySelection);
  const [editing, setEditing] = useState<number | null>(null);
  const entityNames = useEntityNames();

  const search = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (text) search.set("text", text);
  if (intent) search.set("intent", intent);
  const load = async () => {
    const next = await api.page<Example>(`${P}/training_examples?${search}`);
    setPage(next);
    setSelection((s) => retain(s, next.items.map((e) => e.id)));
    api.get<Intent[]>(`${P}/intents`).then(setIntents, () => {});
    trainingChanged();
  };
  useEffect(() => {
    load();
  }, [search.toString()]);

  const setQuery = (name: string, value: string) => {
    const next = new URLSearchParams(query);
    if (value) next.set(name, value);
    else next.delete(name);
    route(next.toString() ? `${path}?${next}` : path, true);
  };
  const [message, act] = useAction(load);
  const add = (event: Event) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const data = new FormData(form);
    const example = { text: String(data.get("text")).trim(), intent: String(data.get("intent")).trim(), entities: [] };
    act(api.post(`${P}/training_examples`, example), `Added “${example.text}” to ${example.intent}`).then(() => form.reset());
  };
  const remove = (examples: Example[]) =>
    act(
      examples.length === 1
        ? api.del(`${P}/training_examples/${examples[0].id}`)
        : api.post(`${P}/training_examples/bulk_delete`, { ids: examples.map((e) => e.id) }),
      `${examples.length} example${examples.length === 1 ? "" : "s"} deleted`,
    );
  const [setDeleting, deleteDialog] = useConfirmDelete<Example[]>(
    (examples) => `Delete ${examples.length} example${examples.length === 1 ? "" : "s"}?`,
    remove,
    (examples) => (
      <ul>
        {examples.map((e) => (
          <li>
            “{e.text}” ({e.intent})
          </li>
        ))}
      </ul>
    ),
  );
  const selected = page ? page.items.filter((e) => selection.selected.has(e.id)) : [];

  return (
    <section aria-labelledby="examples-title">
      <h2 id="examples-title">NLU examples</h2>
      <form
        class="inline"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          setQuery("text", String(new FormData(e.currentTarget).get("text")).trim());
        }}
      >
        <label>
          Search examples <input type="search" name="text" value={text} onChange={(e) => setQuery("text", e.currentTarget.value.trim())} />
        </label>
        <label>
          Intent
          <select value={intent} onChange={(e) => setQuery("intent", e.currentTarget.value)}>
            <option value="">all intents</option>
            {intents.map((i) => (
              <option value={i.intent}>
                {i.intent} ({i.example_count})
              </option>
            ))}
          </select>
        </label>
      </form>
      {mayEdit && (
        <form class="inline" onSubmit={add} aria-label="Add an example">
          <label>
            Example text <input name="text" required maxLength={2000} />
          </label>
          <label>
            Example intent <input name="intent" list="training-intents" required defaultValue={intent} />
          </label>
          <datalist id="training-intents">
            {intents.map((i) => (
              <option value={i.intent} />
            ))}
          </datalist>
          <button type="submit">Add example</button>
        </form>
      )}
      <p role="status" aria-live="polite" class="total">
        {page ? `${page.total.toLocaleString("en")} example${page.total === 1 ? "" : "s"}` : "Loading…"}
        {message && <span class="note"> · {message}</span>}
      </p>
      {mayEdit && selected.length > 0 && (
        <div class="toolbar">
          <button type="button" class="danger" onClick={() => setDeleting(selected)}>
            Delete selected ({selected.length})
          </button>
        </div>
      )}
      {page && page.total === 0 && <p class="empty">No examples match. Add one above, or import Rasa's data files with `rasax-deploy data import`.</p>}
      {page && page.items.length > 0 && (
        <table class="list">
          <thead>
            <tr>
              {mayEdit && (
                <th scope="col">
                  <span class="visually-hidden">Selected</span>
                </th>
              )}
              <th scope="col">Example</th>
              <th scope="col">Intent</th>
              <th scope="col">Entities</th>
              {mayEdit && <th scope="col">Actions</th>}
            </tr>
          </thead>
          <tbody>
            {page.items.map((example) => (
              <tr key={example.id}>
                {mayEdit && (
                  <td>
                    <SelectBox
                      label={`Select “${example.text}”`}
                      checked={selection.selected.has(example.id)}
                      onToggle={(shift) => setSelection((s) => toggle(s, page.items.map((x) => x.id), example.id, shift))}
                    />
                  </td>
                )}
                {editing === example.id ? (
                  <td colSpan={3}>
                    <ExampleEditor
                      example={example}
                      names={entityNames}
                      onCancel={() => setEditing(null)}
                      onSave={(change) => {
                        setEditing(null);
                        act(api.put(`${P}/training_examples/${example.id}`, change), `Saved “${change.text}” as ${change.intent}`);
                      }}
                    />
                  </td>
                ) : (
                  <>
                    <th scope="row">
                      <MarkedText text={example.text} entities={example.entities} />
                    </th>
                    <td>{example.intent}</td>
                    <td>
                      <EntityList text={example.text} entities={example.entities} />
                    </td>
                  </>
                )}
                {mayEdit && (
                  <td>
                    <EditDelete what={`“${example.text}”`} onEdit={() => setEditing(example.id)} onDelete={() => setDeleting([example])} />
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {deleteDialog}
    </section>
  );
}
