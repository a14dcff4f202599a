// @vitest-environment jsdom
import { act } from "react";
import { createRoot, type Root } from "react-dom/client";
import { MemoryRouter, Route, Routes } from "react-router";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

vi.mock("../state/auth", () => ({
  useAuth: () => ({ signOut: async () => undefined }),
}));

const { UserMenu } = await import("./UserMenu");

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

const user = { id: "u1", email: "ada@example.com", name: "Ada Lovelace", providers: ["github"] };

describe("the account menu", () => {
  let container: HTMLDivElement;
  let root: Root;

  beforeEach(async () => {
    container = document.createElement("div");
    document.body.append(container);
    root = createRoot(container);
    await act(async () => {
      root.render(
        <MemoryRouter initialEntries={["/files"]}>
          <UserMenu user={user} />
          <Routes>
            <Route path="files" element={<h1>Files</h1>} />
            <Route path="account" element={<h1>Account page</h1>} />
          </Routes>
        </MemoryRouter>,
      );
    });
  });

  afterEach(() => {
    act(() => root.unmount());
    container.remove();
  });

  const trigger = () => container.querySelector<HTMLButtonElement>('[data-testid="user-menu-button"]')!;
  const account = () => container.querySelector<HTMLAnchorElement>('[data-testid="user-menu-account"]')!;

  it("offers Account before Sign out, and focuses it on opening", async () => {
    await act(async () => trigger().click());

    expect(trigger().getAttribute("aria-expanded")).toBe("true");
    const panel = document.getElementById(trigger().getAttribute("aria-controls")!)!;
    const actions = [...panel.querySelectorAll("a, button")].map((element) => element.textContent);
    expect(actions).toEqual(["Account", "Sign out"]);
    expect(account().getAttribute("href")).toBe("/account");
    expect(document.activeElement).toBe(account());
  });

  it("goes to /account and closes the menu", async () => {
    await act(async () => trigger().click());
    await act(async () => account().click());

    expect(container.querySelector("h1")!.textContent).toBe("Account page");
    expect(trigger().getAttribute("aria-expanded")).toBe("false");
    expect(document.activeElement).toBe(trigger());
  });

  it("still closes on Escape and returns focus to the trigger", async () => {
    await act(async () => trigger().click());
    await act(async () => document.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape" })));

    expect(trigger().getAttribute("aria-expanded")).toBe("false");
    expect(document.activeElement).toBe(trigger());
  });
});
