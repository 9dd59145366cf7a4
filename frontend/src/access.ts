// What the signed-in user may do, read from the API's own OpenAPI document (each operation
// lists the roles it admits in `x-roles`), so the UI never keeps a second copy of the role
// table of services/backend/auth.py.

export interface Operation {
  security?: unknown[];
  "x-roles"?: string[];
}
export interface ApiDocument {
  paths: Record<string, Record<string, Operation>>;
}

/** Whether a user with `roles` may call `method path` (path as written in the document). */
export function allowed(doc: ApiDocument | null, roles: readonly string[], method: string, path: string): boolean {
  const operation = doc?.paths[path]?.[method.toLowerCase()];
  if (!operation) return false;
  const admitted = operation["x-roles"];
  if (!admitted) return true; // public, or any signed-in user
  return roles.some((role) => admitted.includes(role));
}

/** The API route each screen is built on: the screen is shown to whoever may call it. */
export const SCREEN_ROUTES = {
  conversations: ["GET", "/api/conversations"],
  inbox: ["GET", "/api/projects/default/logs"],
  training: ["GET", "/api/projects/default/training_examples"],
  stories: ["GET", "/api/stories"],
  models: ["GET", "/api/models"],
  analytics: ["GET", "/api/statistics/analytics"],
  users: ["GET", "/api/users"],
  share: ["PUT", "/api/chatToken"],
  talk: ["POST", "/api/conversations/{sender_id}/messages"],
} as const;
export type Screen = keyof typeof SCREEN_ROUTES;

export function mayOpen(doc: ApiDocument | null, roles: readonly string[], screen: Screen): boolean {
  const [method, path] = SCREEN_ROUTES[screen];
  return allowed(doc, roles, method, path);
}
