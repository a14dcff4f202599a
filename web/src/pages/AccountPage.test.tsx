// @vitest-environment jsdom
import { act } from "react";
import { createRoot, type Root } from "react-dom/client";
import { MemoryRouter } from "react-router";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { type, until } from "../test/dom";
import type { User } from "../api/types";

vi.mock("../api/csrf", () => ({ CSRF_HEADER: "X-CSRF-Token", ensureCsrfToken: async () => "token" }));
// The real auth state, without the upload engine behind it.
vi.mock("../state/uploads", () => ({ claimEngine: () => undefined, resetEngine: () => undefined }));

const { AccountPage } = await import("./AccountPage");
const { RequireAuth } = await import("../components/RequireAuth");
const { AuthProvider } = await import("../state/auth");

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

type Call = { method: string; url: string; body: unknown };

function json(status: number, body?: unknown): Response {
  return new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json" },
  });
}

describe("the account page", () => {
  let container: HTMLDivElement;
  let root: Root;
  let calls: Call[];
  let user: User;
  let answerPassword: (body: { password: string; current_password?: string }) => Response | Promise<Response>;

  beforeEach(() => {
    calls = [];
    answerPassword = () => new Response(null, { status: 204 });
    vi.stubGlobal("fetch", async (url: string, init: RequestInit) => {
      const method = init.method ?? "GET";
      const body: unknown = init.body ? JSON.parse(init.body as string) : undefined;
      calls.push({ method, url, body });
      if (method === "GET" && url === "/api/v1/auth/me") return json(200, user);
      if (method === "PUT" && url === "/api/v1/auth/password") return answerPassword(body as { password: string });
      if (method === "GET" && url === "/api/v1/tokens") return json(200, { tokens: [] });
      throw new Error(`unexpected fetch ${method} ${url}`);
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

  const $ = <T extends Element = HTMLElement>(testId: string) => container.querySelector<T>(`[data-testid="${testId}"]`);
  const input = (testId: string) => $<HTMLInputElement>(testId);
  const heading = () => $("password-form")?.querySelector("h2")?.textContent;
  const passwordCalls = () => calls.filter((call) => call.url === "/api/v1/auth/password");
  const meCalls = () => calls.filter((call) => call.url === "/api/v1/auth/me");

  async function open(signedIn: User): Promise<void> {
    user = signedIn;
    await act(async () => {
      root.render(
        <MemoryRouter initialEntries={["/account"]}>
          <AuthProvider>
            <RequireAuth>
              <AccountPage />
            </RequireAuth>
          </AuthProvider>
        </MemoryRouter>,
      );
    });
    await until(() => $("account-page"));
  }

  async function fill(fields: Record<string, string>): Promise<void> {
    for (const [testId, value] of Object.entries(fields)) act(() => type(input(testId)!, value));
  }

  async function submit(): Promise<void> {
    await act(async () => $<HTMLButtonElement>("password-submit")!.click());
  }

  const providerNames = () => [...$("account-providers")!.querySelectorAll("li")].map((item) => item.textContent);

  it("shows the profile and names each way to sign in in words", async () => {
    await open({ id: "u1", email: "ada@example.com", name: "Ada Lovelace", providers: ["password", "github", "google"] });

    expect($("account-page")!.textContent).toContain("Ada Lovelace");
    expect($("account-page")!.textContent).toContain("ada@example.com");
    expect(providerNames()).toEqual(["Email and password", "GitHub", "Google"]);
    expect($("account-no-password")).toBeNull();
  });

  it("has an API tokens section after the password form", async () => {
    await open({ id: "u1", email: "ada@example.com", name: "Ada", providers: ["password"] });

    const tokens = await until(() => $("tokens-empty") && $("api-tokens"));
    expect(tokens.querySelector("h2")!.textContent).toBe("API tokens");
    expect(tokens.textContent).toContain("lfusys");
    expect($("password-form")!.compareDocumentPosition(tokens) & Node.DOCUMENT_POSITION_FOLLOWING).toBeTruthy();
    expect(calls.filter((call) => call.url === "/api/v1/tokens").map((call) => call.method)).toEqual(["GET"]);
  });

  it("lets a GitHub-only account set a password, sending it alone, then shows it as a way to sign in", async () => {
    await open({ id: "u1", email: "ada@example.com", name: "Ada", providers: ["github"] });

    expect(heading()).toBe("Set a password");
    expect(input("current-password")).toBeNull();
    expect(providerNames()).toEqual(["GitHub"]);
    expect($("account-no-password")!.textContent).toBe(
      "This account signs in only with GitHub. Set a password to also sign in with your email address.",
    );
    expect(input("new-password")!.autocomplete).toBe("new-password");
    expect(input("repeat-password")!.autocomplete).toBe("new-password");

    answerPassword = () => {
      user = { ...user, providers: ["password", "github"] };
      return new Response(null, { status: 204 });
    };
    await fill({ "new-password": "correct horse battery", "repeat-password": "correct horse battery" });
    await submit();

    expect(passwordCalls().map((call) => [call.method, call.body])).toEqual([["PUT", { password: "correct horse battery" }]]);
    await until(() => heading() === "Change password");
    expect(meCalls()).toHaveLength(2);
    expect($("password-message")!.getAttribute("role")).toBe("status");
    expect($("password-message")!.textContent).toBe("Password set. You can now sign in with your email address.");
    expect(input("new-password")!.value).toBe("");
    expect(input("repeat-password")!.value).toBe("");
    expect(input("current-password")).not.toBeNull();
    expect(providerNames()).toEqual(["Email and password", "GitHub"]);
    expect($("account-no-password")).toBeNull();
  });

  it("asks an account with a password for the current one, and sends both", async () => {
    await open({ id: "u1", email: "ada@example.com", name: "Ada", providers: ["password"] });

    expect(heading()).toBe("Change password");
    expect(input("current-password")!.autocomplete).toBe("current-password");

    await fill({ "new-password": "correct horse battery", "repeat-password": "correct horse battery" });
    await submit();
    expect($("password-message")!.textContent).toBe("Enter your current password.");
    expect(passwordCalls()).toHaveLength(0);
    await until(() => document.activeElement === input("current-password"));

    let answer!: (response: Response) => void;
    answerPassword = () => new Promise((resolve) => (answer = resolve));
    await fill({ "current-password": "old password" });
    await submit();

    const button = $<HTMLButtonElement>("password-submit")!;
    expect(button.disabled).toBe(true);
    expect(passwordCalls().map((call) => call.body)).toEqual([
      { password: "correct horse battery", current_password: "old password" },
    ]);

    await act(async () => answer(new Response(null, { status: 204 })));
    await until(() => $("password-message")?.textContent === "Password changed.");
    expect(button.disabled).toBe(false);
    expect(input("current-password")!.value).toBe("");
  });

  it("says when the current password is wrong (403) and keeps what was typed", async () => {
    await open({ id: "u1", email: "ada@example.com", name: "Ada", providers: ["password", "github"] });
    answerPassword = () => json(403, { error: "the current password is wrong" });

    await fill({
      "current-password": "not my password",
      "new-password": "correct horse battery",
      "repeat-password": "correct horse battery",
    });
    await submit();

    const message = await until(() => $("password-message"));
    expect(message.getAttribute("role")).toBe("alert");
    expect(message.textContent).toBe("The current password is not right.");
    expect(input("current-password")!.value).toBe("not my password");
    expect(input("new-password")!.value).toBe("correct horse battery");
    expect(input("repeat-password")!.value).toBe("correct horse battery");
    expect(input("current-password")!.getAttribute("aria-invalid")).toBe("true");
    expect(meCalls()).toHaveLength(1);
  });

  it("shows the server's words for a refused password (400)", async () => {
    await open({ id: "u1", email: "ada@example.com", name: "Ada", providers: ["github"] });
    answerPassword = () => json(400, { error: "the password is too common" });

    await fill({ "new-password": "password123", "repeat-password": "password123" });
    await submit();

    const message = await until(() => $("password-message"));
    expect(message.textContent).toBe("The password is too common");
    expect(heading()).toBe("Set a password");
  });

  it("refuses a too short, too long or mismatched new password without asking the server", async () => {
    await open({ id: "u1", email: "ada@example.com", name: "Ada", providers: ["github"] });

    await fill({ "new-password": "short", "repeat-password": "short" });
    await submit();
    expect($("password-message")!.textContent).toBe("The new password must be at least 8 characters.");
    expect(input("new-password")!.getAttribute("aria-invalid")).toBe("true");

    await fill({ "new-password": "x".repeat(129), "repeat-password": "x".repeat(129) });
    await submit();
    expect($("password-message")!.textContent).toBe("The new password can be at most 128 characters.");

    await fill({ "new-password": "correct horse battery", "repeat-password": "correct horse staple" });
    await submit();
    expect($("password-message")!.textContent).toBe("The two new passwords do not match.");
    expect(input("repeat-password")!.getAttribute("aria-invalid")).toBe("true");
    expect(input("new-password")!.hasAttribute("aria-invalid")).toBe(false);

    expect(passwordCalls()).toHaveLength(0);
  });
});
