export const when = (seconds: number | null | undefined) =>
  seconds == null ? "—" : new Date(seconds * 1000).toLocaleString();

export const percent = (value: number | null | undefined) => (value == null ? "—" : `${Math.round(value * 100)}%`);

export const bytes = (n: number) =>
  n < 1024 ? `${n} B` : n < 2 ** 20 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 2 ** 20).toFixed(1)} MiB`;

export const REVIEW_LABELS: Record<string, string> = {
  unread: "Unread",
  reviewed: "Reviewed",
  saved_for_later: "Saved for later",
};
