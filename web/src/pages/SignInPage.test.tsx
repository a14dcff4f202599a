// @vitest-environment jsdom
import { act } from "react";
import { createRoot, type Root } from "react-dom/client";
import { MemoryRouter } from "react-router";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { type, until } from "../test/dom";

vi.mock("../api/csrf", () => ({ CSRF_HEADER: "X-CSRF-Token", ensureCsrfToken: async () => "token" }));
// The page signs in through the auth state; here that is the API call alone (no upload engine).
vi.mock("../state/auth", async () => {
  const api = await import("../api/client");
  return {
    useAuth: () => ({
      status: "signedOut",
      user: null,
      error: null,
      signIn: (email: string, password: string) => api.login({ email, password }),
      signOut: async () => undefined,
      reload: () => undefined,
    }),
  };
});

const { SignInPage } = await import("./SignInPage");

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

type Answer = { status: number; body: unknown; headers?: Record<string, string> };

function json({ status, body, headers }: Answer): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json", ...headers },
  });
}

describe("the sign-in page when the server limits attempts", () => {
  let container: HTMLDivElement;
  let root: Root;
  let answers: Record<string, Answer>;

  beforeEach(() => {
    answers = { "/api/v1/auth/providers": { status: 200, body: { providers: [] } } };
    vi.stubGlobal("fetch", async (url: string) => {
      const answer = answers[url];
      if (!answer) throw new Error(`unexpected fetch ${url}`);
      return json(answer);
    });
    container = document.createElement("div");
    document.body.append(container);
    root = createRoot(container);
  });

  afterEach(() => {
    act(() => root.unmount());
    container.remove();
    vi.unstubAllGlobals();
  });

  async function submit(path: string, fields: Record<string, string>): Promise<string> {
    await act(async () => {
      root.render(
        <MemoryRouter initialEntries={[path]}>
          <SignInPage />
        </MemoryRouter>,
      );
    });
    for (const [id, value] of Object.entries(fields)) {
      const input = await until(() => container.querySelector<HTMLInputElement>(`#${id}`));
      act(() => type(input, value));
    }
    const button = container.querySelector<HTMLButtonElement>("button[type=submit]")!;
    await act(async () => button.click());
    const alert = await until(() => container.querySelector('[data-testid="form-error"]'));
    return alert.textContent ?? "";
  }

  it("says how long to wait, from Retry-After, when sign-in is refused with 429", async () => {
    answers["/api/v1/auth/login"] = {
      status: 429,
      body: { error: "too many requests" },
      headers: { "Retry-After": "42" },
    };

    const message = await submit("/signin", { email: "ada@example.com", password: "correct horse battery" });

    expect(message).toBe("Too many attempts — try again in 42 seconds.");
  });

  it("says so on registration too, in the singular for one second", async () => {
    answers["/api/v1/auth/register"] = { status: 429, body: { error: "too many requests" }, headers: { "Retry-After": "1" } };

    const message = await submit("/signin?mode=register", {
      name: "Ada",
      email: "ada@example.com",
      password: "correct horse battery",
    });

    expect(message).toBe("Too many attempts — try again in 1 second.");
  });

  it("falls back to a minute when the 429 names no wait", async () => {
    answers["/api/v1/auth/login"] = { status: 429, body: { error: "too many requests" } };

    const message = await submit("/signin", { email: "ada@example.com", password: "correct horse battery" });

    expect(message).toBe("Too many attempts — try again in a minute.");
  });

  it("tells a busy server (503) from a failed one", async () => {
    answers["/api/v1/auth/login"] = {
      status: 503,
      body: { error: "too many sign-ins at once; try again shortly" },
      headers: { "Retry-After": "1" },
    };

    const message = await submit("/signin", { email: "ada@example.com", password: "correct horse battery" });

    expect(message).toBe("The server is busy. Try again in a moment.");
  });
});

describe("the sign-in page and the sign-in providers", () => {
  let container: HTMLDivElement;
  let root: Root;

  beforeEach(() => {
    vi.stubGlobal("fetch", async (url: string) => {
      if (url !== "/api/v1/auth/providers") throw new Error(`unexpected fetch ${url}`);
      return json({ status: 200, body: { providers: ["github", "google"] } });
    });
    container = document.createElement("div");
    document.body.append(container);
    root = createRoot(container);
  });

  afterEach(() => {
    act(() => root.unmount());
    container.remove();
    vi.unstubAllGlobals();
  });

  async function render(entry: string | { pathname: string; state: unknown }): Promise<void> {
    await act(async () => {
      root.render(
        <MemoryRouter initialEntries={[entry]}>
          <SignInPage />
        </MemoryRouter>,
      );
    });
  }

  it("offers each provider, coming back to the page that asked for a sign-in", async () => {
    await render({ pathname: "/signin", state: { from: { pathname: "/files", search: "?page=2" } } });

    const links = await until(() => {
      const found = [...container.querySelectorAll<HTMLAnchorElement>("a[href*='/auth/']")];
      return found.length === 2 ? found : null;
    });

    expect(links.map((link) => link.textContent)).toEqual(["Continue with GitHub", "Continue with Google"]);
    const github = new URL(links[0].getAttribute("href")!, "http://localhost");
    expect(github.pathname).toBe("/api/v1/auth/github/login");
    expect(github.searchParams.get("next")).toMatch(/^\//);
  });

  it("shows the server's words when a provider sign-in came back with an error", async () => {
    await render("/signin?error=GitHub%20is%20not%20answering.%20Please%20try%20again%20in%20a%20moment.");

    const alert = await until(() => container.querySelector('[data-testid="form-error"]'));

    expect(alert.textContent).toContain("GitHub is not answering. Please try again in a moment.");
  });
});
