/**
 * Field lists as Portico carries them: flat `[name, value, name, value, ...]` arrays, the shape of Node's
 * `rawHeaders` and of undici's raw headers, with names in their original case and values byte-exact (latin1).
 * The one implementation of looking up, removing and replacing fields in such a list, and of the `HeaderList`
 * view hooks edit them through. Pure.
 */

/** Lower-cases ASCII names without allocating when they already are. */
export function lowerAscii (s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c >= 65 && c <= 90) return s.toLowerCase()
  }
  return s
}

/** A raw name or value as a string (latin1 keeps every byte). */
export function latin1 (v: Buffer | string): string {
  return typeof v === 'string' ? v : v.toString('latin1')
}

/** The first value of the field named `lower` (a lower-case name), or undefined. */
export function fieldValue (flat: readonly string[], lower: string): string | undefined {
  for (let i = 0; i < flat.length; i += 2) if (flat[i].length === lower.length && lowerAscii(flat[i]) === lower) return flat[i + 1]
  return undefined
}

/** Every value of the field named `lower`, in order. */
export function fieldValues (flat: readonly string[], lower: string): string[] {
  const out: string[] = []
  for (let i = 0; i < flat.length; i += 2) if (flat[i].length === lower.length && lowerAscii(flat[i]) === lower) out.push(flat[i + 1])
  return out
}

/** Whether the list has a field named `lower`. */
export function hasField (flat: readonly string[], lower: string): boolean {
  return fieldValue(flat, lower) !== undefined
}

/** A copy of the list without the fields named (lower-case names). */
export function withoutFields (flat: readonly string[], lowerNames: readonly string[]): string[] {
  if (lowerNames.length === 0) return flat.slice()
  const out: string[] = []
  for (let i = 0; i < flat.length; i += 2) {
    if (!lowerNames.includes(lowerAscii(flat[i]))) out.push(flat[i], flat[i + 1])
  }
  return out
}

/** Removes, in place, every field named `lower`; then appends one with `value` unless it is null. */
export function replaceField (flat: string[], lower: string, value: string | null): void {
  for (let i = flat.length - 2; i >= 0; i -= 2) if (flat[i].length === lower.length && lowerAscii(flat[i]) === lower) flat.splice(i, 2)
  if (value !== null) flat.push(lower, value)
}

/**
 * Raw fields as a lower-case record, repeated names joined per RFC 9110 §5.3: what `res.addTrailers` and
 * `writeEarlyHints` take, and how the cache policy reads a head.
 */
export function fieldRecord (raw: readonly (Buffer | string)[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (let i = 0; i < raw.length; i += 2) {
    const name = lowerAscii(latin1(raw[i]))
    const value = latin1(raw[i + 1])
    out[name] = name in out ? `${out[name]}, ${value}` : value
  }
  return out
}

/** A flat field list with case-insensitive helpers; `raw` is the list itself, edited in place. */
export class HeaderList {
  readonly raw: string[]
  constructor (raw: string[]) {
    this.raw = raw
  }

  /** The first value of `name`, or undefined. */
  get (name: string): string | undefined {
    return fieldValue(this.raw, name.toLowerCase())
  }

  /** Every value of `name`, in order. */
  getAll (name: string): string[] {
    return fieldValues(this.raw, name.toLowerCase())
  }

  /** Replaces every value of `name` with one (keeping the spelling given). */
  set (name: string, value: string): void {
    this.delete(name)
    this.raw.push(name, value)
  }

  /** Adds a value, keeping existing ones. */
  append (name: string, value: string): void {
    this.raw.push(name, value)
  }

  /** Removes every value of `name`. */
  delete (name: string): void {
    replaceField(this.raw, name.toLowerCase(), null)
  }
}

/**
 * Adds `field` to the list's Vary (RFC 9110 §12.5.5), merging into the first Vary field and never twice; a
 * `Vary: *` already says everything and is left alone.
 */
export function addVary (flat: string[], field: string): void {
  const lower = field.toLowerCase()
  let first = -1
  for (let i = 0; i < flat.length; i += 2) {
    if (flat[i].length !== 4 || lowerAscii(flat[i]) !== 'vary') continue
    if (first === -1) first = i
    for (const m of flat[i + 1].split(',')) {
      const t = m.trim().toLowerCase()
      if (t === lower || t === '*') return
    }
  }
  if (first === -1) flat.push('vary', field)
  else flat[first + 1] = flat[first + 1].trim() === '' ? field : `${flat[first + 1]}, ${field}`
}
