// Human-readable sizes, speeds, times. Sizes use SI units (1 MB = 1,000,000 bytes), like network speeds.

const UNITS = ["B", "KB", "MB", "GB", "TB", "PB"];

export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return "—";
  let value = bytes;
  let unit = 0;
  // Move up a unit before rounding would print "1000.0".
  while (value >= 999.95 && unit < UNITS.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return unit === 0 ? `${Math.round(value)} B` : `${value.toFixed(1)} ${UNITS[unit]}`;
}

export function formatSpeed(bytesPerSecond: number): string {
  return `${formatBytes(bytesPerSecond)}/s`;
}

/** Percent for a 0..1 fraction, rounded down so it never shows 100 % before the end. */
export function formatPercent(fraction: number): string {
  const clamped = Math.min(1, Math.max(0, fraction));
  if (clamped >= 1) return "100%";
  return `${(Math.floor(clamped * 1000) / 10).toFixed(1)}%`;
}

/** "about 2 min left"; null when unknown. */
export function formatEta(seconds: number | null): string | null {
  if (seconds === null || !Number.isFinite(seconds) || seconds < 0) return null;
  if (seconds < 10) return "a few seconds left";
  if (seconds < 60) return `about ${Math.round(seconds / 5) * 5} s left`;
  if (seconds < 3600) return `about ${Math.max(1, Math.round(seconds / 60))} min left`;
  if (seconds < 2 * 86400) {
    let hours = Math.floor(seconds / 3600);
    let minutes = Math.round((seconds % 3600) / 60);
    if (minutes === 60) {
      hours += 1;
      minutes = 0;
    }
    return minutes ? `about ${hours} h ${minutes} min left` : `about ${hours} h left`;
  }
  return `about ${Math.round(seconds / 86400)} days left`;
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

export function formatDateTime(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : dateTime.format(date);
}

const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

/** "in 23 hours", "5 minutes ago". */
export function formatRelative(iso: string, now: number = Date.now()): string {
  const ms = new Date(iso).getTime() - now;
  if (Number.isNaN(ms)) return iso;
  const abs = Math.abs(ms);
  if (abs < 60_000) return relative.format(Math.round(ms / 1000), "second");
  if (abs < 3_600_000) return relative.format(Math.round(ms / 60_000), "minute");
  if (abs < 86_400_000) return relative.format(Math.round(ms / 3_600_000), "hour");
  return relative.format(Math.round(ms / 86_400_000), "day");
}

/** "PDF" for "report.final.pdf"; null for "README" or ".bashrc". */
export function fileExtension(name: string): string | null {
  const dot = name.lastIndexOf(".");
  if (dot <= 0 || dot === name.length - 1) return null;
  const ext = name.slice(dot + 1);
  return ext.length <= 10 ? ext.toUpperCase() : null;
}
