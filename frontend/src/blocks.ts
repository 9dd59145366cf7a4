// Stories and rules as Rasa 3.x YAML for the editor, and back to the API's JSON shape
// (GET/PUT /api/stories|rules: {story|rule, steps, ...}). The YAML parser is loaded only when
// the screen is opened.

export type Kind = "story" | "rule";

export interface Block {
  id?: number;
  story?: string;
  rule?: string;
  steps: unknown[];
  [key: string]: unknown;
}

export class BlockError extends Error {}

/** The block as the one item of a YAML list, as it stands in data/stories.yml. */
export async function toYaml(block: Block): Promise<string> {
  const { stringify } = await import("yaml");
  const { id: _id, ...rest } = block;
  // indentSeq: false writes lists the way Rasa's own files do ("  steps:\n  - intent: greet").
  return stringify([rest], { indentSeq: false });
}

/** One story or rule from the editor's YAML, or a BlockError saying what is wrong and where. */
export async function fromYaml(text: string, kind: Kind): Promise<Block> {
  const { parseDocument } = await import("yaml");
  const document = parseDocument(text, { prettyErrors: true });
  if (document.errors.length) {
    const [error] = document.errors;
    const line = error.linePos?.[0]?.line;
    throw new BlockError(line ? `line ${line}: ${error.message.split("\n")[0]}` : error.message.split("\n")[0]);
  }
  let value = document.toJS();
  if (Array.isArray(value)) {
    if (value.length !== 1) throw new BlockError(`write exactly one ${kind} here (found ${value.length} items)`);
    value = value[0];
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new BlockError(`a ${kind} is a mapping with '${kind}:' and 'steps:'`);
  if (typeof value[kind] !== "string" || !value[kind].trim()) throw new BlockError(`the ${kind} needs a name: '${kind}: <name>'`);
  if (!Array.isArray(value.steps)) throw new BlockError(`the ${kind} needs a list of 'steps:'`);
  return value as Block;
}
