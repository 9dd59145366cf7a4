// The one way the UI talks to rasa-x: JSON over /api with the session's bearer token, errors
// turned into ApiError carrying the API's own {message, reason} (docs/design.md §6).

const TOKEN_KEY = "rasax.token";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly reason: string,
  ) {
    super(message);
  }
}

export function storedToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function storeToken(token: string | null): void {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

// Called when the API says the token is no longer good (expired, user deleted): the session ends.
let onUnauthorized: () => void = () => {};
export function whenUnauthorized(handler: () => void): void {
  onUnauthorized = handler;
}

export interface Page<T> {
  items: T[];
  total: number;
}

async function send(method: string, path: string, body?: unknown): Promise<Response> {
  const headers: Record<string, string> = { Accept: "application/json" };
  const token = storedToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  let payload: BodyInit | undefined;
  if (body instanceof FormData) payload = body;
  else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const response = await fetch(path, { method, headers, body: payload });
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    let reason = "error";
    try {
      const error = await response.json();
      message = error.message ?? message;
      reason = error.reason ?? reason;
    } catch {
      // not JSON (a proxy's error page): the status line says enough
    }
    if (response.status === 401 && token && path !== "/api/auth") onUnauthorized();
    throw new ApiError(response.status, message, reason);
  }
  return response;
}

async function json<T>(response: Response): Promise<T> {
  return response.status === 204 ? (undefined as T) : ((await response.json()) as T);
}

export const api = {
  get: async <T>(path: string) => json<T>(await send("GET", path)),
  /** A list route that pages: the items and the exact total from X-Total-Count. */
  page: async <T>(path: string): Promise<Page<T>> => {
    const response = await send("GET", path);
    const items = (await response.json()) as T[];
    const total = Number(response.headers.get("X-Total-Count") ?? items.length);
    return { items, total };
  },
  /** A route that answers text (YAML, say) rather than JSON. */
  text: async (path: string) => (await send("GET", path)).text(),
  /** A file to save (an export), fetched with the session's token that a plain link would lack. */
  blob: async (path: string) => (await send("GET", path)).blob(),
  post: async <T>(path: string, body?: unknown) => json<T>(await send("POST", path, body)),
  put: async <T>(path: string, body?: unknown) => json<T>(await send("PUT", path, body)),
  del: async <T>(path: string) => json<T>(await send("DELETE", path)),
};

/** A path segment: sender ids may hold '/', which the API takes encoded (docs/design.md §6). */
export const segment = (value: string) => encodeURIComponent(value);

/** A message of the live updates at /api/ws (docs/design.md, "Live updates"). */
export type LiveMessage =
  | { type: "ready"; username: string }
  | { type: "watching"; conversation_id: string | null }
  | { type: "events"; conversation_id: string; events: Record<string, unknown>[] }
  | { type: "conversations_changed"; conversation_ids: string[] | null }
  | { type: "resync" }
  | { type: "pong" }
  | { type: "error"; reason: string; message: string };

/** The live-update socket of this session; the JWT goes as the first message, not in the URL. */
export function openLive(onMessage: (message: LiveMessage) => void, onClose: (code: number) => void): WebSocket {
  const socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/ws`);
  socket.onopen = () => socket.send(JSON.stringify({ type: "auth", token: storedToken() }));
  socket.onmessage = (event) => onMessage(JSON.parse(event.data) as LiveMessage);
  socket.onclose = (event) => {
    if (event.code === 4401) onUnauthorized();
    onClose(event.code);
  };
  return socket;
}
