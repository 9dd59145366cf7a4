import { useEffect, useRef, useState } from "preact/hooks";
import { ChatTurn, SayForm, type ChatButton } from "../components/chat";

interface Line {
  from: "you" | "bot";
  text: string;
  image?: string;
  buttons?: ChatButton[];
}

/** The guest chat behind a share link: no account; the chat token becomes a guest JWT
 * (POST /api/auth/jwt), and messages go to Rasa's `rasa` channel, which nginx serves at /api/chat. */
export function Guest({ token, bot }: { token: string; bot: string | null }) {
  const [jwt, setJwt] = useState<string | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const [lines, setLines] = useState<Line[]>([]);
  const [busy, setBusy] = useState(false);
  const log = useRef<HTMLOListElement>(null);

  useEffect(() => {
    fetch("/api/auth/jwt", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ chat_token: token }) })
      .then(async (r) => (r.ok ? setJwt((await r.json()).access_token) : setProblem("This link is not valid or has expired: ask for a new one.")))
      .catch(() => setProblem("The bot cannot be reached right now; try again shortly."));
  }, [token]);
  useEffect(() => {
    log.current?.lastElementChild?.scrollIntoView({ block: "end" });
  }, [lines.length]);

  const send = async (message: string, shown = message) => {
    setLines((l) => [...l, { from: "you", text: shown }]);
    setBusy(true);
    try {
      const response = await fetch("/api/chat", {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${jwt}` },
        body: JSON.stringify({ message }),
      });
      if (!response.ok) throw new Error(String(response.status));
      const replies: { text?: string; image?: string; buttons?: Line["buttons"] }[] = await response.json();
      setLines((l) => [...l, ...replies.map((r) => ({ from: "bot" as const, text: r.text ?? "", image: r.image, buttons: r.buttons }))]);
    } catch {
      setProblem("The bot did not answer; try again shortly.");
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="guest" aria-labelledby="guest-title">
      <h1 id="guest-title">{bot ? `Chat with ${bot}` : "Chat with the bot"}</h1>
      <ol class="chat" ref={log} aria-label="Messages" aria-live="polite">
        {lines.map((line) => (
          <ChatTurn mine={line.from === "you"} text={line.text} image={line.image} buttons={line.buttons} onButton={(b) => send(b.payload, b.title)} />
        ))}
      </ol>
      {problem && (
        <p role="alert" class="error">
          {problem}
        </p>
      )}
      <SayForm id="guest-message" disabled={!jwt} busy={busy} onSay={(text) => send(text)} />
    </main>
  );
}
