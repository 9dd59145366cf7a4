// Stories and rules as Rasa 3.x YAML for the editor, and back to the API's JSON shape
// (GET/PUT /api/stories|rules: {story|rule, steps, ...}).
import { parseYaml, writeYaml, YamlError } from "./training/yaml";

export type Kind = "story" | "rule";

export interface Block {
  id?: number;
  story?: string;
  rule?: string;
  steps: unknown[];
  [key: string]: unknown;
}

export { YamlError as BlockError };

/** The block as the one item of a YAML list, as it stands in data/stories.yml. */
export async function toYaml(block: Block): Promise<string> {
  const { id: _id, ...rest } = block;
  return writeYaml([rest]);
}

/** One story or rule from the editor's YAML, or a BlockError saying what is wrong and where. */
export async function fromYaml(text: string, kind: Kind): Promise<Block> {
  let value = (await parseYaml(text)) as any;
  if (Array.isArray(value)) {
    if (value.length !== 1) throw new YamlError(`write exactly one ${kind} here (found ${value.length} items)`);
    value = value[0];
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new YamlError(`a ${kind} is a mapping with '${kind}:' and 'steps:'`);
  if (typeof value[kind] !== "string" || !value[kind].trim()) throw new YamlError(`the ${kind} needs a name: '${kind}: <name>'`);
  if (!Array.isArray(value.steps)) throw new YamlError(`the ${kind} needs a list of 'steps:'`);
  return value as Block;
}
