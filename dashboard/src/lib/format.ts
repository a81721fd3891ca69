// Number and time formatting shared by every page (en-US digits, UTC-free relative times).

export const dash = "—";

export function int(value: number | null | undefined): string {
  return value === null || value === undefined ? dash : Math.round(value).toLocaleString("en-US");
}

export function decimal(value: number | null | undefined, digits = 2): string {
  if (value === null || value === undefined) return dash;
  return value.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

export function percent(value: number | null | undefined, digits = 1): string {
  return value === null || value === undefined ? dash : `${decimal(value, digits)}%`;
}

/** A probability in [0, 1] as a price in percent: 0.7234 -> "72.3%". */
export function price(value: number | null | undefined): string {
  return value === null || value === undefined ? dash : percent(value * 100);
}

export function usd(value: number | null | undefined): string {
  if (value === null || value === undefined) return dash;
  return `$${Math.round(value).toLocaleString("en-US")}`;
}

export function bytes(value: number | null | undefined): string {
  if (value === null || value === undefined) return dash;
  const units = ["B", "kB", "MB", "GB", "TB"];
  let size = value;
  let unit = 0;
  while (size >= 1024 && unit < units.length - 1) {
    size /= 1024;
    unit += 1;
  }
  return `${size.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return dash;
  if (ms < 1000) return `${ms} ms`;
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return "never";
  const seconds = Math.round((now - Date.parse(iso)) / 1000);
  const future = seconds < 0;
  const s = Math.abs(seconds);
  const text =
    s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m` : s < 86400
      ? `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`
      : `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
  return future ? `in ${text}` : `${text} ago`;
}

export function time(iso: string | null | undefined): string {
  if (!iso) return dash;
  return new Date(iso).toISOString().replace("T", " ").slice(0, 19) + "Z";
}

export function clock(iso: string): string {
  return new Date(iso).toISOString().slice(11, 16);
}

export function tierName(tier: number | null | undefined): string {
  return tier === null || tier === undefined ? "closed" : `T${tier}`;
}

/** A feature value: integers as integers, large values without decimals, small ones to 4. */
export function compact(value: number): string {
  if (Number.isInteger(value)) return int(value);
  if (Math.abs(value) >= 1000) return decimal(value, 0);
  return value.toLocaleString("en-US", { maximumFractionDigits: 4 });
}
