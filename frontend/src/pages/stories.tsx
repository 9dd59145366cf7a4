import { useEffect, useState } from "preact/hooks";
import { describe } from "../action";
import { allowed } from "../access";
import { api } from "../api";
import { BlockError, fromYaml, toYaml, type Block, type Kind } from "../blocks";
import { useConfirmDelete } from "../components/confirm-delete";
import { DataVersion, trainingChanged } from "../training/data-version";
import { useSession } from "../session";
import { YamlField } from "../components/yaml-field";

const ROUTE: Record<Kind, string> = { story: "/api/stories", rule: "/api/rules" };
const NEW: Record<Kind, string> = {
  story: "- story: a new story\n  steps:\n  - intent: greet\n  - action: utter_greet\n",
  rule: "- rule: a new rule\n  steps:\n  - intent: goodbye\n  - action: utter_goodbye\n",
};

function Editor({ kind, block, mayEdit, onSaved }: { kind: Kind; block: Block | null; mayEdit: boolean; onSaved: (text: string) => void }) {
  const [text, setText] = useState<string | null>(block ? null : NEW[kind]);
  const [problem, setProblem] = useState<string | null>(null);
  const name = block ? String(block[kind]) : `New ${kind}`;
  useEffect(() => {
    if (block) toYaml(block).then(setText);
  }, [block]);

  const save = async (event: Event) => {
    event.preventDefault();
    setProblem(null);
    try {
      const parsed = await fromYaml(text ?? "", kind);
      if (block?.id !== undefined) await api.put(`${ROUTE[kind]}/${block.id}`, parsed);
      else await api.post(ROUTE[kind], parsed);
      onSaved(`${kind === "story" ? "Story" : "Rule"} “${parsed[kind]}” ${block ? "saved" : "added"}`);
    } catch (e) {
      setProblem(e instanceof BlockError ? e.message : describe(e));
    }
  };
  const [askDelete, deleteDialog] = useConfirmDelete<Block>(
    () => `Delete the ${kind} “${name}”?`,
    async (b) => {
      await api.del(`${ROUTE[kind]}/${b.id}`);
      onSaved(`${kind === "story" ? "Story" : "Rule"} “${name}” deleted`);
    },
    () => <p>It leaves the training data; the next model is trained without it.</p>,
  );
  const id = `editor-${kind}-${block?.id ?? "new"}`;
  return (
    <form class="block-editor" onSubmit={save} aria-labelledby={`${id}-label`}>
      <label id={`${id}-label`} for={id}>
        {kind === "story" ? "Story" : "Rule"}: {name}
      </label>
      <YamlField id={id} text={text} problem={problem} editable={mayEdit} maxRows={20} onInput={setText} />
      {mayEdit && (
        <div class="actions">
          <button type="submit">{block ? `Save ${kind}` : `Add ${kind}`}</button>
          {block && (
            <button type="button" class="danger" onClick={() => askDelete(block)}>
              Delete {kind}
            </button>
          )}
        </div>
      )}
      {deleteDialog}
    </form>
  );
}

/** Stories and rules, each in a YAML editor; the parser and the API say what is wrong. */
export function Stories() {
  const { user, doc } = useSession();
  const [kind, setKind] = useState<Kind>("story");
  // The blocks with the kind they were read for: a tab switch shows nothing until its own arrive.
  const [loaded, setLoaded] = useState<{ kind: Kind; blocks: Block[] } | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  const [generation, setGeneration] = useState(0);
  const mayEdit = allowed(doc, user!.roles, "POST", ROUTE[kind]);
  useEffect(() => {
    api.get<Block[]>(ROUTE[kind]).then((blocks) => setLoaded({ kind, blocks }));
  }, [kind, generation]);
  const saved = (text: string) => {
    setMessage(text);
    trainingChanged();
    setGeneration((g) => g + 1);
  };

  return (
    <section aria-labelledby="stories-title">
      <h1 id="stories-title">Stories and rules</h1>
      <DataVersion />
      <div role="tablist" aria-label="Stories or rules" class="tabs">
        {(["story", "rule"] as const).map((k) => (
          <button role="tab" aria-selected={kind === k} onClick={() => setKind(k)}>
            {k === "story" ? "Stories" : "Rules"}
          </button>
        ))}
      </div>
      <p role="status" aria-live="polite">
        {message}
      </p>
      {loaded?.kind === kind && (
        <div role="tabpanel" aria-label={kind === "story" ? "Stories" : "Rules"}>
          {mayEdit && <Editor key={`new-${kind}-${generation}`} kind={kind} block={null} mayEdit onSaved={saved} />}
          {loaded.blocks.length === 0 && <p class="empty">No {kind === "story" ? "stories" : "rules"} yet.</p>}
          {loaded.blocks.map((block) => (
            <Editor key={`${kind}-${block.id}-${generation}`} kind={kind} block={block} mayEdit={mayEdit} onSaved={saved} />
          ))}
        </div>
      )}
    </section>
  );
}
