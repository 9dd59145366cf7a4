// Who is signed in: the token (sessionStorage, so it ends with the tab), the account from
// GET /api/user and the API document that says what the account's roles may do.
import { createContext, type ComponentChildren } from "preact";
import { useContext, useEffect, useState } from "preact/hooks";
import { type ApiDocument } from "./access";
import { api, storedToken, storeToken, whenUnauthorized } from "./api";

export interface User {
  username: string;
  roles: string[];
}

export interface Session {
  user: User | null;
  doc: ApiDocument | null;
  loading: boolean;
  login(username: string, password: string): Promise<void>;
  logout(): void;
}

const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error("useSession outside <SessionProvider>");
  return session;
}

async function load(): Promise<[User, ApiDocument]> {
  return Promise.all([api.get<User>("/api/user"), api.get<ApiDocument>("/api/openapi.json")]);
}

export function SessionProvider({ children }: { children: ComponentChildren }) {
  const [user, setUser] = useState<User | null>(null);
  const [doc, setDoc] = useState<ApiDocument | null>(null);
  const [loading, setLoading] = useState(storedToken() !== null);

  const logout = () => {
    storeToken(null);
    setUser(null);
    setDoc(null);
  };

  useEffect(() => {
    whenUnauthorized(logout);
    if (!storedToken()) return;
    load()
      .then(([u, d]) => {
        setUser(u);
        setDoc(d);
      })
      .catch(logout)
      .finally(() => setLoading(false));
  }, []);

  const login = async (username: string, password: string) => {
    const { access_token } = await api.post<{ access_token: string }>("/api/auth", { username, password });
    storeToken(access_token);
    const [u, d] = await load();
    setUser(u);
    setDoc(d);
  };

  return <SessionContext.Provider value={{ user, doc, loading, login, logout }}>{children}</SessionContext.Provider>;
}
