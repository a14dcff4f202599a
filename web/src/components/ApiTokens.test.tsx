// @vitest-environment jsdom
import { act } from "react";
import { createRoot, type Root } from "react-dom/client";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { type, until } from "../test/dom";
import type { TokenView } from "../api/types";

vi.mock("../api/csrf", () => ({ CSRF_HEADER: "X-CSRF-Token", ensureCsrfToken: async () => "token" }));

const { ApiTokens } = await import("./ApiTokens");

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

type Call = { method: string; url: string; body: unknown };

function json(status: number, body?: unknown): Response {
  return new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json" },
  });
}

const SECRET = "lfusys_s3cr3t-only-once";

const LAPTOP: TokenView = {
  id: "t-laptop",
  name: "laptop backup",
  scopes: ["upload", "read"],
  created_at: "2025-03-01T10:00:00Z",
  last_used_at: null,
  expires_at: null,
};

const CI: TokenView = {
  id: "t-ci",
  name: "CI cleanup",
  scopes: ["read", "delete"],
  created_at: "2025-02-01T10:00:00Z",
  last_used_at: "2025-02-15T12:30:00Z",
  expires_at: "2999-02-01T10:00:00Z",
};

describe("API tokens", () => {
  let container: HTMLDivElement;
  let root: Root;
  let calls: Call[];
  let tokens: TokenView[];
  let answerCreate: (body: Record<string, unknown>) => Response | Promise<Response>;
  let answerRevoke: (id: string) => Response | Promise<Response>;

  beforeEach(() => {
    calls = [];
    tokens = [];
    answerCreate = (body) =>
      json(201, {
        id: "t-new",
        name: body.name,
        scopes: body.scopes,
        token: SECRET,
        created_at: "2025-04-01T09:00:00Z",
        expires_at: body.expires_in_days ? "2025-05-01T09:00:00Z" : null,
      });
    answerRevoke = () => new Response(null, { status: 204 });
    vi.stubGlobal("fetch", async (url: string, init: RequestInit) => {
      const method = init.method ?? "GET";
      const body: unknown = init.body ? JSON.parse(init.body as string) : undefined;
      calls.push({ method, url, body });
      if (method === "GET" && url === "/api/v1/tokens") return json(200, { tokens });
      if (method === "POST" && url === "/api/v1/tokens") return answerCreate(body as Record<string, unknown>);
      const revoke = /^\/api\/v1\/tokens\/([^/]+)$/.exec(url);
      if (method === "DELETE" && revoke) return answerRevoke(decodeURIComponent(revoke[1]!));
      throw new Error(`unexpected fetch ${method} ${url}`);
    });
    // jsdom has <dialog> but not its modal methods.
    HTMLDialogElement.prototype.showModal = function (this: HTMLDialogElement) {
      this.setAttribute("open", "");
    };
    HTMLDialogElement.prototype.close = function (this: HTMLDialogElement) {
      this.removeAttribute("open");
    };
    container = document.createElement("div");
    document.body.append(container);
    root = createRoot(container);
  });

  afterEach(() => {
    delete (navigator as { clipboard?: unknown }).clipboard;
    act(() => root.unmount());
    container.remove();
    vi.unstubAllGlobals();
  });

  const $ = <T extends Element = HTMLElement>(testId: string) => container.querySelector<T>(`[data-testid="${testId}"]`);
  const rows = () => [...container.querySelectorAll<HTMLElement>('[data-testid="token-row"]')];
  const row = (id: string) => container.querySelector<HTMLElement>(`[data-testid="token-row"][data-token-id="${id}"]`);
  const cell = (item: HTMLElement, testId: string) => item.querySelector(`[data-testid="${testId}"]`)!.textContent;
  const writes = () => calls.filter((call) => call.method !== "GET");
  const checkbox = (scope: string) => $<HTMLInputElement>(`token-scope-${scope}`)!;
  const dialog = () => container.querySelector("dialog")!;

  function setClipboard(clipboard: unknown): void {
    Object.defineProperty(navigator, "clipboard", { value: clipboard, configurable: true });
  }

  async function open(): Promise<void> {
    await act(async () => root.render(<ApiTokens />));
    await until(() => $("token-list") ?? $("tokens-empty"));
  }

  async function create(): Promise<void> {
    await act(async () => $<HTMLButtonElement>("token-create")!.click());
  }

  function chooseExpiry(label: string): void {
    const select = $<HTMLSelectElement>("token-expiry")!;
    const option = [...select.options].find((candidate) => candidate.text === label)!;
    act(() => {
      select.value = option.value;
      select.dispatchEvent(new Event("change", { bubbles: true }));
    });
  }

  it("lists tokens with their scopes in words, and says never for unused and unending ones", async () => {
    tokens = [LAPTOP, CI];
    await open();

    expect(rows().map((item) => item.dataset.tokenId)).toEqual(["t-laptop", "t-ci"]);
    const laptop = row("t-laptop")!;
    expect(cell(laptop, "token-row-name")).toBe("laptop backup");
    expect(cell(laptop, "token-row-scopes")).toBe("Upload, Read");
    expect(cell(laptop, "token-row-last-used")).toBe("never");
    expect(cell(laptop, "token-row-expires")).toBe("never");
    const ci = row("t-ci")!;
    expect(cell(ci, "token-row-scopes")).toBe("Read, Delete");
    expect(cell(ci, "token-row-last-used")).not.toBe("never");
    expect(ci.querySelector(`time[datetime="${CI.last_used_at}"]`)).not.toBeNull();
    expect(cell(ci, "token-row-expires")).not.toBe("never");
    expect($("api-tokens")!.textContent).toContain("API tokens");
    expect(laptop.querySelector('[data-testid="token-revoke"]')!.textContent).toBe("Revoke");
  });

  it("says so when there are no tokens, and starts with upload and read checked and no expiry", async () => {
    await open();

    expect($("tokens-empty")!.textContent).toBe("No tokens yet.");
    expect(rows()).toHaveLength(0);
    expect(checkbox("upload").checked).toBe(true);
    expect(checkbox("read").checked).toBe(true);
    expect(checkbox("delete").checked).toBe(false);
    expect($<HTMLSelectElement>("token-expiry")!.selectedOptions[0]!.text).toBe("Never");
    expect([...$<HTMLSelectElement>("token-expiry")!.options].map((option) => option.text)).toEqual([
      "Never",
      "7 days",
      "30 days",
      "90 days",
      "1 year",
    ]);
  });

  it("creates a token without an expiry for Never, shows the secret once, and Done hides it for good", async () => {
    tokens = [LAPTOP];
    await open();
    const writeText = vi.fn(async () => {});
    setClipboard({ writeText });

    act(() => type($<HTMLInputElement>("token-name")!, "  nightly sync  "));
    await create();

    expect(writes().map((call) => [call.method, call.url, call.body])).toEqual([
      ["POST", "/api/v1/tokens", { name: "nightly sync", scopes: ["upload", "read"] }],
    ]);
    const secret = await until(() => $<HTMLInputElement>("token-secret"));
    expect(secret.value).toBe(SECRET);
    expect(secret.readOnly).toBe(true);
    expect(secret.className).toContain("font-mono");
    expect($("token-created")!.textContent).toContain("Copy this token now. It will not be shown again.");
    expect(rows().map((item) => item.dataset.tokenId)).toEqual(["t-new", "t-laptop"]);
    expect(row("t-new")!.textContent).not.toContain(SECRET);
    expect($<HTMLInputElement>("token-name")!.value).toBe("");

    await act(async () => $<HTMLButtonElement>("token-copy")!.click());
    expect(writeText).toHaveBeenCalledWith(SECRET);
    expect($("token-copy-status")!.textContent).toBe("Copied");

    await act(async () => $<HTMLButtonElement>("token-done")!.click());
    expect($("token-secret")).toBeNull();
    expect($("token-created")).toBeNull();
    expect(cell(row("t-new")!, "token-row-name")).toBe("nightly sync");
    expect(cell(row("t-new")!, "token-row-scopes")).toBe("Upload, Read");
    expect(container.innerHTML).not.toContain(SECRET);
    expect(document.body.innerHTML).not.toContain(SECRET);
    expect(calls.filter((call) => call.method === "GET")).toHaveLength(1);
  });

  it("sends the chosen scopes and expiry in days, disables the button while sending, and says to copy by hand without a clipboard", async () => {
    await open();
    setClipboard(undefined);
    let answer!: (response: Response) => void;
    answerCreate = () => new Promise((resolve) => (answer = resolve));

    act(() => type($<HTMLInputElement>("token-name")!, "cleanup"));
    act(() => checkbox("upload").click());
    act(() => checkbox("delete").click());
    chooseExpiry("1 year");
    await create();

    expect(writes().map((call) => call.body)).toEqual([{ name: "cleanup", scopes: ["read", "delete"], expires_in_days: 365 }]);
    expect($<HTMLButtonElement>("token-create")!.disabled).toBe(true);
    await act(async () =>
      answer(
        json(201, {
          id: "t-cleanup",
          name: "cleanup",
          scopes: ["read", "delete"],
          token: SECRET,
          created_at: "2025-04-01T09:00:00Z",
          expires_at: "2026-04-01T09:00:00Z",
        }),
      ),
    );
    await until(() => $("token-secret"));
    expect($<HTMLButtonElement>("token-create")!.disabled).toBe(false);
    expect(cell(row("t-cleanup")!, "token-row-expires")).not.toBe("never");
    expect($("tokens-empty")).toBeNull();

    await act(async () => $<HTMLButtonElement>("token-copy")!.click());
    expect($("token-copy-status")!.textContent).toBe("Select and copy it");
  });

  it("asks for a name and at least one scope without sending anything", async () => {
    await open();

    await create();
    expect($("api-tokens")!.textContent).toContain("Enter a name for the token.");
    expect($<HTMLInputElement>("token-name")!.getAttribute("aria-invalid")).toBe("true");
    await until(() => document.activeElement === $("token-name"));

    act(() => type($<HTMLInputElement>("token-name")!, "   "));
    await create();
    expect($("api-tokens")!.textContent).toContain("Enter a name for the token.");

    act(() => type($<HTMLInputElement>("token-name")!, "script"));
    act(() => checkbox("upload").click());
    act(() => checkbox("read").click());
    await create();
    expect($("api-tokens")!.textContent).toContain("Choose at least one scope.");
    expect(checkbox("upload").getAttribute("aria-invalid")).toBe("true");
    expect($<HTMLInputElement>("token-name")!.hasAttribute("aria-invalid")).toBe(false);

    expect(writes()).toHaveLength(0);
    expect($("token-secret")).toBeNull();
  });

  it("shows the server's words for a refused token (400) and keeps the form", async () => {
    await open();
    answerCreate = () => json(400, { error: "a token with this name already exists" });

    act(() => type($<HTMLInputElement>("token-name")!, "laptop backup"));
    await create();

    const error = await until(() => $("token-error"));
    expect(error.getAttribute("role")).toBe("alert");
    expect(error.textContent).toBe("A token with this name already exists");
    expect($<HTMLInputElement>("token-name")!.value).toBe("laptop backup");
    expect($("token-secret")).toBeNull();
    expect(rows()).toHaveLength(0);
  });

  it("asks before revoking, sends DELETE for that token, and removes its row", async () => {
    tokens = [LAPTOP, CI];
    await open();

    await act(async () => row("t-ci")!.querySelector<HTMLButtonElement>('[data-testid="token-revoke"]')!.click());
    expect(dialog().open).toBe(true);
    expect(dialog().textContent).toContain("Revoke CI cleanup?");
    expect(writes()).toHaveLength(0);

    await act(async () => [...dialog().querySelectorAll("button")].find((button) => button.textContent === "Cancel")!.click());
    expect(dialog().open).toBe(false);
    expect(writes()).toHaveLength(0);

    await act(async () => row("t-ci")!.querySelector<HTMLButtonElement>('[data-testid="token-revoke"]')!.click());
    await act(async () => [...dialog().querySelectorAll("button")].find((button) => button.textContent === "Revoke")!.click());

    expect(writes().map((call) => [call.method, call.url])).toEqual([["DELETE", "/api/v1/tokens/t-ci"]]);
    await until(() => !row("t-ci"));
    expect(rows().map((item) => item.dataset.tokenId)).toEqual(["t-laptop"]);
    expect(dialog().open).toBe(false);
  });

  it("keeps the row and shows why when revoking fails", async () => {
    tokens = [LAPTOP];
    await open();
    answerRevoke = () => json(500, { error: "database unavailable" });

    await act(async () => row("t-laptop")!.querySelector<HTMLButtonElement>('[data-testid="token-revoke"]')!.click());
    await act(async () => [...dialog().querySelectorAll("button")].find((button) => button.textContent === "Revoke")!.click());

    const alert = await until(() => dialog().querySelector('[role="alert"]'));
    expect(alert.textContent).toBe("Database unavailable");
    expect(dialog().open).toBe(true);
    expect(row("t-laptop")).not.toBeNull();
  });
});
