import { useEffect, useState } from "preact/hooks";
import { describe } from "../action";
import { api } from "../api";
import { when } from "../format";

interface ChatToken {
  chat_token: string;
  bot_name: string | null;
  description: string | null;
  expires: number;
}

/** The guest page's address for a chat token; the bot's name rides along for the page's title. */
export function shareLink(token: ChatToken): string {
  const name = token.bot_name ? `?bot=${encodeURIComponent(token.bot_name)}` : "";
  return `${location.origin}/guest/${token.chat_token}${name}`;
}

const LIFETIMES: [string, number][] = [
  ["1 day", 86400],
  ["7 days", 7 * 86400],
  ["30 days", 30 * 86400],
];

/** Share your bot: a link to a chat with the production bot for people without an account. */
export function Share() {
  const [token, setToken] = useState<ChatToken | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  useEffect(() => {
    api.get<ChatToken>("/api/chatToken").then(setToken, () => setToken(null));
  }, []);

  const create = async (event: Event) => {
    event.preventDefault();
    const data = new FormData(event.currentTarget as HTMLFormElement);
    try {
      setToken(
        await api.put<ChatToken>("/api/chatToken", {
          bot_name: String(data.get("bot_name")).trim() || undefined,
          description: String(data.get("description")).trim() || undefined,
          lifetime: Number(data.get("lifetime")),
        }),
      );
      setMessage("A new link is ready; earlier links no longer work");
    } catch (e) {
      setMessage(describe(e));
    }
  };
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(shareLink(token!));
      setMessage("Link copied");
    } catch {
      setMessage("Copying was refused by the browser: select the link and copy it");
    }
  };

  return (
    <section aria-labelledby="share-title">
      <h1 id="share-title">Share your bot</h1>
      <p>People with the link chat with the production bot without an account; their conversations show in Conversations.</p>
      <form class="stacked" onSubmit={create} aria-label="Create a share link">
        <label>
          Bot name <input name="bot_name" maxLength={100} defaultValue={token?.bot_name ?? ""} />
        </label>
        <label>
          Description <input name="description" maxLength={500} defaultValue={token?.description ?? ""} />
        </label>
        <label>
          Link expires after
          <select name="lifetime">
            {LIFETIMES.map(([label, seconds]) => (
              <option value={seconds} selected={seconds === 7 * 86400}>
                {label}
              </option>
            ))}
          </select>
        </label>
        <button type="submit">Generate link</button>
      </form>
      <p role="status" aria-live="polite">
        {message}
      </p>
      {token && (
        <p>
          <label>
            Share link <input readOnly value={shareLink(token)} size={70} onFocus={(e) => e.currentTarget.select()} />
          </label>{" "}
          <button type="button" onClick={copy}>
            Copy link
          </button>{" "}
          <span class="hint">expires {when(token.expires)}</span>
        </p>
      )}
    </section>
  );
}
