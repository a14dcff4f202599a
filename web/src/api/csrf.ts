// CSRF double submit: the server sets a readable cookie on any GET under /api/v1; every
// POST/PUT/PATCH/DELETE must echo its value in the X-CSRF-Token header.

export const CSRF_HEADER = "X-CSRF-Token";
const COOKIE_NAMES = ["__Host-lfusys_csrf", "lfusys_csrf"];

/** The CSRF token from the cookie, or null if no GET has handed one out yet. */
export function csrfToken(cookies: string = document.cookie): string | null {
  for (const part of cookies.split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name !== undefined && COOKIE_NAMES.includes(name)) return decodeURIComponent(rest.join("="));
  }
  return null;
}

/** Make sure the CSRF cookie exists (any GET under /api/v1 sets it) and return its value. */
export async function ensureCsrfToken(): Promise<string> {
  const existing = csrfToken();
  if (existing) return existing;
  await fetch("/api/v1/auth/providers", { credentials: "same-origin" });
  const token = csrfToken();
  if (!token) throw new Error("the server did not hand out a CSRF token");
  return token;
}
