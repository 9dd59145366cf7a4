// Rasa YAML in the editors: parsed in the browser so a syntax error is named by its line before
// anything is sent; the API then checks the content and says what Rasa would refuse. The YAML
// library is loaded only when an editor is opened.

export class YamlError extends Error {}

/** The value of `text`, or a YamlError "line N: what is wrong". */
export async function parseYaml(text: string): Promise<unknown> {
  const { parseDocument } = await import("yaml");
  const document = parseDocument(text, { prettyErrors: true });
  if (document.errors.length) {
    const [error] = document.errors;
    const first = error.message.split("\n")[0];
    const line = error.linePos?.[0]?.line;
    throw new YamlError(line ? `line ${line}: ${first}` : first);
  }
  return document.toJS();
}

/** `value` as YAML the way Rasa's own files are written ("  steps:\n  - intent: greet"). */
export async function writeYaml(value: unknown): Promise<string> {
  const { stringify } = await import("yaml");
  return stringify(value, { indentSeq: false });
}
