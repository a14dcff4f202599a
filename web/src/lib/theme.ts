// Theme choice: light, dark, or follow the system. The inline script in index.html applies the same
// rule before first paint, so keep the storage key and logic in step with it.

export type ThemeChoice = "light" | "dark" | "system";

export const THEME_STORAGE_KEY = "lfusys-theme";

const darkQuery = (): MediaQueryList => window.matchMedia("(prefers-color-scheme: dark)");

export function storedTheme(): ThemeChoice {
  try {
    const value = localStorage.getItem(THEME_STORAGE_KEY);
    if (value === "light" || value === "dark") return value;
  } catch {
    // Storage can be disabled (privacy settings): fall back to the system preference.
  }
  return "system";
}

export function storeTheme(choice: ThemeChoice): void {
  try {
    if (choice === "system") localStorage.removeItem(THEME_STORAGE_KEY);
    else localStorage.setItem(THEME_STORAGE_KEY, choice);
  } catch {
    // Not persisted; the choice still applies to this page.
  }
}

export function applyTheme(choice: ThemeChoice): void {
  const dark = choice === "dark" || (choice === "system" && darkQuery().matches);
  const root = document.documentElement;
  root.classList.toggle("dark", dark);
  root.style.colorScheme = dark ? "dark" : "light";
}

/** Re-apply "system" when the OS setting changes. Returns an unsubscribe function. */
export function watchSystemTheme(onChange: () => void): () => void {
  const query = darkQuery();
  query.addEventListener("change", onChange);
  return () => query.removeEventListener("change", onChange);
}
