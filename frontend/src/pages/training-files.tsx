import { useState } from "preact/hooks";
import { allowed } from "../access";
import { describe } from "../action";
import { api } from "../api";
import { Confirm } from "../components/confirm";
import { trainingChanged } from "../training/data-version";
import { useSession } from "../session";

const P = "/api/projects/default";

interface Imported {
  mode: string;
  parts: string[];
  examples: number;
  features: number;
  stories: number;
  rules: number;
  warnings: { type: string; name: string; message: string }[];
}

/** Upload Rasa's YAML files (or a project's .tar.gz/.zip) and download the whole project. */
export function ProjectFiles() {
  const { user, doc } = useSession();
  const mayImport = allowed(doc, user!.roles, "POST", `${P}/import`);
  const [result, setResult] = useState<Imported | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [replacing, setReplacing] = useState<HTMLFormElement | null>(null);

  const upload = async (form: HTMLFormElement) => {
    const data = new FormData(form);
    const mode = String(data.get("mode"));
    data.delete("mode");
    setProblem(null);
    setResult(null);
    setBusy(true);
    try {
      setResult(await api.post<Imported>(`${P}/import?mode=${mode}`, data));
      form.reset();
      trainingChanged();
    } catch (e) {
      setProblem(describe(e));
    } finally {
      setBusy(false);
    }
  };
  const submit = (event: Event) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    if (new FormData(form).get("mode") === "replace") setReplacing(form);
    else upload(form);
  };
  const download = async () => {
    setProblem(null);
    try {
      const file = URL.createObjectURL(await api.blob(`${P}/export`));
      const link = Object.assign(document.createElement("a"), { href: file, download: "training-data.tar.gz" });
      link.click();
      setTimeout(() => URL.revokeObjectURL(file), 10_000);
    } catch (e) {
      setProblem(describe(e));
    }
  };

  return (
    <section aria-labelledby="files-title">
      <h2 id="files-title">Upload and download</h2>
      <p>
        <button type="button" onClick={download}>
          Download the project (.tar.gz)
        </button>{" "}
        <span class="hint">data/nlu.yml, data/stories.yml, data/rules.yml, domain.yml and config.yml, as `rasa train` reads them.</span>
      </p>
      {mayImport && (
        <form onSubmit={submit} aria-label="Upload training data" class="upload">
          <label>
            Rasa files (.yml, or one .tar.gz/.zip) <input type="file" name="files" multiple required accept=".yml,.yaml,.gz,.tgz,.tar,.zip" />
          </label>
          <fieldset class="inline">
            <legend>What the files do</legend>
            <label>
              <input type="radio" name="mode" value="merge" defaultChecked /> Merge into the training data
            </label>
            <label>
              <input type="radio" name="mode" value="replace" /> Replace the parts they carry
            </label>
          </fieldset>
          <button type="submit" disabled={busy}>
            {busy ? "Uploading…" : "Upload"}
          </button>
        </form>
      )}
      {problem && (
        <p role="alert" class="error">
          {problem}
        </p>
      )}
      {result && (
        <div role="status" class="import-result">
          <p>
            Imported ({result.mode}: {result.parts.join(", ")}): {result.examples} examples, {result.features} synonyms/regexes/lookup tables,{" "}
            {result.stories} stories, {result.rules} rules.
          </p>
          {result.warnings.length > 0 && (
            <ul aria-label="Warnings" class="warnings">
              {result.warnings.map((w) => (
                <li>{w.message}</li>
              ))}
            </ul>
          )}
        </div>
      )}
      {replacing && (
        <Confirm
          title="Replace training data?"
          confirm="Replace"
          onCancel={() => setReplacing(null)}
          onConfirm={() => {
            const form = replacing;
            setReplacing(null);
            upload(form);
          }}
        >
          <p>Each part the files carry (NLU data, stories, rules, domain, config) replaces what rasa-x holds of it now.</p>
        </Confirm>
      )}
    </section>
  );
}
