// A progress bar with the ARIA numbers; it shows what it is given (the engine never goes backwards).

import type { UploadState } from "../engine";

const COLORS: Partial<Record<UploadState, string>> = {
  completed: "bg-emerald-600 dark:bg-emerald-400",
  failed: "bg-red-600 dark:bg-red-400",
  paused: "bg-amber-500 dark:bg-amber-400",
  cancelled: "bg-slate-400 dark:bg-slate-500",
  hashing: "bg-sky-400 dark:bg-sky-600",
};

interface ProgressBarProps {
  /** 0..1 */
  value: number;
  label: string;
  valueText?: string;
  state?: UploadState;
}

export function ProgressBar({ value, label, valueText, state = "uploading" }: ProgressBarProps) {
  const percent = Math.min(100, Math.max(0, value * 100));
  const now = Math.floor(percent * 10) / 10;
  return (
    <div
      role="progressbar"
      aria-label={label}
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={now}
      aria-valuetext={valueText ?? `${now}%`}
      className="h-2 w-full overflow-hidden rounded-full bg-slate-200 dark:bg-slate-700"
    >
      <div
        className={`h-full rounded-full transition-[width] duration-300 ease-out ${COLORS[state] ?? "bg-sky-600 dark:bg-sky-400"}`}
        style={{ width: `${percent}%` }}
      />
    </div>
  );
}
