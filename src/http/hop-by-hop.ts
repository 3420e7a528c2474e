/**
 * Connection-specific fields (RFC 9110 §7.6.1): they describe one hop and are never forwarded, in either direction.
 * The fixed list and the fields a `Connection` header names. Pure.
 */
import { lowerAscii } from './fields.js'

/** RFC 9110 §7.6.1 and the legacy ones every proxy strips. Lower-case. */
export const HOP_BY_HOP: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'transfer-encoding', 'upgrade'])

/**
 * Adds the field names a `Connection` value lists to `set` (created when null and a name is listed): those fields are
 * hop-by-hop too. `close` and `keep-alive` are options, not field names. Null while no field name was listed.
 */
export function addConnectionTokens (set: Set<string> | null, value: string): Set<string> | null {
  // The common values name no field: answered without splitting or allocating.
  if (value === 'keep-alive' || value === 'close') return set
  let s = set
  for (const t of value.split(',')) {
    const token = t.trim().toLowerCase()
    if (token !== '' && token !== 'close' && token !== 'keep-alive') (s ??= new Set<string>()).add(token)
  }
  return s
}

/** The field names every `Connection` field of a flat list names, or null when there is none. */
export function connectionTokens (flat: readonly string[]): Set<string> | null {
  let tokens: Set<string> | null = null
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i]
    if (name.length === 10 && lowerAscii(name) === 'connection') tokens = addConnectionTokens(tokens, flat[i + 1])
  }
  return tokens
}
