/**
 * Duration and size literals used in config files: `"5s"`, `"250ms"`, `"1m"`, `"1h"` (a bare number is
 * milliseconds) and `"16kb"`, `"256mb"`, `"1gib"` (a bare number is bytes). Pure functions, no I/O.
 */

const DURATION = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/i
const DURATION_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** Parses a duration to milliseconds; returns undefined when the text is not a duration. */
export function parseDuration (value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined
  const m = DURATION.exec(value)
  if (m === null) return undefined
  return Math.round(Number(m[1]) * DURATION_MS[(m[2] ?? 'ms').toLowerCase()])
}

const SIZE = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib|k|m|g)?\s*$/i
const SIZE_BYTES: Record<string, number> = {
  b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3
}

/** Parses a size to bytes (kb/mb/gb are binary multiples, as in nginx); undefined when not a size. */
export function parseSize (value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0 ? value : undefined
  const m = SIZE.exec(value)
  if (m === null) return undefined
  return Math.round(Number(m[1]) * SIZE_BYTES[(m[2] ?? 'b').toLowerCase()])
}
