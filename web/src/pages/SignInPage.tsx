// "/signin": sign in, or create an account (?mode=register). Checks the API's limits before sending,
// then returns the user to the page they wanted (or /upload).

import { useEffect, useRef, useState, type FormEvent, type ReactNode, type Ref } from "react";
import { Navigate, useLocation, useNavigate, useSearchParams } from "react-router";
import * as api from "../api/client";
import { ApiError, errorMessage } from "../api/client";
import { returnPath } from "../components/RequireAuth";
import { Loading } from "../components/Feedback";
import { buttonClass, cardClass, inputClass } from "../lib/styles";
import { useAuth } from "../state/auth";

type Mode = "signin" | "register";
type Field = "name" | "email" | "password";
type FieldErrors = Partial<Record<Field, string>>;

/** Length in characters (code points), as the server counts them. */
const length = (text: string) => [...text].length;

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

function validate(mode: Mode, name: string, email: string, password: string): FieldErrors {
  const errors: FieldErrors = {};
  if (mode === "register") {
    const trimmed = name.trim();
    if (length(trimmed) < 1) errors.name = "Enter your name.";
    else if (length(trimmed) > 100) errors.name = "Your name can be at most 100 characters.";
  }
  const mail = email.trim();
  if (!mail) errors.email = "Enter your email address.";
  else if (!EMAIL.test(mail) || length(mail) > 254) errors.email = "Enter an email address like name@example.com.";
  if (!password) errors.password = "Enter your password.";
  else if (length(password) < 8) errors.password = "The password must be at least 8 characters.";
  else if (length(password) > 128) errors.password = "The password can be at most 128 characters.";
  return errors;
}

/** The server's rate limit, in words: how long to wait comes from the 429's Retry-After. */
function tooManyAttempts(retryAfterSeconds: number | null): string {
  if (!retryAfterSeconds) return "Too many attempts — try again in a minute.";
  const seconds = Math.ceil(retryAfterSeconds);
  return `Too many attempts — try again in ${seconds} ${seconds === 1 ? "second" : "seconds"}.`;
}

function serverMessage(error: unknown, mode: Mode): string {
  if (!(error instanceof ApiError)) return errorMessage(error);
  switch (error.status) {
    case 0:
      return "Cannot reach the server. Check your connection and try again.";
    case 401:
      return "Wrong email or password.";
    case 409:
      return mode === "register" ? "An account with this email already exists." : errorMessage(error);
    case 429:
      return tooManyAttempts(error.retryAfterSeconds);
    case 503:
      return "The server is busy. Try again in a moment.";
    default:
      return error.status >= 500 ? "The server had a problem. Try again in a moment." : errorMessage(error);
  }
}

const PROVIDER_NAMES: Record<string, string> = { github: "GitHub", google: "Google" };

function TextField(props: {
  id: Field;
  label: string;
  type: string;
  value: string;
  autoComplete: string;
  error?: string;
  hint?: ReactNode;
  inputRef?: Ref<HTMLInputElement>;
  onChange(value: string): void;
  trailing?: ReactNode;
}) {
  const errorId = `${props.id}-error`;
  const hintId = `${props.id}-hint`;
  const describedBy = [props.error ? errorId : null, props.hint ? hintId : null].filter(Boolean).join(" ");
  return (
    <div>
      <label htmlFor={props.id} className="block text-sm font-medium">
        {props.label}
      </label>
      <div className="relative mt-1">
        <input
          ref={props.inputRef}
          id={props.id}
          name={props.id}
          type={props.type}
          value={props.value}
          autoComplete={props.autoComplete}
          aria-invalid={props.error ? true : undefined}
          aria-describedby={describedBy || undefined}
          onChange={(event) => props.onChange(event.target.value)}
          className={`${inputClass} ${props.trailing ? "pr-20" : ""}`}
          spellCheck={false}
        />
        {props.trailing}
      </div>
      {props.hint && !props.error && (
        <p id={hintId} className="mt-1 text-sm text-slate-600 dark:text-slate-400">
          {props.hint}
        </p>
      )}
      {props.error && (
        <p id={errorId} className="mt-1 text-sm text-red-700 dark:text-red-400">
          {props.error}
        </p>
      )}
    </div>
  );
}

