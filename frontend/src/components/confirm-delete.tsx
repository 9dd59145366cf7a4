import type { ComponentChildren } from "preact";
import { useState } from "preact/hooks";
import { Confirm } from "./confirm";

/** The "Delete …?" question a list asks before deleting one of its things: `ask(thing)` opens it,
 * the answer "Delete" calls `remove(thing)`. Returns [ask, the dialog to render (or null)]. */
export function useConfirmDelete<T>(
  title: (thing: T) => string,
  remove: (thing: T) => unknown,
  details: (thing: T) => ComponentChildren,
): [(thing: T) => void, preact.JSX.Element | null] {
  const [pending, setPending] = useState<{ thing: T } | null>(null);
  const dialog = pending && (
    <Confirm
      title={title(pending.thing)}
      confirm="Delete"
      onCancel={() => setPending(null)}
      onConfirm={() => {
        setPending(null);
        remove(pending.thing);
      }}
    >
      {details(pending.thing)}
    </Confirm>
  );
  return [(thing: T) => setPending({ thing }), dialog];
}
