import { useEffect, useState } from "preact/hooks";
import { allowed } from "../access";
import { describe } from "../action";
import { api } from "../api";
import { trainingChanged } from "../training/data-version";
import { parseYaml, writeYaml, YamlError } from "../training/yaml";
import { useSession } from "../session";
import { YamlField } from "../components/yaml-field";

// The two documents edited whole: where the API keeps each, and what the screen calls it.
const DOCUMENTS = {
  domain: { route: "/api/domain", title: "Domain", file: "domain.yml" },
  config: { route: "/api/projects/default/config", title: "Config", file: "config.yml" },
} as const;

/** domain.yml or config.yml in a YAML editor: a syntax error is named by its line before
 * anything is sent; what Rasa would refuse, the API's 400 says. */
export function YamlDocument({ part }: { part: keyof typeof DOCUMENTS }) {
  const { user, doc } = useSession();
  const { route, title, file } = DOCUMENTS[part];
  const mayEdit = allowed(doc, user!.roles, "PUT", route);
  const [text, setText] = useState<string | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  const load = async () => setText(await writeYaml(await api.get(route)));
  useEffect(() => {
    setText(null);
    setProblem(null);
    setMessage(null);
    load();
  }, [part]);

  const save = async (event: Event) => {
    event.preventDefault();
    setProblem(null);
    setMessage(null);
    try {
      const value = await parseYaml(text ?? "");
      if (typeof value !== "object" || value === null || Array.isArray(value)) throw new YamlError(`${file} is a mapping of keys (version, ...)`);
      await api.put(route, value);
      setMessage(`${file} saved`);
      trainingChanged();
      await load();
    } catch (e) {
      setProblem(e instanceof YamlError ? e.message : describe(e));
    }
  };
  const id = `yaml-${part}`;
  return (
    <section aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>{title}</h2>
      <form class="block-editor" onSubmit={save} aria-label={`Edit ${file}`}>
        <label for={id}>{file}</label>
        <YamlField id={id} text={text} problem={problem} editable={mayEdit} maxRows={30} onInput={setText} />
        <p role="status" aria-live="polite">
          {message}
        </p>
        {mayEdit && (
          <div class="actions">
            <button type="submit">Save {file}</button>
          </div>
        )}
      </form>
    </section>
  );
}
