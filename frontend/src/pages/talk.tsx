import { useLocation } from "preact-iso";
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { api, ApiError, openLive, segment, type LiveMessage } from "../api";
import { percent, when } from "../format";
import { useSession } from "../session";
import { ChatTurn, SayForm } from "../components/chat";
import type { RasaEvent } from "./conversation";

// A socket that closed for another reason than a refusal is opened again after this long.
const RECONNECT_MS = 2000;
const REFUSED = new Set([4401, 4403]);

const newConversationId = (username: string) => `talk-${username}-${Math.random().toString(36).slice(2, 10)}`;

/** Talk to your bot: messages go to rasa-production as a conversation of the user's own
 * (POST /api/conversations/{id}/messages); what the bot does comes back through the broker and
 * the event service, and reaches this page over the live-update socket (/api/ws), like every
 * conversation's events. The chat and the events beside it are both drawn from those events. */
export function Talk() {
  const { user } = useSession();
  const { query, route } = useLocation();
  const sender = query.conversation || "";
  useEffect(() => {
    if (!sender) route(`/talk?conversation=${encodeURIComponent(newConversationId(user!.username))}`, true);
  }, [sender]);

  const [events, setEvents] = useState<RasaEvent[]>([]);
  // Messages sent whose user event has not come back yet.
  const [pending, setPending] = useState<string[]>([]);
  const [live, setLive] = useState<"connecting" | "live" | "refused">("connecting");
  const [problem, setProblem] = useState<string | null>(null);
  const chat = useRef<HTMLOListElement>(null);

  // Events come from the API (what was stored before watching) and the socket; a socket event
  // the API read already included is the same JSON, so it is added once.
  const seen = useRef(new Set<string>());
  const add = (incoming: RasaEvent[]) => {
    const fresh = incoming.filter((e) => {
      const key = JSON.stringify(e);
      if (seen.current.has(key)) return false;
      seen.current.add(key);
      return true;
    });
    if (!fresh.length) return;
    setEvents((all) => [...all, ...fresh].sort((a, b) => a.timestamp - b.timestamp));
    const said = fresh.filter((e) => e.event === "user").map((e) => e.text ?? "");
    setPending((waiting) => waiting.filter((text) => !said.includes(text)));
  };
  const reload = () =>
    api.get<{ events: RasaEvent[] }>(`/api/conversations/${segment(sender)}`).then(
      (conversation) => add(conversation.events),
      (error) => {
        if (!(error instanceof ApiError && error.status === 404)) setProblem(error.message);
      },
    );

  useEffect(() => {
    if (!sender) return;
    seen.current = new Set();
    setEvents([]);
    setPending([]);
    let socket: WebSocket | null = null;
    let retry: number | undefined;
    let stopped = false;
    const connect = () => {
      setLive("connecting");
      socket = openLive(
        (message: LiveMessage) => {
          if (message.type === "ready") socket!.send(JSON.stringify({ type: "watch", conversation_id: sender }));
          else if (message.type === "watching") {
            setLive("live");
            reload();
          } else if (message.type === "events" && message.conversation_id === sender) add(message.events as unknown as RasaEvent[]);
          else if (message.type === "resync") reload();
        },
        (code) => {
          if (stopped) return;
          if (REFUSED.has(code)) setLive("refused");
          else {
            setLive("connecting");
            retry = window.setTimeout(connect, RECONNECT_MS);
          }
        },
      );
    };
    connect();
    return () => {
      stopped = true;
      window.clearTimeout(retry);
      socket?.close();
    };
  }, [sender]);

  useEffect(() => {
    chat.current?.lastElementChild?.scrollIntoView({ block: "end" });
  }, [events.length, pending.length]);

  const send = async (message: string) => {
    setProblem(null);
    setPending((waiting) => [...waiting, message]);
    try {
      // The HTTP answer holds the bot's direct replies too; the page shows what arrives live.
      await api.post(`/api/conversations/${segment(sender)}/messages`, { message });
    } catch (error) {
      setPending((waiting) => waiting.filter((text) => text !== message));
      setProblem(error instanceof Error ? error.message : String(error));
    }
  };

  const lines = useMemo(() => events.filter((e) => e.event === "user" || e.event === "bot"), [events]);
  if (!sender) return null;
  return (
    <section class="talk" aria-labelledby="talk-title">
      <header class="talk-head">
        <h1 id="talk-title">Talk to your bot</h1>
        <p>
          Conversation <code>{sender}</code>{" "}
          <span class={`live-status ${live}`} role="status">
            {live === "live" ? "Live" : live === "refused" ? "Live updates refused: log in again" : "Connecting…"}
          </span>{" "}
          <a href={`/conversations/${segment(sender)}`}>Open in Conversations</a>{" "}
          <button type="button" onClick={() => route(`/talk?conversation=${encodeURIComponent(newConversationId(user!.username))}`)}>
            New conversation
          </button>
        </p>
      </header>
      <div class="talk-panes">
        <div class="talk-chat">
          <ol class="chat" ref={chat} aria-label="Chat" aria-live="polite">
            {lines.map((line) => (
              <ChatTurn mine={line.event === "user"} text={line.text} image={line.data?.image} buttons={line.data?.buttons} onButton={(b) => send(b.payload)} />
            ))}
            {pending.map((text) => (
              <ChatTurn mine pending text={text} onButton={() => {}} />
            ))}
          </ol>
          {problem && (
            <p role="alert" class="error">
              {problem}
            </p>
          )}
          <SayForm id="talk-message" onSay={send} />
        </div>
        <table class="talk-events" aria-label="Events of this conversation">
          <thead>
            <tr>
              <th scope="col">Time</th>
              <th scope="col">Event</th>
              <th scope="col">Details</th>
            </tr>
          </thead>
          <tbody>
            {events.map((e) => (
              <tr>
                <td>{when(e.timestamp)}</td>
                <td>{e.event}</td>
                <td>{details(e)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

function details(e: RasaEvent): string {
  switch (e.event) {
    case "user":
      return `“${e.text ?? ""}” → ${e.parse_data?.intent?.name ?? "?"} ${percent(e.parse_data?.intent?.confidence)}`;
    case "bot":
      return e.text ?? "";
    case "action":
      return `${e.name ?? ""}${e.policy ? ` (${e.policy} ${percent(e.confidence)})` : ""}`;
    case "slot":
      return `${e.name} = ${JSON.stringify(e.value)}`;
    default:
      return e.name ?? "";
  }
}
