import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

vi.mock("./csrf", () => ({ CSRF_HEADER: "X-CSRF-Token", ensureCsrfToken: async () => "token" }));

const { ApiError, createToken, listFiles, listTokens, listUploads, login, me, onSessionEnded, register, revokeToken, setPassword } =
  await import("./client");

type Call = { url: string; init: RequestInit };

function json(status: number, body?: unknown): Response {
  return new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json" },
  });
}

describe("api client", () => {
  let calls: Call[];
  let answers: ((call: Call) => Response | Promise<Response>)[];

  beforeEach(() => {
    calls = [];
    answers = [];
    vi.stubGlobal("fetch", async (url: string, init: RequestInit) => {
      const call = { url, init };
      calls.push(call);
      const answer = answers.shift();
      if (!answer) throw new Error(`unexpected fetch ${url}`);
      return answer(call);
    });
  });

  afterEach(() => vi.unstubAllGlobals());

  it("sends CSRF and JSON on writes, not on reads", async () => {
    answers.push(() => json(201, { id: "u1", email: "a@b.c", name: "A", providers: [] }));
    answers.push(() => json(200, { files: [], next_cursor: null }));
    await register({ name: "A", email: "a@b.c", password: "12345678" });
    await listFiles({ limit: 20, cursor: "abc" });
    const [write, read] = calls;
    expect(write!.url).toBe("/api/v1/auth/register");
    expect(write!.init.headers).toMatchObject({ "X-CSRF-Token": "token", "Content-Type": "application/json" });
    expect(write!.init.credentials).toBe("same-origin");
    expect(read!.url).toBe("/api/v1/files?limit=20&cursor=abc");
    expect(read!.init.headers).not.toHaveProperty("X-CSRF-Token");
  });

  it("asks for pages of unfinished uploads with a limit and the cursor it was given", async () => {
    answers.push(() => json(200, { uploads: [], next_cursor: "next" }));
    answers.push(() => json(200, { uploads: [], next_cursor: null }));
    answers.push(() => json(200, { uploads: [], next_cursor: null }));
    expect(await listUploads({ limit: 20 })).toEqual({ uploads: [], next_cursor: "next" });
    await listUploads({ limit: 20, cursor: "a/b+c" });
    await listUploads();
    expect(calls.map((call) => call.url)).toEqual([
      "/api/v1/uploads?limit=20",
      "/api/v1/uploads?limit=20&cursor=a%2Fb%2Bc",
      "/api/v1/uploads",
    ]);
  });

  it("turns error bodies into ApiError, with a fallback per status", async () => {
    answers.push(() => json(409, { error: "an account with this email already exists" }));
    await expect(register({ name: "A", email: "a@b.c", password: "12345678" })).rejects.toMatchObject({
      status: 409,
      message: "an account with this email already exists",
    });
    answers.push(() => new Response("<html>bad gateway</html>", { status: 502 }));
    await expect(me()).rejects.toMatchObject({ status: 502, message: "The server is not answering" });
    answers.push(() => Promise.reject(new TypeError("Failed to fetch")));
    const error = await me().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 0, message: "Cannot reach the server" });
  });

  it("sets a password with PUT, CSRF and JSON, sending the current one only when given", async () => {
    answers.push(() => new Response(null, { status: 204 }));
    answers.push(() => new Response(null, { status: 204 }));
    await expect(setPassword({ password: "new password" })).resolves.toBeUndefined();
    await setPassword({ password: "newer password", current_password: "new password" });
    const [first, change] = calls;
    expect(first!.url).toBe("/api/v1/auth/password");
    expect(first!.init.method).toBe("PUT");
    expect(first!.init.headers).toMatchObject({ "X-CSRF-Token": "token", "Content-Type": "application/json" });
    expect(JSON.parse(first!.init.body as string)).toEqual({ password: "new password" });
    expect(JSON.parse(change!.init.body as string)).toEqual({ password: "newer password", current_password: "new password" });
  });

  it("reports a wrong current password as a 403, without refreshing", async () => {
    answers.push(() => json(403, { error: "the current password is wrong" }));
    await expect(setPassword({ password: "new password", current_password: "guess1234" })).rejects.toMatchObject({
      status: 403,
      message: "the current password is wrong",
    });
    expect(calls).toHaveLength(1);
  });

  it("creates an API token with POST, CSRF and JSON, and returns its secret", async () => {
    const created = {
      id: "t1",
      name: "laptop",
      scopes: ["upload", "read"],
      token: "lfusys_secret",
      created_at: "2025-01-02T03:04:05Z",
      expires_at: null,
    };
    answers.push(() => json(201, created));
    await expect(createToken({ name: "laptop", scopes: ["upload", "read"] })).resolves.toEqual(created);
    const [call] = calls;
    expect(call!.url).toBe("/api/v1/tokens");
    expect(call!.init.method).toBe("POST");
    expect(call!.init.credentials).toBe("same-origin");
    expect(call!.init.headers).toMatchObject({ "X-CSRF-Token": "token", "Content-Type": "application/json" });
    expect(JSON.parse(call!.init.body as string)).toEqual({ name: "laptop", scopes: ["upload", "read"] });
  });

  it("reports a refused token (400) in the server's words", async () => {
    answers.push(() => json(400, { error: "name must be 1 to 100 characters" }));
    await expect(createToken({ name: "x", scopes: ["read"], expires_in_days: 7 })).rejects.toMatchObject({
      status: 400,
      message: "name must be 1 to 100 characters",
    });
    expect(JSON.parse(calls[0]!.init.body as string)).toEqual({ name: "x", scopes: ["read"], expires_in_days: 7 });
  });

  it("lists API tokens with a plain GET and revokes one with DELETE and CSRF", async () => {
    const tokens = [
      { id: "t1", name: "ci", scopes: ["read"], created_at: "2025-01-02T03:04:05Z", last_used_at: null, expires_at: null },
    ];
    answers.push(() => json(200, { tokens }));
    answers.push(() => new Response(null, { status: 204 }));
    expect(await listTokens()).toEqual({ tokens });
    await expect(revokeToken("t/1")).resolves.toBeUndefined();
    const [list, revoke] = calls;
    expect(list!.url).toBe("/api/v1/tokens");
    expect(list!.init.method).toBe("GET");
    expect(list!.init.headers).not.toHaveProperty("X-CSRF-Token");
    expect(revoke!.url).toBe("/api/v1/tokens/t%2F1");
    expect(revoke!.init.method).toBe("DELETE");
    expect(revoke!.init.headers).toMatchObject({ "X-CSRF-Token": "token" });
    expect(revoke!.init.body).toBeUndefined();
  });

  it("reports revoking a missing token as a 404", async () => {
    answers.push(() => json(404, { error: "token not found" }));
    await expect(revokeToken("gone")).rejects.toMatchObject({ status: 404, message: "token not found" });
    expect(calls).toHaveLength(1);
  });

  it("does not refresh for a failed login", async () => {
    answers.push(() => json(401, { error: "invalid email or password" }));
    await expect(login({ email: "a@b.c", password: "12345678" })).rejects.toMatchObject({ status: 401 });
    expect(calls).toHaveLength(1);
  });

  it("refreshes once for concurrent 401s and replays", async () => {
    answers.push(() => json(401, { error: "expired" }));
    answers.push(() => json(401, { error: "expired" }));
    answers.push(() => json(200, { id: "u1" })); // the one refresh
    answers.push(() => json(200, { files: [], next_cursor: null }));
    answers.push(() => json(200, { files: [], next_cursor: null }));
    await Promise.all([listFiles(), listFiles()]);
    expect(calls.filter((c) => c.url === "/api/v1/auth/refresh")).toHaveLength(1);
    expect(calls).toHaveLength(5);
  });

  it("reports a refused refresh as the end of the session", async () => {
    const ended = vi.fn();
    const stop = onSessionEnded(ended);
    answers.push(() => json(401, { error: "expired" }));
    answers.push(() => json(401, { error: "session ended; sign in again" }));
    await expect(me()).rejects.toMatchObject({ status: 401 });
    expect(ended).toHaveBeenCalledTimes(1);
    stop();
  });
});
