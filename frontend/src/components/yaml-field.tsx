/** A YAML editor's text area with what is wrong with it (the parser's line, or the API's 400)
 * announced as an alert and tied to the field. */
export function YamlField({
  id,
  text,
  problem,
  editable,
  maxRows,
  onInput,
}: {
  id: string;
  text: string | null;
  problem: string | null;
  editable: boolean;
  maxRows: number;
  onInput: (text: string) => void;
}) {
  return (
    <>
      <textarea
        id={id}
        rows={Math.min(maxRows, (text ?? "").split("\n").length + 1)}
        spellcheck={false}
        readOnly={!editable || text === null}
        value={text ?? "Loading…"}
        onInput={(e) => onInput(e.currentTarget.value)}
        aria-invalid={problem !== null}
        aria-describedby={problem ? `${id}-problem` : undefined}
      />
      {problem && (
        <p role="alert" id={`${id}-problem`} class="error">
          {problem}
        </p>
      )}
    </>
  );
}
