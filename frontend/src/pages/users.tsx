import { useEffect, useState } from "preact/hooks";
import { useAction } from "../action";
import { api, segment } from "../api";
import { Confirm } from "../components/confirm";
import { useSession } from "../session";

interface Account {
  username: string;
  roles: string[];
}

const ROLES = ["admin", "annotator", "tester", "guest"];

export function Users() {
  const { user } = useSession();
  const [users, setUsers] = useState<Account[] | null>(null);
  const [deleting, setDeleting] = useState<string | null>(null);
  const [resetting, setResetting] = useState<string | null>(null);
  const load = () => api.get<Account[]>("/api/users").then(setUsers);
  useEffect(() => {
    load();
  }, []);

  const [message, act] = useAction(load);
  const create = (event: Event) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const data = new FormData(form);
    const username = String(data.get("username"));
    act(api.post("/api/users", { username, password: String(data.get("password")), roles: [String(data.get("role"))] }), `User ${username} created`).then(() =>
      form.reset(),
    );
  };

  return (
    <section aria-labelledby="users-title">
      <h1 id="users-title">Users</h1>
      <form onSubmit={create} class="inline" aria-label="Create a user">
        <label>
          Username <input name="username" required autocomplete="off" />
        </label>
        <label>
          Password <input name="password" type="password" required minLength={8} autocomplete="new-password" />
        </label>
        <label>
          Role
          <select name="role">
            {ROLES.map((r) => (
              <option value={r}>{r}</option>
            ))}
          </select>
        </label>
        <button type="submit">Create user</button>
      </form>
      <p role="status" aria-live="polite">
        {message}
      </p>
      {users && (
        <table class="list">
          <thead>
            <tr>
              <th scope="col">User</th>
              <th scope="col">Role</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {users.map((u) => (
              <tr key={u.username}>
                <th scope="row">{u.username}</th>
                <td>
                  <select
                    aria-label={`Role of ${u.username}`}
                    value={u.roles[0]}
                    onChange={(e) => act(api.put(`/api/users/${segment(u.username)}`, { roles: [e.currentTarget.value] }), `${u.username} is now ${e.currentTarget.value}`)}
                  >
                    {ROLES.map((r) => (
                      <option value={r}>{r}</option>
                    ))}
                  </select>
                </td>
                <td>
                  {resetting === u.username ? (
                    <form
                      class="inline"
                      onSubmit={(e) => {
                        e.preventDefault();
                        const password = String(new FormData(e.currentTarget).get("password"));
                        setResetting(null);
                        act(api.put(`/api/users/${segment(u.username)}`, { password }), `${u.username} has a new password`);
                      }}
                    >
                      <label>
                        New password for {u.username} <input name="password" type="password" required minLength={8} autocomplete="new-password" autofocus />
                      </label>
                      <button type="submit">Set password</button>
                      <button type="button" onClick={() => setResetting(null)}>
                        Cancel
                      </button>
                    </form>
                  ) : (
                    <button type="button" aria-label={`Reset the password of ${u.username}`} onClick={() => setResetting(u.username)}>
                      Reset password
                    </button>
                  )}{" "}
                  {u.username !== user!.username && (
                    <button type="button" class="danger" aria-label={`Delete user ${u.username}`} onClick={() => setDeleting(u.username)}>
                      Delete
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {deleting && (
        <Confirm
          title="Delete this user?"
          confirm="Delete"
          onCancel={() => setDeleting(null)}
          onConfirm={() => {
            const name = deleting;
            setDeleting(null);
            act(api.del(`/api/users/${segment(name)}`), `User ${name} deleted`);
          }}
        >
          <p>
            <strong>{deleting}</strong> can no longer log in.
          </p>
        </Confirm>
      )}
    </section>
  );
}
