import { useEffect, useState } from "preact/hooks";
import { allowed } from "../access";
import { describe, useAction } from "../action";
import { api } from "../api";
import { useConfirmDelete } from "../components/confirm-delete";
import { EditDelete } from "../components/row-actions";
import { trainingChanged } from "../training/data-version";
import { useSession } from "../session";

interface Button {
  title: string;
  payload: string;
}

/** One variation of a response as the domain has it; keys this editor does not show (image,
 * channel, condition, custom, ...) are kept as they are. */
interface Variation {
  text?: string;
  buttons?: Button[];
  [key: string]: unknown;
}

interface Response {
  name: string;
  variations: Variation[];
}

/** The variation as the API takes it: no empty text, no empty list of buttons. */
function cleaned({ text, buttons, ...rest }: Variation): Variation {
  const kept: Variation = { ...rest };
  if (text?.trim()) kept.text = text;
  const filled = (buttons ?? []).filter((b) => b.title.trim() || b.payload.trim());
  if (filled.length) kept.buttons = filled;
  return kept;
}

function VariationFields({ index, variation, onChange, onRemove }: { index: number; variation: Variation; onChange: (v: Variation) => void; onRemove?: () => void }) {
  const buttons = variation.buttons ?? [];
  const setButton = (at: number, change: Partial<Button>) => onChange({ ...variation, buttons: buttons.map((b, i) => (i === at ? { ...b, ...change } : b)) });
  const others = Object.keys(variation).filter((k) => k !== "text" && k !== "buttons");
  const n = index + 1;
  return (
    <fieldset class="variation">
      <legend>Variation {n}</legend>
      <label class="stacked">
        Text of variation {n}
        <textarea rows={2} cols={50} value={variation.text ?? ""} onInput={(e) => onChange({ ...variation, text: e.currentTarget.value })} />
      </label>
      {others.length > 0 && <p class="hint">Also kept as they are: {others.join(", ")}</p>}
      <ul class="button-fields" aria-label={`Buttons of variation ${n}`}>
        {buttons.map((button, at) => (
          <li class="inline">
            <label>
              Button {at + 1} title <input value={button.title} required onInput={(e) => setButton(at, { title: e.currentTarget.value })} />
            </label>
            <label>
              Button {at + 1} payload <input value={button.payload} required onInput={(e) => setButton(at, { payload: e.currentTarget.value })} />
            </label>
            <button type="button" class="small" onClick={() => onChange({ ...variation, buttons: buttons.filter((_, i) => i !== at) })}>
              Remove button {at + 1}
            </button>
          </li>
        ))}
      </ul>
      <div class="actions">
        <button type="button" class="small" onClick={() => onChange({ ...variation, buttons: [...buttons, { title: "", payload: "" }] })}>
          Add a button to variation {n}
        </button>
        {onRemove && (
          <button type="button" class="small danger" onClick={onRemove}>
            Remove variation {n}
          </button>
        )}
      </div>
    </fieldset>
  );
}

/** A response's name and variations; `saved` is told what changed, or the API's refusal shown. */
function ResponseForm({ response, onSaved, onCancel }: { response: Response | null; onSaved: (done: string) => void; onCancel?: () => void }) {
  const [name, setName] = useState(response?.name ?? "utter_");
  const [variations, setVariations] = useState<Variation[]>(response ? response.variations : [{ text: "" }]);
  const [problem, setProblem] = useState<string | null>(null);
  const label = response ? `Edit the response ${response.name}` : "Add a response";
  const save = async (event: Event) => {
    event.preventDefault();
    setProblem(null);
    try {
      await api.put(`/api/responses/${encodeURIComponent(name.trim())}`, variations.map(cleaned));
      onSaved(`${response ? "Saved" : "Added"} the response ${name.trim()}`);
      if (!response) {
        setName("utter_");
        setVariations([{ text: "" }]);
      }
    } catch (e) {
      setProblem(describe(e));
    }
  };
  return (
    <form class="response-form" onSubmit={save} aria-label={label}>
      {response ? (
        <h3>{response.name}</h3>
      ) : (
        <label>
          Response name <input value={name} required maxLength={200} pattern="\S+" onInput={(e) => setName(e.currentTarget.value)} />
        </label>
      )}
      {variations.map((variation, i) => (
        <VariationFields
          index={i}
          variation={variation}
          onChange={(v) => setVariations(variations.map((x, j) => (j === i ? v : x)))}
          onRemove={variations.length > 1 ? () => setVariations(variations.filter((_, j) => j !== i)) : undefined}
        />
      ))}
      {problem && (
        <p role="alert" class="error">
          {problem}
        </p>
      )}
      <div class="actions">
        <button type="button" onClick={() => setVariations([...variations, { text: "" }])}>
          Add a variation
        </button>
        <button type="submit">{response ? "Save response" : "Add response"}</button>
        {onCancel && (
          <button type="button" onClick={onCancel}>
            Cancel
          </button>
        )}
      </div>
    </form>
  );
}

function ResponseView({ response }: { response: Response }) {
  return (
    <ol class="variations" aria-label={`Variations of ${response.name}`}>
      {response.variations.map((v) => (
        <li>
          {v.text ?? <em>no text</em>}
          {v.buttons && (
            <ul class="buttons" aria-label="Buttons">
              {v.buttons.map((b) => (
                <li title={b.payload}>
                  {b.title} <code>{b.payload}</code>
                </li>
              ))}
            </ul>
          )}
          {typeof v.channel === "string" && <span class="hint"> (channel {v.channel})</span>}
        </li>
      ))}
    </ol>
  );
}

/** The domain's responses: text variations with buttons; add, edit, delete. */
export function Responses() {
  const { user, doc } = useSession();
  const mayEdit = allowed(doc, user!.roles, "PUT", "/api/responses/{name}");
  const [responses, setResponses] = useState<Response[] | null>(null);
  const [editing, setEditing] = useState<string | null>(null);
  const load = async () => {
    setResponses(await api.get<Response[]>("/api/responses"));
    trainingChanged();
  };
  useEffect(() => {
    load();
  }, []);
  const [message, act] = useAction(load);
  const saved = (done: string) => {
    setEditing(null);
    act(Promise.resolve(), done);
  };
  const [askDelete, deleteDialog] = useConfirmDelete<Response>(
    (r) => `Delete the response ${r.name}?`,
    (r) => act(api.del(`/api/responses/${encodeURIComponent(r.name)}`), `Deleted the response ${r.name}`),
    (r) => <p>Its {r.variations.length} variation(s) leave the domain; stories or rules that use it will warn.</p>,
  );
  return (
    <section aria-labelledby="responses-title">
      <h2 id="responses-title">Responses</h2>
      {mayEdit && <ResponseForm response={null} onSaved={saved} />}
      <p role="status" aria-live="polite" class="total">
        {responses ? `${responses.length} response${responses.length === 1 ? "" : "s"}` : "Loading…"}
        {message && <span class="note"> · {message}</span>}
      </p>
      {responses?.map((response) =>
        editing === response.name ? (
          <ResponseForm key={`edit-${response.name}`} response={response} onSaved={saved} onCancel={() => setEditing(null)} />
        ) : (
          <article class="response" aria-labelledby={`response-${response.name}`}>
            <h3 id={`response-${response.name}`}>{response.name}</h3>
            <ResponseView response={response} />
            {mayEdit && (
              <div class="actions">
                <EditDelete what={`the response ${response.name}`} onEdit={() => setEditing(response.name)} onDelete={() => askDelete(response)} />
              </div>
            )}
          </article>
        ),
      )}
      {deleteDialog}
    </section>
  );
}
