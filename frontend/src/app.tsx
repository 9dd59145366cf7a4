import { LocationProvider, Route, Router, useLocation } from "preact-iso";
import { useEffect, useRef, useState } from "preact/hooks";
import type { ComponentChildren } from "preact";
import { mayOpen, type Screen } from "./access";
import { SessionProvider, useSession } from "./session";
import { Login } from "./pages/login";
import { ConversationList } from "./pages/conversations";
import { ConversationView } from "./pages/conversation";
import { Models } from "./pages/models";
import { AnalyticsPage } from "./pages/analytics";
import { Users } from "./pages/users";
import { Inbox, inboxCount, INBOX_CHANGED } from "./pages/inbox";
import { TrainingData } from "./pages/training";
import { Account } from "./pages/account";
import { Share } from "./pages/share";
import { Stories } from "./pages/stories";
import { Guest } from "./pages/guest";
import { Talk } from "./pages/talk";

const NAV: [Screen, string, string][] = [
  ["conversations", "/conversations", "Conversations"],
  ["inbox", "/inbox", "NLU inbox"],
  ["training", "/training-data", "Training data"],
  ["stories", "/stories", "Stories and rules"],
  ["models", "/models", "Models"],
  ["analytics", "/analytics", "Analytics"],
  ["users", "/users", "Users"],
  ["talk", "/talk", "Talk to your bot"],
  ["share", "/share", "Share your bot"],
];

function Shell({ children }: { children: ComponentChildren }) {
  const { user, doc, logout } = useSession();
  const { path } = useLocation();
  const main = useRef<HTMLElement>(null);
  // A new screen moves focus to its content, as a page load would for a screen reader.
  useEffect(() => main.current?.focus(), [path]);
  const [waiting, setWaiting] = useState<number | null>(null);
  const mayInbox = mayOpen(doc, user!.roles, "inbox");
  useEffect(() => {
    if (!mayInbox) return;
    const refresh = () => inboxCount().then(setWaiting, () => setWaiting(null));
    refresh();
    addEventListener(INBOX_CHANGED, refresh);
    return () => removeEventListener(INBOX_CHANGED, refresh);
  }, [mayInbox]);
  return (
    <div class="shell">
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <span class="brand">Rasa X</span>
        <nav aria-label="Main">
          <ul>
            {NAV.filter(([screen]) => mayOpen(doc, user!.roles, screen)).map(([, href, label]) => (
              <li key={href}>
                <a href={href} aria-current={path.startsWith(href) ? "page" : undefined}>
                  {label}
                  {href === "/inbox" && waiting !== null && (
                    <span class="badge">
                      <span class="visually-hidden">, </span>
                      {waiting}
                      <span class="visually-hidden"> waiting</span>
                    </span>
                  )}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <a class="who" href="/account" aria-current={path === "/account" ? "page" : undefined}>
          {user!.username} <small>({user!.roles.join(", ")})</small>
        </a>
        <button type="button" onClick={logout}>
          Log out
        </button>
      </header>
      <main id="main" ref={main} tabIndex={-1}>
        {children}
      </main>
    </div>
  );
}

/** A screen the user's roles do not open says so, instead of failing on its API calls. */
function Guarded({ screen, children }: { screen: Screen; children: ComponentChildren }) {
  const { user, doc } = useSession();
  if (!mayOpen(doc, user!.roles, screen)) {
    return (
      <section aria-labelledby="denied">
        <h1 id="denied">No permission</h1>
        <p>
          Your role ({user!.roles.join(", ")}) does not allow this page. Ask an admin if you need it.
        </p>
      </section>
    );
  }
  return <>{children}</>;
}

const guard = (screen: Screen, Page: (props: any) => any) => (props: any) => (
  <Guarded screen={screen}>
    <Page {...props} />
  </Guarded>
);
const ListPage = guard("conversations", ConversationList);
const OnePage = guard("conversations", ConversationView);
const ModelsPage = guard("models", Models);
const AnalyticsScreen = guard("analytics", AnalyticsPage);
const InboxPage = guard("inbox", Inbox);
const TrainingPage = guard("training", TrainingData);
const UsersPage = guard("users", Users);
const SharePage = guard("share", Share);
const StoriesPage = guard("stories", Stories);
const TalkPage = guard("talk", Talk);

function Home() {
  const { user, doc } = useSession();
  const { route } = useLocation();
  const first = NAV.find(([screen]) => mayOpen(doc, user!.roles, screen));
  useEffect(() => route(first ? first[1] : "/account", true), []);
  return null;
}

function NotFound() {
  return (
    <section>
      <h1>Page not found</h1>
      <p>
        <a href="/">Back to the start</a>
      </p>
    </section>
  );
}

function Routes() {
  const { user, loading } = useSession();
  const { path, query } = useLocation();
  // The guest chat of a share link needs no account.
  const guest = path.match(/^\/guest\/([^/]+)$/);
  if (guest) return <Guest token={decodeURIComponent(guest[1])} bot={query.bot ?? null} />;
  if (loading) return <p role="status">Loading…</p>;
  if (!user) return <Login />;
  return (
    <Shell>
      <Router>
        <Route path="/" component={Home} />
        <Route path="/conversations" component={ListPage} />
        <Route path="/conversations/:sender" component={OnePage} />
        <Route path="/inbox" component={InboxPage} />
        <Route path="/training-data" component={TrainingPage} />
        <Route path="/training-data/:part" component={TrainingPage} />
        <Route path="/models" component={ModelsPage} />
        <Route path="/analytics" component={AnalyticsScreen} />
        <Route path="/users" component={UsersPage} />
        <Route path="/talk" component={TalkPage} />
        <Route path="/share" component={SharePage} />
        <Route path="/stories" component={StoriesPage} />
        <Route path="/account" component={Account} />
        <Route default component={NotFound} />
      </Router>
    </Shell>
  );
}

export function App() {
  return (
    <LocationProvider>
      <SessionProvider>
        <Routes />
      </SessionProvider>
    </LocationProvider>
  );
}
