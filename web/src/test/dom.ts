// Helpers for page tests that render React into jsdom.

import { act } from "react";

/** Types into a controlled input the way a user does, so React sees the change. */
export function type(input: HTMLInputElement, value: string): void {
  const setValue = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, "value")!.set!;
  setValue.call(input, value);
  input.dispatchEvent(new Event("input", { bubbles: true }));
}

/** What `find` finds, once it finds something (letting React render in between); fails after ~0.5 s. */
export async function until<T>(find: () => T | null | undefined | false): Promise<T> {
  for (let i = 0; i < 100; i++) {
    const found = find();
    if (found) return found;
    await act(() => new Promise((resolve) => setTimeout(resolve, 5)));
  }
  throw new Error("not found in time");
}
