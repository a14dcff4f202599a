// "/account": who is signed in, the ways they can sign in, a form to set or change the password, and
// personal API tokens.

import { useId, useRef, useState, type FormEvent, type Ref, type RefObject } from "react";
import * as api from "../api/client";
import { ApiError, errorMessage } from "../api/client";
import { ApiTokens } from "../components/ApiTokens";
import { buttonClass, cardClass, inputClass, mutedText } from "../lib/styles";
import { useAuth } from "../state/auth";

const PROVIDER_NAMES: Record<string, string> = { password: "Email and password", github: "GitHub", google: "Google" };

function providerName(provider: string): string {
  return PROVIDER_NAMES[provider] ?? provider.charAt(0).toUpperCase() + provider.slice(1);
}

/** Length in characters (code points), as the server counts them. */
const length = (text: string) => [...text].length;

type Field = "current" | "next" | "repeat";

interface Message {
  tone: "success" | "error";
  text: string;
  /** The input the message is about, marked invalid and described by it. */
  field?: Field;
}

const MESSAGE_TONES: Record<Message["tone"], string> = {
  error: "border-red-300 bg-red-50 text-red-800 dark:border-red-800 dark:bg-red-950/60 dark:text-red-200",
  success:
    "border-emerald-300 bg-emerald-50 text-emerald-800 dark:border-emerald-800 dark:bg-emerald-950/60 dark:text-emerald-200",
};

function validate(changing: boolean, current: string, next: string, repeat: string): Message | null {
  const error = (field: Field, text: string): Message => ({ tone: "error", text, field });
  if (changing && !current) return error("current", "Enter your current password.");
  if (!next) return error("next", "Enter a new password.");
  if (length(next) < 8) return error("next", "The new password must be at least 8 characters.");
  if (length(next) > 128) return error("next", "The new password can be at most 128 characters.");
  if (repeat !== next) return error("repeat", "The two new passwords do not match.");
  return null;
}

function failureMessage(err: unknown): Message {
  if (err instanceof ApiError && err.status === 403) {
    return { tone: "error", text: "The current password is not right.", field: "current" };
  }
  return { tone: "error", text: errorMessage(err) };
}

function PasswordField(props: {
  id: string;
  label: string;
  value: string;
  autoComplete: string;
  testId: string;
  invalid: boolean;
  describedBy?: string;
  inputRef: Ref<HTMLInputElement>;
  onChange(value: string): void;
}) {
  return (
    <div>
      <label htmlFor={props.id} className="block text-sm font-medium">
        {props.label}
      </label>
      <input
        ref={props.inputRef}
        id={props.id}
        type="password"
        value={props.value}
        autoComplete={props.autoComplete}
        data-testid={props.testId}
        aria-invalid={props.invalid ? true : undefined}
        aria-describedby={props.describedBy}
        onChange={(event) => props.onChange(event.target.value)}
        className={`${inputClass} mt-1`}
        spellCheck={false}
      />
    </div>
  );
}

