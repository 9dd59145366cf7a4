import { useLocation, useRoute } from "preact-iso";
import { describe } from "../action";
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from "preact/hooks";
import { allowed } from "../access";
import { api, segment } from "../api";
import { Confirm } from "../components/confirm";
import { EntityMarker, useEntityNames } from "../components/entity-marker";
import { predicted, type Entity } from "../training/entities";
import { percent, REVIEW_LABELS, when } from "../format";
import { useSession } from "../session";
import type { ConversationSummary, Tag } from "./conversations";

export interface RasaEvent {
  event: string;
  timestamp: number;
  text?: string;
  name?: string;
  value?: unknown;
  policy?: string;
  confidence?: number;
  parse_data?: { intent?: { name?: string; confidence?: number }; entities?: { entity: string; value: unknown }[] };
  data?: { buttons?: { title: string; payload: string }[]; image?: string };
  is_flagged?: boolean;
}

interface Conversation extends ConversationSummary {
  events: RasaEvent[];
  /** the cursor of the events before these, null when they go back to the first */
  events_earlier: string | null;
}

// Events are read a page at a time from the newest (GET ...?events_limit=, then .../events?before=):
// a conversation of thousands of events opens at once, and older turns load on scrolling up.
const EVENTS_PAGE = 200;
// The most events one request reads (MAX_EVENTS_PAGE of services/backend/api/conversations.py):
// a reload after scrolling back further shows the newest that many again.
const EVENTS_AT_MOST = 5000;

const P = "/api/conversations/{sender_id}";

interface TurnActions {
  /** undefined: the user may not review; else flag/unflag and correct the intent of a message. */
  flag?: (event: RasaEvent, flagged: boolean) => void;
  correct?: (event: RasaEvent, intent: string, entities: Entity[]) => Promise<void>;
  corrected: Map<number, string>;
}

/** Correct the intent of a user message and mark its entities by selecting words; saved to the
 * training data. Starts from Rasa's prediction (or the earlier correction's intent). */
