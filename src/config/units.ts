/** Durations (`250ms`, `30s`, `5m`, `1h`, `1d`) and sizes (`16kb`, `10mb`, `1gb`, or plain bytes) from the config contract. */

const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/;
const DURATION_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds, or an error message. */
export function parseDuration(v: unknown): number | string {
  if (typeof v !== 'string') return 'expected a duration with a unit, e.g. "30s" or "250ms"';
  const m = DURATION.exec(v.trim());
  if (!m) return `"${v}" is not a duration; use a number with ms, s, m, h or d (e.g. "30s")`;
  return Math.round(Number(m[1]) * DURATION_MS[m[2]]);
}

const SIZE = /^(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|kib|mib|gib)?$/i;
const SIZE_BYTES: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };

/** Bytes, or an error message. Sizes use binary multiples (1kb = 1024 bytes), as nginx and Caddy do. */
export function parseSize(v: unknown): number | string {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v;
  if (typeof v !== 'string') return 'expected a size, e.g. "10mb" or a number of bytes';
  const m = SIZE.exec(v.trim());
  if (!m) return `"${v}" is not a size; use b, kb, mb or gb (e.g. "10mb")`;
  return Math.round(Number(m[1]) * SIZE_BYTES[(m[2] ?? 'b').toLowerCase()]);
}

export function formatDuration(ms: number): string {
  if (ms % 86_400_000 === 0) return `${ms / 86_400_000}d`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
