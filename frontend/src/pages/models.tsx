import { useLocation } from "preact-iso";
import { useEffect, useState } from "preact/hooks";
import { allowed } from "../access";
import { describe, useAction } from "../action";
import { api, segment, type Page } from "../api";
import { Confirm } from "../components/confirm";
import { bytes, percent, when } from "../format";
import { useSession } from "../session";
import { EvaluationReport, type Evaluation } from "./evaluation";

interface Model {
  model: string;
  size: number;
  version: string | null;
  trained_at: number | null;
  tags: string[];
}

interface Job {
  id: number;
  status: "queued" | "running" | "finished" | "failed";
  model: string;
  tag: string | null;
  requested_by: string | null;
  attempts: number;
  error: string | null;
  retryable: boolean;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
}

const JOBS = "/api/projects/default/models/jobs";
const EVALUATIONS = "/api/projects/default/evaluations";
const POLL_MS = 1000;
const active = (job: Job) => job.status === "queued" || job.status === "running";

function duration(job: Job): string {
  if (job.started_at == null) return "—";
  const seconds = (job.finished_at ?? Date.now() / 1000) - job.started_at;
  return seconds < 60 ? `${seconds.toFixed(1)} s` : `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

/** What became of a job, in words: Rasa's own reason when it failed. */
function outcome(job: Job): string {
  if (job.status === "finished") return `Trained ${job.model}${job.tag ? `, tagged ${job.tag}` : ""}`;
  if (job.status === "failed") return `Failed: ${job.error ?? "no reason given"}${job.retryable ? " (may be retried)" : ""}`;
  return job.status === "running" ? "Training on rasa-worker…" : "Waiting for the worker…";
}

function TrainingJobs({ jobs, mayTrain, retry }: { jobs: Page<Job>; mayTrain: boolean; retry: (job: Job) => void }) {
  if (jobs.total === 0) return <p class="empty">No training jobs yet.</p>;
  return (
    <table class="list" aria-label="Training jobs">
      <thead>
        <tr>
          <th scope="col">Job</th>
          <th scope="col">Status</th>
          <th scope="col">Model</th>
          <th scope="col">Requested</th>
          <th scope="col">Took</th>
          <th scope="col">Outcome</th>
        </tr>
      </thead>
      <tbody>
        {jobs.items.map((job) => (
          <tr key={job.id}>
            <th scope="row">#{job.id}</th>
            <td>
              <span class={`job-status ${job.status}`}>{job.status}</span>
            </td>
            <td>{job.model}</td>
            <td>
              {when(job.created_at)} by {job.requested_by ?? "—"}
            </td>
            <td>{duration(job)}</td>
            <td class={job.status === "failed" ? "error" : undefined}>
              {outcome(job)}{" "}
              {mayTrain && job.status === "failed" && job.retryable && (
                <button type="button" class="small" onClick={() => retry(job)}>
                  Retry<span class="visually-hidden"> job {job.id}</span>
                </button>
              )}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function Models() {
  const { user, doc } = useSession();
  const [models, setModels] = useState<Model[] | null>(null);
  const [jobs, setJobs] = useState<Page<Job> | null>(null);
  const [evaluated, setEvaluated] = useState<Set<string>>(new Set());
  const [evaluation, setEvaluation] = useState<Evaluation | null>(null);
  const [evaluating, setEvaluating] = useState<string | null>(null);
  const [deleting, setDeleting] = useState<string | null>(null);
  const { query, route } = useLocation();
  const [message, act, setMessage] = useAction(() => load());
  const mayModify = allowed(doc, user!.roles, "POST", "/api/models");
  const mayTrain = allowed(doc, user!.roles, "POST", JOBS);
  const mayEvaluate = allowed(doc, user!.roles, "PUT", `${EVALUATIONS}/{name}`);
  const load = () =>
    Promise.all([
      api.get<Model[]>("/api/models").then(setModels),
      api.page<Job>(`${JOBS}?limit=10`).then(setJobs),
      api.get<{ model: string }[]>(EVALUATIONS).then((list) => setEvaluated(new Set(list.map((e) => e.model)))),
    ]);
  useEffect(() => {
    load();
  }, []);
  // While a job is queued or running its state is read again every second: the row shows it
  // move on, and the model list gains the trained model when it is done.
  const training = jobs?.items.some(active) ?? false;
  useEffect(() => {
    if (!training) return;
    const timer = setInterval(load, POLL_MS);
    return () => clearInterval(timer);
  }, [training]);
  // The report shown is in the URL (?evaluation=model), so it can be linked to.
  const shown = query.evaluation ?? null;
  useEffect(() => {
    if (!shown) return setEvaluation(null);
    if (evaluation?.model === shown) return;
    api.get<Evaluation>(`${EVALUATIONS}/${segment(shown)}`).then(setEvaluation, (e) => setMessage(describe(e)));
  }, [shown]);
  const showReport = (model: string | null) => route(model ? `/models?evaluation=${encodeURIComponent(model)}` : "/models");

  // The job this person started or retried: its outcome is announced in the status line.
  const [watching, setWatching] = useState<number | null>(null);
  useEffect(() => {
    const job = jobs?.items.find((j) => j.id === watching);
    if (!job) return;
    setMessage(`Training job #${job.id}: ${active(job) ? job.status : outcome(job)}`);
    if (!active(job)) setWatching(null);
  }, [jobs, watching]);
  const start = async (call: Promise<Job>) => {
    try {
      setWatching((await call).id);
    } catch (e) {
      setMessage(describe(e));
    }
    await load();
  };
  const train = (event: Event) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const data = new FormData(form);
    const name = String(data.get("model_name") ?? "").trim();
    const body = { ...(name && { model_name: name }), ...(data.get("production") && { tag: "production" }) };
    start(api.post<Job>(JOBS, body)).then(() => form.reset());
  };
  const retry = (job: Job) => start(api.post<Job>(`${JOBS}/${job.id}/retry`));
  const evaluate = async (model: string) => {
    setEvaluating(model);
    setMessage(`Evaluating ${model} on rasa-worker…`);
    try {
      const result = await api.put<Evaluation>(`${EVALUATIONS}/${segment(model)}`);
      setEvaluation(result);
      setMessage(`${model} evaluated: accuracy ${percent(result.accuracy)}`);
      showReport(model);
    } catch (e) {
      setMessage(describe(e));
    } finally {
      setEvaluating(null);
    }
    await load();
  };
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
      {mayTrain && (
        <form onSubmit={train} class="inline" aria-label="Train a model">
          <label>
            Model name <input name="model_name" placeholder="automatic" />
          </label>
          <label>
            <input name="production" type="checkbox" /> Make it active when trained
          </label>
          <button type="submit">Train model</button>
          {training && <span class="hint">the worker trains one model at a time: a new job waits its turn</span>}
        </form>
      )}
      <p role="status" aria-live="polite">
        {message}
      </p>
      {models && models.length === 0 && <p class="empty">No models yet: train one here, or with `rasa train` and upload it.</p>}
      {models && models.length > 0 && (
        <table class="list">
          <thead>
            <tr>
              <th scope="col">Model</th>
              <th scope="col">Trained</th>
              <th scope="col">Rasa</th>
              <th scope="col">Size</th>
              <th scope="col">Tags</th>
              {(mayModify || mayEvaluate || evaluated.size > 0) && <th scope="col">Actions</th>}
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
                {(mayModify || mayEvaluate || evaluated.size > 0) && (
                  <td class="actions">
                    {evaluated.has(m.model) && (
                      <button type="button" aria-pressed={shown === m.model} onClick={() => showReport(shown === m.model ? null : m.model)}>
                        Report<span class="visually-hidden"> of {m.model}</span>
                      </button>
                    )}
                    {mayEvaluate && (
                      <button type="button" disabled={evaluating !== null} onClick={() => evaluate(m.model)}>
                        {evaluating === m.model ? "Evaluating…" : "Evaluate"}
                        <span class="visually-hidden"> {m.model}</span>
                      </button>
                    )}
                    {mayModify && !m.tags.includes("production") && (
                      <button type="button" onClick={() => act(api.put(`/api/models/${segment(m.model)}/tags/production`), `${m.model} is now in production`)}>
                        Make active
                      </button>
                    )}
                    {mayModify && (
                      <button type="button" class="danger" aria-label={`Delete model ${m.model}`} onClick={() => setDeleting(m.model)}>
                        Delete
                      </button>
                    )}
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {evaluation && shown === evaluation.model && <EvaluationReport evaluation={evaluation} />}
      <h2>Training jobs</h2>
      {jobs && <TrainingJobs jobs={jobs} mayTrain={mayTrain} retry={retry} />}
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