function Correction({ event, intent, correct, close }: { event: RasaEvent; intent: string; correct: NonNullable<TurnActions["correct"]>; close: () => void }) {
  const text = event.text ?? "";
  const [entities, setEntities] = useState<Entity[]>(() => predicted(text, event.parse_data?.entities as Record<string, unknown>[] | undefined));
  const names = useEntityNames();
  const save = async (e: Event) => {
    e.preventDefault();
    const value = String(new FormData(e.currentTarget as HTMLFormElement).get("intent")).trim();
    if (value) await correct(event, value, entities);
    close();
  };
  return (
    <form class="correction-form" onSubmit={save} aria-label={`Correct “${text}”`}>
      <label>
        Intent of “{text}” <input name="intent" required defaultValue={intent} autofocus />
      </label>
      <EntityMarker text={text} entities={entities} names={names} onChange={setEntities} />
      <div class="actions">
        <button type="submit">Save to training data</button>
        <button type="button" onClick={close}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function UserTurn({ event, flag, correct, corrected }: { event: RasaEvent } & TurnActions) {
  const [editing, setEditing] = useState(false);
  const intent = event.parse_data?.intent;
  const correction = corrected.get(event.timestamp);
  return (
    <li class="turn user">
      <p class="text">{event.text}</p>
      <p class="meta">
        <span class="intent">{intent?.name ?? "no intent"}</span> <span class="confidence">{percent(intent?.confidence)}</span>
        {(event.parse_data?.entities ?? []).map((e) => (
          <span class="entity">
            {e.entity}={String(e.value)}
          </span>
        ))}
        {correction && <span class="correction"> → corrected to {correction}</span>}
        {event.is_flagged && <span class="flag"> ⚑ flagged</span>}
      </p>
      {(flag || correct) && (
        <p class="turn-actions">
          {flag && (
            <button type="button" class="small" aria-pressed={!!event.is_flagged} onClick={() => flag(event, !event.is_flagged)}>
              {event.is_flagged ? "Unflag" : "Flag"}
              <span class="visually-hidden"> “{event.text}”</span>
            </button>
          )}
          {correct && !editing && (
            <button type="button" class="small" onClick={() => setEditing(true)}>
              Correct intent<span class="visually-hidden"> of “{event.text}”</span>
            </button>
          )}
        </p>
      )}
      {editing && correct && <Correction event={event} intent={correction ?? intent?.name ?? ""} correct={correct} close={() => setEditing(false)} />}
    </li>
  );
}

function Turn({ event, ...actions }: { event: RasaEvent } & TurnActions) {
  switch (event.event) {
    case "session_started":
      return (
        <li class="separator" role="separator" aria-label={`Session started ${when(event.timestamp)}`}>
          Session started · {when(event.timestamp)}
        </li>
      );
    case "user":
      return <UserTurn event={event} {...actions} />;
    case "bot":
      return (
        <li class="turn bot">
          {event.text && <p class="text">{event.text}</p>}
          {event.data?.image && <img src={event.data.image} alt="image sent by the bot" />}
          {event.data?.buttons && (
            <ul class="buttons" aria-label="Buttons offered">
              {event.data.buttons.map((b) => (
                <li title={b.payload}>{b.title}</li>
              ))}
            </ul>
          )}
        </li>
      );
    case "action":
      if (event.name === "action_listen") return null;
      return (
        <li class="action">
          <span class="action-name">{event.name}</span> <span class="policy">{event.policy ?? ""}</span>{" "}
          <span class="confidence">{percent(event.confidence)}</span>
        </li>
      );
    case "slot":
      return (
        <li class="slot">
          slot <code>{event.name}</code> = <code>{JSON.stringify(event.value)}</code>
        </li>
      );
    default:
      return null;
  }
}

function TagEditor({ conversation, reload, may }: { conversation: Conversation; reload: () => void; may: boolean }) {
  const path = `/api/conversations/${segment(conversation.sender_id)}/tags`;
  const add = async (event: Event) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const data = new FormData(form);
    await api.post(path, [{ value: String(data.get("value")).trim(), color: String(data.get("color")) }]);
    form.reset();
    reload();
  };
  return (
    <div class="tags">
      <h2>Tags</h2>
      <ul aria-label="Tags of this conversation">
        {conversation.tags.length === 0 && <li class="empty">No tags</li>}
        {conversation.tags.map((t: Tag) => (
          <li class="tag" style={{ borderColor: t.color }}>
            {t.value}
            {may && (
              <button type="button" aria-label={`Remove tag ${t.value}`} onClick={() => api.del(`${path}/${t.id}`).then(reload)}>
                ×
              </button>
            )}
          </li>
        ))}
      </ul>
      {may && (
        <form onSubmit={add} class="inline">
          <label>
            New tag <input name="value" required maxLength={100} />
          </label>
          <label>
            Colour <input name="color" type="color" value="#3b82f6" />
          </label>
          <button type="submit">Add tag</button>
        </form>
      )}
    </div>
  );
}

export function ConversationView() {
  const { params } = useRoute();
  const { route } = useLocation();
  const { user, doc } = useSession();
  const sender = decodeURIComponent(params.sender);
  const base = `/api/conversations/${segment(sender)}`;
  const [conversation, setConversation] = useState<Conversation | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [tab, setTab] = useState<"turns" | "tracker" | "story">("turns");
  const [tracker, setTracker] = useState<unknown>(null);
  const [story, setStory] = useState<string | null>(null);
  const storyFile = useMemo(() => (story === null ? null : URL.createObjectURL(new Blob([story], { type: "application/x-yaml" }))), [story]);
  const [confirming, setConfirming] = useState(false);
  const [corrected, setCorrected] = useState<Map<number, string>>(new Map());
  const turns = useRef<HTMLOListElement>(null);
  const earlierMark = useRef<HTMLLIElement>(null);
  const [loadingEarlier, setLoadingEarlier] = useState(false);
  // Distance from the bottom of the list before older events are put on top, to keep the
  // turns in view where they were.
  const keepBottom = useRef<number | null>(null);
  const may = (method: string, path: string) => allowed(doc, user!.roles, method, path);

  // A reload (after a flag, a correction, a tag) reads as many of the newest events as are shown.
  const shown = conversation?.sender_id === sender ? conversation.events.length : 0;
  const load = () =>
    Promise.all([api.get<Conversation>(`${base}?events_limit=${Math.min(EVENTS_AT_MOST, Math.max(EVENTS_PAGE, shown))}`), api.get<{ messages: { timestamp: number; corrected_intent?: string | null }[] }>(`${base}/messages`)]).then(
      ([c, m]) => {
        setConversation(c);
        setCorrected(new Map(m.messages.filter((x) => x.corrected_intent).map((x) => [x.timestamp, x.corrected_intent!])));
      },
      (e) => setError(describe(e)),
    );
  useEffect(() => {
    load();
  }, [base]);
  // Long conversations open at the newest turn.
  useEffect(() => {
    if (!conversation || !turns.current) return;
    turns.current.lastElementChild?.scrollIntoView({ block: "end" });
    turns.current.scrollTop = turns.current.scrollHeight;
  }, [conversation?.sender_id]);
  const loadEarlier = async () => {
    if (!conversation?.events_earlier || loadingEarlier || !turns.current) return;
    setLoadingEarlier(true);
    try {
      const page = await api.get<{ events: RasaEvent[]; earlier: string | null }>(
        `${base}/events?limit=${EVENTS_PAGE}&before=${encodeURIComponent(conversation.events_earlier)}`,
      );
      keepBottom.current = turns.current.scrollHeight - turns.current.scrollTop;
      setConversation({ ...conversation, events: [...page.events, ...conversation.events], events_earlier: page.earlier });
    } catch (e) {
      setError(describe(e));
    } finally {
      setLoadingEarlier(false);
    }
  };
  useLayoutEffect(() => {
    if (keepBottom.current === null || !turns.current) return;
    turns.current.scrollTop = turns.current.scrollHeight - keepBottom.current;
    keepBottom.current = null;
  }, [conversation?.events.length]);
  // Scrolling up to the top of the loaded turns loads the page before them.
  useEffect(() => {
    const mark = earlierMark.current;
    if (!mark || !turns.current) return;
    const observer = new IntersectionObserver((entries) => entries.some((e) => e.isIntersecting) && loadEarlier(), {
      root: turns.current,
      rootMargin: "300px 0px 0px 0px",
    });
    observer.observe(mark);
    return () => observer.disconnect();
  }, [conversation?.events_earlier, tab, loadingEarlier]);
  useEffect(() => {
    if (tab === "tracker" && tracker === null) api.get(`${base}/tracker`).then(setTracker);
    if (tab === "story" && story === null) api.text(`${base}/test_story`).then(setStory, (e) => setStory(`# ${e.message}`));
  }, [tab]);

  if (error)
    return (
      <section>
        <h1>Conversation {sender}</h1>
        <p role="alert" class="error">
          {error}
        </p>
        <a href="/conversations">Back to the conversations</a>
      </section>
    );
  if (!conversation) return <p role="status">Loading…</p>;

  const review = async (status: string) => {
    setConversation(await api.put<Conversation>(`${base}/reviewStatus`, { review_status: status }).then(() => api.get<Conversation>(base)));
  };
  const mayReview = may("PUT", `${P}/messages/{timestamp}/flag`);
  const flag = async (event: RasaEvent, flagged: boolean) => {
    const path = `${base}/messages/${event.timestamp}/flag`;
    await (flagged ? api.put(path) : api.del(path));
    await load();
  };
  const correct = async (event: RasaEvent, intent: string, entities: Entity[]) => {
    await api.put(`${base}/messages/${event.timestamp}/intent`, { intent, entities });
    await load();
  };
  const remove = async () => {
    await api.del(base);
    route("/conversations");
  };

  return (
    <section aria-labelledby="conversation-title" class="conversation">
      <p>
        <a href="/conversations" onClick={(e) => { if (history.length > 1) { e.preventDefault(); history.back(); } }}>
          ← Conversations
        </a>
      </p>
      <h1 id="conversation-title">Conversation {sender}</h1>
      <p class="summary">
        {conversation.n_user_messages} user messages · latest {when(conversation.latest_event_time)} · channel{" "}
        {conversation.latest_input_channel ?? "—"} · status <strong>{REVIEW_LABELS[conversation.review_status]}</strong>
      </p>
      <div class="toolbar" role="group" aria-label="Review">
        {may("PUT", `${P}/reviewStatus`) &&
          (["reviewed", "saved_for_later", "unread"] as const).map((status) => (
            <button type="button" aria-pressed={conversation.review_status === status} onClick={() => review(status)}>
              {{ reviewed: "Mark reviewed", saved_for_later: "Save for later", unread: "Back to unread" }[status]}
            </button>
          ))}
        {may("DELETE", P) && (
          <button type="button" class="danger" onClick={() => setConfirming(true)}>
            Delete conversation
          </button>
        )}
      </div>
      <TagEditor conversation={conversation} reload={load} may={may("POST", `${P}/tags`)} />
      <div role="tablist" aria-label="Views of the conversation" class="tabs">
        <button role="tab" id="tab-turns" aria-selected={tab === "turns"} aria-controls="panel-turns" onClick={() => setTab("turns")}>
          Conversation
        </button>
        <button role="tab" id="tab-tracker" aria-selected={tab === "tracker"} aria-controls="panel-tracker" onClick={() => setTab("tracker")}>
          Raw tracker
        </button>
        {may("GET", `${P}/test_story`) && (
          <button role="tab" id="tab-story" aria-selected={tab === "story"} aria-controls="panel-story" onClick={() => setTab("story")}>
            Test story
          </button>
        )}
      </div>
      {tab === "turns" && (
        <div role="tabpanel" id="panel-turns" aria-labelledby="tab-turns">
          <ol class="turns" ref={turns} aria-label="Events">
            {conversation.events_earlier && (
              <li class="earlier" ref={earlierMark}>
                <button type="button" class="link" disabled={loadingEarlier} onClick={loadEarlier}>
                  {loadingEarlier ? "Loading earlier events…" : "Load earlier events"}
                </button>
              </li>
            )}
            {conversation.events.map((event) => (
              <Turn
                event={event}
                corrected={corrected}
                flag={mayReview ? flag : undefined}
                correct={may("PUT", `${P}/messages/{timestamp}/intent`) ? correct : undefined}
              />
            ))}
          </ol>
        </div>
      )}
      {tab === "tracker" && (
        <div role="tabpanel" id="panel-tracker" aria-labelledby="tab-tracker">
          <pre class="raw" tabIndex={0}>
            {tracker === null ? "Loading…" : JSON.stringify(tracker, null, 2)}
          </pre>
        </div>
      )}
      {tab === "story" && (
        <div role="tabpanel" id="panel-story" aria-labelledby="tab-story">
          <p>
            The conversation as a Rasa end-to-end test story: add it to your project's <code>tests/</code> and run{" "}
            <code>rasa test</code>.{" "}
            {storyFile && (
              <a href={storyFile} download={`test_${sender.replace(/[^\w.-]+/g, "_")}.yml`}>
                Download the test story
              </a>
            )}
          </p>
          <pre class="raw" tabIndex={0} aria-label="Test story YAML">
            {story ?? "Loading…"}
          </pre>
        </div>
      )}
      {confirming && (
        <Confirm title="Delete this conversation?" confirm="Delete" onCancel={() => setConfirming(false)} onConfirm={remove}>
          <p>
            Conversation <strong>{sender}</strong> and all its events are deleted for good.
          </p>
        </Confirm>
      )}
    </section>
  );
}
