import { useEffect, useState } from "preact/hooks";
import { allowed } from "../access";
import { useAction } from "../action";
import { api } from "../api";
import { useConfirmDelete } from "../components/confirm-delete";
import { EditDelete, SaveCancel } from "../components/row-actions";
import { trainingChanged } from "../training/data-version";
import { useSession } from "../session";

const P = "/api/projects/default";

export type FeaturePart = "synonyms" | "regexes" | "lookup_tables";

// How each kind is named on the screen: one of them, its name, its list of values.
const WORDS: Record<FeaturePart, { title: string; one: string; name: string; values: string; hint: string }> = {
  synonyms: {
    title: "Synonyms",
    one: "synonym",
    name: "Value",
    values: "Synonyms",
    hint: "Each synonym found as an entity is mapped to the value.",
  },
  regexes: { title: "Regexes", one: "regex", name: "Name", values: "Patterns", hint: "Regular expressions that help extract an entity or an intent." },
  lookup_tables: { title: "Lookup tables", one: "lookup table", name: "Name", values: "Entries", hint: "Lists of words that help extract an entity." },
};

interface Feature {
  name: string;
  examples: string[];
}

const lines = (text: string) =>
  text
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);

/** Synonyms, regexes or lookup tables: list, add, edit the values of one, delete one. */
export function Features({ part }: { part: FeaturePart }) {
  const { user, doc } = useSession();
  const words = WORDS[part];
  const mayEdit = allowed(doc, user!.roles, "PUT", `${P}/${part}/{name}`);
  const [features, setFeatures] = useState<Feature[] | null>(null);
  const [editing, setEditing] = useState<string | null>(null);
  const load = async () => {
    setFeatures(await api.get<Feature[]>(`${P}/${part}`));
    trainingChanged();
  };
  useEffect(() => {
    setFeatures(null);
    setEditing(null);
    load();
  }, [part]);
  const [message, act, setMessage] = useAction(load);
  const path = (name: string) => `${P}/${part}/${encodeURIComponent(name)}`;
  const put = (name: string, values: string[], done: string) => act(api.put(path(name), { examples: values }), done);

  const add = (event: Event) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const data = new FormData(form);
    const name = String(data.get("name")).trim();
    if (features?.some((f) => f.name === name)) {
      setMessage(`The ${words.one} “${name}” exists: edit it below`);
      return;
    }
    put(name, lines(String(data.get("values"))), `Added the ${words.one} “${name}”`).then(() => form.reset());
  };
  const [askDelete, deleteDialog] = useConfirmDelete<Feature>(
    (f) => `Delete the ${words.one} “${f.name}”?`,
    (f) => act(api.del(path(f.name)), `Deleted the ${words.one} “${f.name}”`),
    (f) => <p>{f.examples.join(", ")}</p>,
  );

  return (
    <section aria-labelledby={`${part}-title`}>
      <h2 id={`${part}-title`}>{words.title}</h2>
      <p class="hint">{words.hint}</p>
      {mayEdit && (
        <form class="inline feature-form" onSubmit={add} aria-label={`Add a ${words.one}`}>
          <label class="stacked">
            {words.name} <input name="name" required maxLength={200} />
          </label>
          <label class="stacked">
            {words.values} (one a line) <textarea name="values" required rows={3} cols={40} />
          </label>
          <button type="submit">Add {words.one}</button>
        </form>
      )}
      <p role="status" aria-live="polite" class="total">
        {features ? `${features.length} ${features.length === 1 ? words.one : words.title.toLowerCase()}` : "Loading…"}
        {message && <span class="note"> · {message}</span>}
      </p>
      {features && features.length > 0 && (
        <table class="list">
          <thead>
            <tr>
              <th scope="col">{words.name}</th>
              <th scope="col">{words.values}</th>
              {mayEdit && <th scope="col">Actions</th>}
            </tr>
          </thead>
          <tbody>
            {features.map((feature) => (
              <tr key={feature.name}>
                <th scope="row">{feature.name}</th>
                {editing === feature.name ? (
                  <td colSpan={mayEdit ? 2 : 1}>
                    <form
                      class="inline"
                      aria-label={`Edit the ${words.one} “${feature.name}”`}
                      onSubmit={(e) => {
                        e.preventDefault();
                        setEditing(null);
                        put(feature.name, lines(String(new FormData(e.currentTarget).get("values"))), `Saved the ${words.one} “${feature.name}”`);
                      }}
                    >
                      <label class="stacked">
                        {words.values} (one a line) <textarea name="values" required rows={Math.max(3, feature.examples.length)} cols={40} defaultValue={feature.examples.join("\n")} />
                      </label>
                      <SaveCancel onCancel={() => setEditing(null)} />
                    </form>
                  </td>
                ) : (
                  <>
                    <td>
                      <ul class="values">
                        {feature.examples.map((value) => (
                          <li>
                            <code>{value}</code>
                          </li>
                        ))}
                      </ul>
                    </td>
                    {mayEdit && (
                      <td class="actions">
                        <EditDelete what={`the ${words.one} “${feature.name}”`} onEdit={() => setEditing(feature.name)} onDelete={() => askDelete(feature)} />
                      </td>
                    )}
                  </>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {features && features.length === 0 && <p class="empty">No {words.title.toLowerCase()} yet.</p>}
      {deleteDialog}
    </section>
  );
}