function PasswordForm({ changing, onSaved }: { changing: boolean; onSaved(): void }) {
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [repeat, setRepeat] = useState("");
  const [message, setMessage] = useState<Message | null>(null);
  const [busy, setBusy] = useState(false);
  const id = useId();
  const messageId = `${id}-message`;
  const hintId = `${id}-hint`;
  const refs: Record<Field, RefObject<HTMLInputElement | null>> = {
    current: useRef<HTMLInputElement>(null),
    next: useRef<HTMLInputElement>(null),
    repeat: useRef<HTMLInputElement>(null),
  };
  const messageRef = useRef<HTMLDivElement>(null);

  const show = (shown: Message) => {
    setMessage(shown);
    // Focus the field at fault, or else the message, so keyboard and screen reader users hear it at once.
    window.setTimeout(() => (shown.field ? refs[shown.field].current : messageRef.current)?.focus(), 0);
  };

  const onSubmit = async (event: FormEvent) => {
    event.preventDefault();
    const invalid = validate(changing, current, next, repeat);
    if (invalid) return show(invalid);
    setMessage(null);
    setBusy(true);
    try {
      await api.setPassword(changing ? { password: next, current_password: current } : { password: next });
      setCurrent("");
      setNext("");
      setRepeat("");
      show({ tone: "success", text: changing ? "Password changed." : "Password set. You can now sign in with your email address." });
      onSaved();
    } catch (err) {
      show(failureMessage(err));
    } finally {
      setBusy(false);
    }
  };

  const describe = (field: Field, extra?: string) =>
    [message?.field === field ? messageId : null, extra].filter(Boolean).join(" ") || undefined;

  return (
    <form noValidate onSubmit={onSubmit} data-testid="password-form" aria-labelledby={`${id}-heading`} className="flex flex-col gap-4">
      <h2 id={`${id}-heading`} className="text-lg font-semibold">
        {changing ? "Change password" : "Set a password"}
      </h2>
      {message && (
        <div
          id={messageId}
          ref={messageRef}
          tabIndex={-1}
          role={message.tone === "error" ? "alert" : "status"}
          data-testid="password-message"
          className={`rounded-md border px-3 py-2 text-sm ${MESSAGE_TONES[message.tone]}`}
        >
          {message.text}
        </div>
      )}
      {changing && (
        <PasswordField
          id={`${id}-current`}
          label="Current password"
          value={current}
          autoComplete="current-password"
          testId="current-password"
          invalid={message?.field === "current"}
          describedBy={describe("current")}
          inputRef={refs.current}
          onChange={setCurrent}
        />
      )}
      <div>
        <PasswordField
          id={`${id}-new`}
          label="New password"
          value={next}
          autoComplete="new-password"
          testId="new-password"
          invalid={message?.field === "next"}
          describedBy={describe("next", hintId)}
          inputRef={refs.next}
          onChange={setNext}
        />
        <p id={hintId} className={`mt-1 text-sm ${mutedText}`}>
          8 to 128 characters.
        </p>
      </div>
      <PasswordField
        id={`${id}-repeat`}
        label="Repeat the new password"
        value={repeat}
        autoComplete="new-password"
        testId="repeat-password"
        invalid={message?.field === "repeat"}
        describedBy={describe("repeat")}
        inputRef={refs.repeat}
        onChange={setRepeat}
      />
      <button type="submit" disabled={busy} data-testid="password-submit" className={buttonClass("primary", "md", "self-start")}>
        {busy ? "Saving…" : changing ? "Change password" : "Set password"}
      </button>
    </form>
  );
}

export function AccountPage() {
  const { user, reload } = useAuth();
  if (!user) return null;

  const hasPassword = user.providers.includes("password");
  const linked = user.providers.filter((provider) => provider !== "password").map(providerName);

  return (
    <div className="mx-auto max-w-2xl" data-testid="account-page">
      <title>Account – LFUSYS</title>
      <h1 className="text-2xl font-bold tracking-tight">Account</h1>

      <section aria-labelledby="profile-heading" className={`${cardClass} mt-6 p-5 sm:p-6`}>
        <h2 id="profile-heading" className="text-lg font-semibold">
          Profile
        </h2>
        <dl className="mt-3 grid grid-cols-[auto_1fr] gap-x-6 gap-y-2 text-sm">
          <dt className={mutedText}>Name</dt>
          <dd className="font-medium break-words" data-testid="account-name">
            {user.name}
          </dd>
          <dt className={mutedText}>Email</dt>
          <dd className="font-medium break-all" data-testid="account-email">
            {user.email}
          </dd>
        </dl>
      </section>

      <section aria-labelledby="providers-heading" className={`${cardClass} mt-6 p-5 sm:p-6`}>
        <h2 id="providers-heading" className="text-lg font-semibold">
          Ways to sign in
        </h2>
        <ul data-testid="account-providers" className="mt-3 divide-y divide-slate-200 rounded-md border border-slate-200 dark:divide-slate-800 dark:border-slate-800">
          {user.providers.map((provider) => (
            <li key={provider} data-provider={provider} className="px-3 py-2 text-sm font-medium">
              {providerName(provider)}
            </li>
          ))}
        </ul>
        {!hasPassword && (
          <p className={`mt-3 text-sm ${mutedText}`} data-testid="account-no-password">
            {linked.length > 0
              ? `This account signs in only with ${new Intl.ListFormat("en", { type: "disjunction" }).format(linked)}. ` +
                "Set a password to also sign in with your email address."
              : "This account has no password yet. Set one to sign in with your email address."}
          </p>
        )}
      </section>

      <section className={`${cardClass} mt-6 p-5 sm:p-6`}>
        <PasswordForm changing={hasPassword} onSaved={reload} />
      </section>

      <section className={`${cardClass} mt-6 p-5 sm:p-6`}>
        <ApiTokens />
      </section>
    </div>
  );
}
