import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/preact";
import { afterEach, describe, expect, it, vi } from "vitest";
import { SessionProvider } from "../session";
import { Login } from "./login";

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
  sessionStorage.clear();
});

describe("the log-in form", () => {
  it("shows the API's refusal as an alert and keeps no token", async () => {
    const fetch = vi.fn(async () => new Response(JSON.stringify({ message: "wrong username or password", reason: "bad_credentials" }), { status: 401 }));
    vi.stubGlobal("fetch", fetch);
    render(
      <SessionProvider>
        <Login />
      </SessionProvider>,
    );
    fireEvent.input(screen.getByLabelText("Username"), { target: { value: "admin" } });
    fireEvent.input(screen.getByLabelText("Password"), { target: { value: "nope" } });
    fireEvent.submit(screen.getByRole("button", { name: "Log in" }).closest("form")!);
    await waitFor(() => expect(screen.getByRole("alert").textContent).toBe("wrong username or password"));
    expect(fetch).toHaveBeenCalledWith("/api/auth", expect.objectContaining({ method: "POST" }));
    expect(sessionStorage.getItem("rasax.token")).toBeNull();
  });
});
