// The account page's personal API tokens: the list with revoke, a form to create one, and the new
// token's secret, which the server sends once and this shows until "Done".

import { useEffect, useId, useRef, useState, type FormEvent } from "react";
import { ApiError, createToken, errorMessage, listTokens, revokeToken } from "../api/client";
import type { TokenCreated, TokenScope, TokenView } from "../api/types";
import { formatDateTime } from "../lib/format";
import { buttonClass, inputClass, mutedText } from "../lib/styles";
import { useAnnounce } from "../state/announcer";
import { ConfirmDialog } from "./ConfirmDialog";
import { ErrorNotice, Loading } from "./Feedback";

const SCOPES: { scope: TokenScope; label: string; hint: string }[] = [
  { scope: "upload", label: "Upload", hint: "send new files" },
  { scope: "read", label: "Read", hint: "list and download files" },
  { scope: "delete", label: "Delete", hint: "delete files and cancel uploads" },
];

const SCOPE_LABELS = Object.fromEntries(SCOPES.map(({ scope, label }) => [scope, label])) as Record<TokenScope, string>;

/** Select values: days as text, "" for never. */
const EXPIRIES: { value: string; label: string }[] = [
  { value: "", label: "Never" },
  { value: "7", label: "7 days" },
  { value: "30", label: "30 days" },
  { value: "90", label: "90 days" },
  { value: "365", label: "1 year" },
];

const DEFAULT_SCOPES: Record<TokenScope, boolean> = { upload: true, read: true, delete: false };

/** Length in characters (code points), as the server counts them. */
const length = (text: string) => [...text].length;

const ERROR_BOX =
  "rounded-md border border-red-300 bg-red-50 px-3 py-2 text-sm text-red-800 dark:border-red-800 dark:bg-red-950/60 dark:text-red-200";

type Field = "name" | "scopes";

function scopeWords(scopes: TokenScope[]): string {
  return scopes.map((scope) => SCOPE_LABELS[scope] ?? scope).join(", ");
}

function expiryWords(expiresAt: string | null, now: number): string {
  if (!expiresAt) return "never";
  const expired = new Date(expiresAt).getTime() <= now;
  return expired ? `${formatDateTime(expiresAt)} (expired)` : formatDateTime(expiresAt);
}

function TokenRow({ token, onRevoke }: { token: TokenView; onRevoke(): void }) {
  const nameId = useId();
  const now = Date.now();
  return (
    <li data-testid="token-row" data-token-id={token.id} className="flex flex-wrap items-start justify-between gap-3 px-4 py-3">
      <div className="min-w-0 flex-1">
        <p id={nameId} data-testid="token-row-name" className="font-medium break-words">
          {token.name}
        </p>
        <dl className="mt-1 grid grid-cols-[auto_1fr] gap-x-4 gap-y-0.5 text-sm">
          <dt className={mutedText}>Scopes</dt>
          <dd data-testid="token-row-scopes">{scopeWords(token.scopes)}</dd>
          <dt className={mutedText}>Created</dt>
          <dd>
            <time dateTime={token.created_at}>{formatDateTime(token.created_at)}</time>
          </dd>
          <dt className={mutedText}>Last used</dt>
          <dd data-testid="token-row-last-used">
            {token.last_used_at ? <time dateTime={token.last_used_at}>{formatDateTime(token.last_used_at)}</time> : "never"}
          </dd>
          <dt className={mutedText}>Expires</dt>
          <dd data-testid="token-row-expires">
            {token.expires_at ? <time dateTime={token.expires_at}>{expiryWords(token.expires_at, now)}</time> : "never"}
          </dd>
        </dl>
      </div>
      <button
        type="button"
        aria-describedby={nameId}
        onClick={onRevoke}
        data-testid="token-revoke"
        className={buttonClass("dangerGhost", "sm")}
      >
        Revoke
      </button>
    </li>
  );
}

function SecretPanel({ created, onDone }: { created: TokenCreated; onDone(): void }) {
  const [copy, setCopy] = useState<"idle" | "copied" | "manual">("idle");
  const inputRef = useRef<HTMLInputElement>(null);
  const id = useId();

  useEffect(() => {
    inputRef.current?.focus();
    inputRef.current?.select();
  }, []);

  const onCopy = async () => {
    const clipboard = typeof navigator !== "undefined" ? navigator.clipboard : undefined;
    try {
      if (!clipboard?.writeText) throw new Error("no clipboard");
      await clipboard.writeText(created.token);
      setCopy("copied");
    } catch {
      setCopy("manual");
      inputRef.current?.focus();
      inputRef.current?.select();
    }
  };

  return (
    <div
      role="region"
      aria-labelledby={`${id}-heading`}
      data-testid="token-created"
      className="rounded-lg border-2 border-amber-400 bg-amber-50 p-4 dark:border-amber-500 dark:bg-amber-950/40"
    >
      <h3 id={`${id}-heading`} className="font-semibold break-words">
        New token: {created.name}
      </h3>
      <p id={`${id}-warning`} className="mt-1 text-sm font-medium text-amber-900 dark:text-amber-200">
        Copy this token now. It will not be shown again.
      </p>
      <label htmlFor={`${id}-secret`} className="sr-only">
        Token
      </label>
      <div className="mt-3 flex flex-wrap gap-2">
        <input
          ref={inputRef}
          id={`${id}-secret`}
          type="text"
          readOnly
          value={created.token}
          data-testid="token-secret"
          aria-describedby={`${id}-warning`}
          onFocus={(event) => event.target.select()}
          spellCheck={false}
          autoComplete="off"
          className={`${inputClass} min-w-0 flex-1 font-mono text-sm`}
        />
        <button type="button" onClick={onCopy} data-testid="token-copy" className={buttonClass("secondary")}>
          Copy
        </button>
      </div>
      <p role="status" data-testid="token-copy-status" className={`mt-2 min-h-5 text-sm ${mutedText}`}>
        {copy === "copied" ? "Copied" : copy === "manual" ? "Select and copy it" : ""}
      </p>
      <button type="button" onClick={onDone} data-testid="token-done" className={buttonClass("primary", "md", "mt-2")}>
        Done
      </button>
    </div>
  );
}

