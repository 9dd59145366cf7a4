// "The data changed since the last model": the API's data version (a hash of the training
// data's canonical content, GET .../data_version) against the one the newest model trained by
// rasa-x records (GET /api/models: data_version; uploaded models record none).
import { useEffect, useState } from "preact/hooks";
import { allowed } from "../access";
import { api } from "../api";
import { when } from "../format";
import { useSession } from "../session";

/** Sent on window after any change of the training data, so the marker reads the version again. */
export const TRAINING_CHANGED = "rasax:training-changed";
export const trainingChanged = () => dispatchEvent(new Event(TRAINING_CHANGED));

interface Model {
  model: string;
  trained_at: number | null;
  data_version: string | null;
}

/** The newest model that records the data it was trained on (the API lists the newest first). */
export const lastTrained = (models: readonly Model[]) => models.find((m) => m.data_version) ?? null;

export function DataVersion() {
  const { user, doc } = useSession();
  const mayModels = allowed(doc, user!.roles, "GET", "/api/models");
  const [state, setState] = useState<{ version: string; model: Model | null } | null>(null);
  useEffect(() => {
    if (!mayModels) return;
    const read = () =>
      Promise.all([api.get<{ version: string }>("/api/projects/default/data_version"), api.get<Model[]>("/api/models")]).then(
        ([data, models]) => setState({ version: data.version, model: lastTrained(models) }),
        () => setState(null),
      );
    read();
    addEventListener(TRAINING_CHANGED, read);
    return () => removeEventListener(TRAINING_CHANGED, read);
  }, [mayModels]);
  if (!state) return null;
  const { version, model } = state;
  const current = model?.data_version === version;
  return (
    <p class={`data-version ${current ? "current" : "changed"}`} data-version={version} aria-live="polite">
      {!model && <>No model has been trained on this data yet.</>}
      {model && current && (
        <>
          Up to date: model <strong>{model.model}</strong> ({when(model.trained_at)}) was trained on this data.
        </>
      )}
      {model && !current && (
        <>
          <strong>Changed since the last model</strong>: <strong>{model.model}</strong> ({when(model.trained_at)}) was trained on older data. Train
          a new model to use the changes.
        </>
      )}
    </p>
  );
}
