import { useEffect, useState } from "preact/hooks";
import { allowed } from "../access";
import { useAction } from "../action";
import { api, segment } from "../api";
import { Confirm } from "../components/confirm";
import { bytes, when } from "../format";
import { useSession } from "../session";

interface Model {
  model: string;
  size: number;
  version: string | null;
  trained_at: number | null;
  tags: string[];
}

export function Models() {
  const { user, doc } = useSession();
  const [models, setModels] = useState<Model[] | null>(null);
  const [deleting, setDeleting] = useState<string | null>(null);
  const mayModify = allowed(doc, user!.roles, "POST", "/api/models");
  const load = () => api.get<Model[]>("/api/models").then(setModels);
  useEffect(() => {
    load();
  }, []);

  const [message, act] = useAction(load);
  const upload = (event: Event) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    act(api.post("/api/models", new FormData(form)), "Model uploaded").then(() => form.reset());
  };

  return (
    <section aria-labelledby="models-title">
      <h1 id="models-title">Models</h1>
      {mayModify && (
        <form onSubmit={upload} class="inline">
          <label>
            Model file (.tar.gz) <input name="model" type="file" accept=".gz,.tar.gz" required />
          </label>
          <button type="submit">Upload model</button>
        </form>
      )}
      <p role="status" aria-live="polite">
        {message}
      </p>
      {models && models.length === 0 && <p class="empty">No models yet: train one with `rasa train` and upload it here.</p>}
      {models && models.length > 0 && (
        <table class="list">
          <thead>
            <tr>
              <th scope="col">Model</th>
              <th scope="col">Trained</th>
              <th scope="col">Rasa</th>
              <th scope="col">Size</th>
              <th scope="col">Tags</th>
              {mayModify && <th scope="col">Actions</th>}
            </tr>
          </thead>
          <tbody>
            {models.map((m) => (
              <tr key={m.model}>
                <th scope="row">{m.model}</th>
                <td>{when(m.trained_at)}</td>
                <td>{m.version ?? "—"}</td>
                <td>{bytes(m.size)}</td>
                <td>
                  {m.tags.map((t) => (
                    <span class={`tag ${t === "production" ? "production" : ""}`}>{t}</span>
                  ))}
                </td>
                {mayModify && (
                  <td>
                    {!m.tags.includes("production") && (
                      <button type="button" onClick={() => act(api.put(`/api/models/${segment(m.model)}/tags/production`), `${m.model} is now in production`)}>
                        Make active
                      </button>
                    )}
                    <button type="button" class="danger" aria-label={`Delete model ${m.model}`} onClick={() => setDeleting(m.model)}>
                      Delete
                    </button>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {deleting && (
        <Confirm
          title="Delete this model?"
          confirm="Delete"
          onCancel={() => setDeleting(null)}
          onConfirm={() => {
            const name = deleting;
            setDeleting(null);
            act(api.del(`/api/models/${segment(name)}`), `${name} deleted`);
          }}
        >
          <p>
            Model <strong>{deleting}</strong> and its file are deleted for good.
          </p>
        </Confirm>
      )}
    </section>
  );
}