export function ApiTokens() {
  const announce = useAnnounce();
  const id = useId();
  const [tokens, setTokens] = useState<TokenView[] | null>(null);
  const [loading, setLoading] = useState(true);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [reloadKey, setReloadKey] = useState(0);

  const [name, setName] = useState("");
  const [scopes, setScopes] = useState<Record<TokenScope, boolean>>(DEFAULT_SCOPES);
  const [expiry, setExpiry] = useState("");
  const [fieldError, setFieldError] = useState<{ field: Field; text: string } | null>(null);
  const [formError, setFormError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [created, setCreated] = useState<TokenCreated | null>(null);

  const [toRevoke, setToRevoke] = useState<TokenView | null>(null);
  const [revokeOpen, setRevokeOpen] = useState(false);
  const [revoking, setRevoking] = useState(false);
  const [revokeError, setRevokeError] = useState<string | null>(null);

  const headingRef = useRef<HTMLHeadingElement>(null);
  const nameRef = useRef<HTMLInputElement>(null);
  const firstScopeRef = useRef<HTMLInputElement>(null);
  const formErrorRef = useRef<HTMLDivElement>(null);

  useEffect(() => {
    let live = true;
    setLoading(true);
    listTokens()
      .then((result) => {
        if (!live) return;
        setTokens(result.tokens);
        setLoadError(null);
      })
      .catch((err: unknown) => live && setLoadError(errorMessage(err)))
      .finally(() => live && setLoading(false));
    return () => {
      live = false;
    };
  }, [reloadKey]);

  const refuse = (field: Field, text: string) => {
    setFieldError({ field, text });
    window.setTimeout(() => (field === "name" ? nameRef : firstScopeRef).current?.focus(), 0);
  };

  const onSubmit = async (event: FormEvent) => {
    event.preventDefault();
    setFormError(null);
    const trimmed = name.trim();
    const chosen = SCOPES.map(({ scope }) => scope).filter((scope) => scopes[scope]);
    if (!trimmed) return refuse("name", "Enter a name for the token.");
    if (length(trimmed) > 100) return refuse("name", "The name can be at most 100 characters.");
    if (chosen.length === 0) return refuse("scopes", "Choose at least one scope.");
    setFieldError(null);
    setBusy(true);
    try {
      const result = await createToken({
        name: trimmed,
        scopes: chosen,
        ...(expiry ? { expires_in_days: Number(expiry) } : {}),
      });
      const row: TokenView = {
        id: result.id,
        name: result.name,
        scopes: result.scopes,
        created_at: result.created_at,
        last_used_at: null,
        expires_at: result.expires_at,
      };
      setTokens((list) => [row, ...(list ?? []).filter((token) => token.id !== row.id)]);
      setCreated(result);
      setName("");
      setScopes(DEFAULT_SCOPES);
      setExpiry("");
    } catch (err) {
      setFormError(errorMessage(err));
      window.setTimeout(() => formErrorRef.current?.focus(), 0);
    } finally {
      setBusy(false);
    }
  };

  const onDone = () => {
    setCreated(null);
    window.setTimeout(() => nameRef.current?.focus(), 0);
  };

  const confirmRevoke = async () => {
    if (!toRevoke || !revokeOpen) return;
    setRevoking(true);
    setRevokeError(null);
    try {
      await revokeToken(toRevoke.id);
    } catch (err) {
      // Already gone (revoked elsewhere): the row goes all the same.
      if (!(err instanceof ApiError && err.status === 404)) {
        setRevokeError(errorMessage(err));
        setRevoking(false);
        return;
      }
    }
    const revoked = toRevoke;
    setTokens((list) => (list ?? []).filter((token) => token.id !== revoked.id));
    announce(`Revoked ${revoked.name}`);
    setRevokeOpen(false);
    setRevoking(false);
    window.setTimeout(() => headingRef.current?.focus(), 0);
  };

  const errorId = `${id}-field-error`;
  const nameInvalid = fieldError?.field === "name";
  const scopesInvalid = fieldError?.field === "scopes";

  return (
    <div data-testid="api-tokens" aria-labelledby={`${id}-heading`} role="group" className="flex flex-col gap-5">
      <div>
        <h2 id={`${id}-heading`} ref={headingRef} tabIndex={-1} className="text-lg font-semibold">
          API tokens
        </h2>
        <p className={`mt-1 text-sm ${mutedText}`}>
          Tokens let scripts and the <code className="font-mono">lfusys</code> command line use your account without
          your password. A token acts as you, but only within the scopes you give it. Its secret is shown once, when
          you create it.
        </p>
      </div>

      {loadError && (
        <ErrorNotice
          action={
            <button type="button" onClick={() => setReloadKey((key) => key + 1)} className={buttonClass("secondary", "sm")}>
              Try again
            </button>
          }
        >
          Could not load your tokens: {loadError}
        </ErrorNotice>
      )}
      {tokens === null && loading && <Loading label="Loading your tokens…" />}
      {tokens !== null && tokens.length === 0 && (
        <p data-testid="tokens-empty" className={`text-sm ${mutedText}`}>
          No tokens yet.
        </p>
      )}
      {tokens !== null && tokens.length > 0 && (
        <ul
          aria-label="Your API tokens"
          data-testid="token-list"
          className="divide-y divide-slate-200 rounded-md border border-slate-200 dark:divide-slate-800 dark:border-slate-800"
        >
          {tokens.map((token) => (
            <TokenRow
              key={token.id}
              token={token}
              onRevoke={() => {
                setRevokeError(null);
                setToRevoke(token);
                setRevokeOpen(true);
              }}
            />
          ))}
        </ul>
      )}

      {created && <SecretPanel created={created} onDone={onDone} />}

      <form noValidate onSubmit={onSubmit} aria-labelledby={`${id}-create`} className="flex flex-col gap-4">
        <h3 id={`${id}-create`} className="font-semibold">
          Create a token
        </h3>
        {formError && (
          <div ref={formErrorRef} tabIndex={-1} role="alert" data-testid="token-error" className={ERROR_BOX}>
            {formError}
          </div>
        )}
        <div>
          <label htmlFor={`${id}-name`} className="block text-sm font-medium">
            Name
          </label>
          <input
            ref={nameRef}
            id={`${id}-name`}
            type="text"
            value={name}
            maxLength={100}
            placeholder="For example: backup script on my laptop"
            autoComplete="off"
            data-testid="token-name"
            aria-invalid={nameInvalid ? true : undefined}
            aria-describedby={nameInvalid ? errorId : undefined}
            onChange={(event) => setName(event.target.value)}
            className={`${inputClass} mt-1`}
          />
          {nameInvalid && (
            <p id={errorId} className="mt-1 text-sm text-red-700 dark:text-red-400">
              {fieldError.text}
            </p>
          )}
        </div>
        <fieldset>
          <legend className="text-sm font-medium">Scopes</legend>
          <div className="mt-1 flex flex-col gap-1.5">
            {SCOPES.map(({ scope, label, hint }, index) => (
              <label key={scope} className="flex items-center gap-2 text-sm">
                <input
                  ref={index === 0 ? firstScopeRef : undefined}
                  type="checkbox"
                  checked={scopes[scope]}
                  data-testid={`token-scope-${scope}`}
                  aria-invalid={scopesInvalid ? true : undefined}
                  aria-describedby={scopesInvalid ? errorId : undefined}
                  onChange={(event) => setScopes((current) => ({ ...current, [scope]: event.target.checked }))}
                  className="size-4 accent-sky-700 dark:accent-sky-400"
                />
                <span>
                  <span className="font-medium">{label}</span> <span className={mutedText}>– {hint}</span>
                </span>
              </label>
            ))}
          </div>
          {scopesInvalid && (
            <p id={errorId} className="mt-1 text-sm text-red-700 dark:text-red-400">
              {fieldError.text}
            </p>
          )}
        </fieldset>
        <div>
          <label htmlFor={`${id}-expiry`} className="block text-sm font-medium">
            Expires after
          </label>
          <select
            id={`${id}-expiry`}
            value={expiry}
            data-testid="token-expiry"
            onChange={(event) => setExpiry(event.target.value)}
            className={`${inputClass} mt-1 sm:w-48`}
          >
            {EXPIRIES.map(({ value, label }) => (
              <option key={value} value={value}>
                {label}
              </option>
            ))}
          </select>
        </div>
        <button type="submit" disabled={busy} data-testid="token-create" className={buttonClass("primary", "md", "self-start")}>
          {busy ? "Creating…" : "Create token"}
        </button>
      </form>

      <ConfirmDialog
        open={revokeOpen}
        title={`Revoke ${toRevoke?.name ?? "this token"}?`}
        confirmLabel="Revoke"
        busy={revoking}
        error={revokeError}
        onConfirm={confirmRevoke}
        onCancel={() => setRevokeOpen(false)}
      >
        Scripts and command lines that use this token stop working at once. This cannot be undone.
      </ConfirmDialog>
    </div>
  );
}
