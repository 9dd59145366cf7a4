import { useState } from "preact/hooks";
import { ApiError } from "./api";

/** What went wrong, in the API's words when it said something. */
export const describe = (error: unknown) => (error instanceof ApiError ? error.message : String(error));

/** A change a person asks for on a screen: its outcome in words for the status line, then the
 * screen's data read again, whether the change worked or not. */
export function useAction(
  reload: () => Promise<unknown>,
): [string | null, (call: Promise<unknown>, done: string) => Promise<void>, (message: string) => void] {
  const [message, setMessage] = useState<string | null>(null);
  const act = async (call: Promise<unknown>, done: string) => {
    try {
      await call;
      setMessage(done);
    } catch (e) {
      setMessage(describe(e));
    }
    await reload();
  };
  return [message, act, setMessage];
}