export function SignInPage() {
  const [params, setParams] = useSearchParams();
  const mode: Mode = params.get("mode") === "register" ? "register" : "signin";
  const location = useLocation();
  const navigate = useNavigate();
  const auth = useAuth();
  const destination = returnPath(location.state) ?? "/upload";

  const [name, setName] = useState("");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [showPassword, setShowPassword] = useState(false);
  const [fieldErrors, setFieldErrors] = useState<FieldErrors>({});
  // A sign-in through a provider that went wrong comes back here with the server's words in ?error=.
  const [formError, setFormError] = useState<string | null>(() => params.get("error"));
  const [busy, setBusy] = useState(false);
  const [providers, setProviders] = useState<string[]>([]);
  const refs = {
    name: useRef<HTMLInputElement>(null),
    email: useRef<HTMLInputElement>(null),
    password: useRef<HTMLInputElement>(null),
  };
  const formErrorRef = useRef<HTMLDivElement>(null);

  useEffect(() => {
    let live = true;
    api
      .providers()
      .then((list) => live && setProviders(list.providers))
      // No providers is the normal case today; a failure just means no provider buttons.
      .catch(() => undefined);
    return () => {
      live = false;
    };
  }, []);

  if (auth.status === "signedIn") return <Navigate to={destination} replace />;
  if (auth.status === "loading") return <Loading />;

  const switchMode = (next: Mode) => {
    setFieldErrors({});
    setFormError(null);
    // Keep the "where to go afterwards" state across the switch.
    setParams(next === "register" ? { mode: "register" } : {}, { replace: true, state: location.state });
  };

  const onSubmit = async (event: FormEvent) => {
    event.preventDefault();
    const errors = validate(mode, name, email, password);
    setFieldErrors(errors);
    setFormError(null);
    const firstInvalid = (["name", "email", "password"] as Field[]).find((field) => errors[field]);
    if (firstInvalid) {
      refs[firstInvalid].current?.focus();
      return;
    }
    setBusy(true);
    const mail = email.trim();
    // Which call failed decides the words: a 401 from login means wrong credentials.
    let step: Mode = mode;
    try {
      if (mode === "register") await api.register({ name: name.trim(), email: mail, password });
      step = "signin";
      await auth.signIn(mail, password);
      navigate(destination, { replace: true });
    } catch (err) {
      let message = serverMessage(err, step);
      if (mode === "register" && step === "signin") {
        message = `Your account was created, but signing in failed: ${message} Try signing in.`;
      }
      setFormError(message);
      setBusy(false);
      // Move focus to the message so keyboard and screen reader users hear it at once.
      window.setTimeout(() => formErrorRef.current?.focus(), 0);
    }
  };

  const isRegister = mode === "register";

  return (
    <div className="mx-auto max-w-md">
      <title>{isRegister ? "Create an account – LFUSYS" : "Sign in – LFUSYS"}</title>
      <h1 className="text-2xl font-bold tracking-tight">{isRegister ? "Create an account" : "Sign in to LFUSYS"}</h1>
      <p className="mt-1 text-slate-600 dark:text-slate-400">
        {isRegister ? "It takes a name, an email address and a password." : "Welcome back. Your uploads wait where you left them."}
      </p>

      <div className={`${cardClass} mt-6 p-5 sm:p-6`}>
        {providers.length > 0 && (
          <>
            <div className="flex flex-col gap-2">
              {providers.map((provider) => (
                <a key={provider} href={api.providerLoginUrl(provider, destination)} className={buttonClass("secondary", "md", "w-full")}>
                  Continue with {PROVIDER_NAMES[provider] ?? provider.charAt(0).toUpperCase() + provider.slice(1)}
                </a>
              ))}
            </div>
            <p className="my-5 flex items-center gap-3 text-xs text-slate-500 uppercase dark:text-slate-400">
              <span className="h-px flex-1 bg-slate-200 dark:bg-slate-700" />
              or with email
              <span className="h-px flex-1 bg-slate-200 dark:bg-slate-700" />
            </p>
          </>
        )}

        <form noValidate onSubmit={onSubmit} className="flex flex-col gap-4" aria-describedby={formError ? "form-error" : undefined}>
          {formError && (
            <div
              id="form-error"
              ref={formErrorRef}
              tabIndex={-1}
              role="alert"
              data-testid="form-error"
              className="rounded-md border border-red-300 bg-red-50 px-3 py-2 text-sm text-red-800 dark:border-red-800 dark:bg-red-950/60 dark:text-red-200"
            >
              {formError}
            </div>
          )}
          {isRegister && (
            <TextField
              id="name"
              label="Name"
              type="text"
              value={name}
              autoComplete="name"
              error={fieldErrors.name}
              inputRef={refs.name}
              onChange={setName}
            />
          )}
          <TextField
            id="email"
            label="Email"
            type="email"
            value={email}
            autoComplete={isRegister ? "email" : "username"}
            error={fieldErrors.email}
            inputRef={refs.email}
            onChange={setEmail}
          />
          <TextField
            id="password"
            label="Password"
            type={showPassword ? "text" : "password"}
            value={password}
            autoComplete={isRegister ? "new-password" : "current-password"}
            error={fieldErrors.password}
            hint={isRegister ? "8 to 128 characters." : undefined}
            inputRef={refs.password}
            onChange={setPassword}
            trailing={
              <button
                type="button"
                aria-pressed={showPassword}
                aria-controls="password"
                onClick={() => setShowPassword((value) => !value)}
                className="absolute inset-y-1 right-1 rounded px-2 text-sm font-medium text-sky-700 hover:bg-slate-100 dark:text-sky-400 dark:hover:bg-slate-800"
              >
                {showPassword ? "Hide" : "Show"}
                <span className="sr-only"> password</span>
              </button>
            }
          />
          <button type="submit" disabled={busy} className={buttonClass("primary", "md", "mt-1 w-full py-2.5")}>
            {busy ? (isRegister ? "Creating account…" : "Signing in…") : isRegister ? "Create account" : "Sign in"}
          </button>
        </form>
      </div>

      <p className="mt-5 text-center text-sm text-slate-600 dark:text-slate-400">
        {isRegister ? "Already have an account?" : "No account yet?"}{" "}
        <button
          type="button"
          onClick={() => switchMode(isRegister ? "signin" : "register")}
          className="font-medium text-sky-700 underline underline-offset-2 hover:text-sky-900 dark:text-sky-400 dark:hover:text-sky-300"
        >
          {isRegister ? "Sign in" : "Register"}
        </button>
      </p>
    </div>
  );
}
