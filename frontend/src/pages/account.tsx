import { useEffect, useState } from "preact/hooks";
import { describe } from "../action";
import { api } from "../api";
import { useSession } from "../session";

interface OwnAccount {
  username: string;
  roles: string[];
  api_token?: string;
}

/** The signed-in user's own account: roles, API token (shown on request), password change. */
export function Account() {
  const { user } = useSession();
  const [account, setAccount] = useState<OwnAccount | null>(null);
  const [showToken, setShowToken] = useState(false);
  const [message, setMessage] = useState<{ text: string; error: boolean } | null>(null);
  useEffect(() => {
    api.get<OwnAccount>("/api/user").then(setAccount);
  }, []);

  const change = async (event: Event) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const data = new FormData(form);
    const next = String(data.get("new_password"));
    if (next !== String(data.get("new_password_confirm"))) {
      setMessage({ text: "The new passwords differ", error: true });
      return;
    }
    try {
      await api.post("/api/user/password", { old_password: String(data.get("old_password")), new_password: next });
      setMessage({ text: "Password changed", error: false });
      form.reset();
    } catch (e) {
      setMessage({ text: describe(e), error: true });
    }
  };

  return (
    <section aria-labelledby="account-title">
      <h1 id="account-title">Account</h1>
      <p>
        Signed in as <strong>{user!.username}</strong> with the roles {user!.roles.join(", ")}.
      </p>
      {account?.api_token && (
        <p>
          API token (for <code>?api_token=</code>):{" "}
          <code aria-label="API token">{showToken ? account.api_token : "•".repeat(16)}</code>{" "}
          <button type="button" aria-pressed={showToken} onClick={() => setShowToken(!showToken)}>
            {showToken ? "Hide token" : "Show token"}
          </button>
        </p>
      )}
      <form class="stacked" onSubmit={change} aria-labelledby="password-title">
        <h2 id="password-title">Change password</h2>
        <label>
          Current password <input name="old_password" type="password" required autocomplete="current-password" />
        </label>
        <label>
          New password <input name="new_password" type="password" required minLength={8} autocomplete="new-password" />
        </label>
        <label>
          New password again <input name="new_password_confirm" type="password" required minLength={8} autocomplete="new-password" />
        </label>
        {message && (
          <p role={message.error ? "alert" : "status"} class={message.error ? "error" : ""}>
            {message.text}
          </p>
        )}
        <button type="submit">Change password</button>
      </form>
    </section>
  );
}
