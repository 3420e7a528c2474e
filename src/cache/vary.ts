/**
 * The request as the cache sees it, and Vary (RFC 9111 §4.1): request field values normalised (whitespace around
 * commas, case where the field is case-insensitive), the nominated fields of a response, and the secondary key a
 * stored variant is matched by. Pure.
 */
import { directives, formatDirectives } from './directives.js'
import type { HeaderRecord } from './policy.js'

/** The request as the policy sees it: lower-case names, normalised values, the cache key's host. */
export function requestRecord (headers: Record<string, string | string[] | undefined>, host: string): HeaderRecord {
  const out: HeaderRecord = {}
  for (const name in headers) {
    // Pseudo-headers; and Pragma, which RFC 9111 §5.4 deprecates (its no-cache no longer binds a cache).
    if (name.charCodeAt(0) === 58 /* : */ || name === 'pragma') continue
    const v = headers[name]
    if (v === undefined) continue
    out[name] = normalizeValue(name, Array.isArray(v) ? v.join(', ') : v)
  }
  out.host = host
  const cc = out['cache-control']
  if (cc !== undefined) out['cache-control'] = formatDirectives(directives(cc))
  return out
}

/** Fields whose values compare case-insensitively (§4.1 allows normalising them before Vary matching). */
const CASELESS = new Set(['accept', 'accept-encoding', 'accept-language', 'accept-charset'])

/** Fields whose value is an HTTP-date: its comma is part of the date, not a list separator. */
const DATE_FIELDS = new Set(['if-modified-since', 'if-unmodified-since', 'if-range', 'date'])

/** §4.1: whitespace around commas and at the ends removed; case folded where the field is case-insensitive. */
function normalizeValue (name: string, value: string): string {
  const v = value.includes(',') && !DATE_FIELDS.has(name) ? value.split(',').map((s) => s.trim()).join(',') : value.trim()
  return CASELESS.has(name) ? v.toLowerCase() : v
}

/** Vary field names of a response: null without Vary, ['*'] for a response that never matches. */
export function varyNames (res: HeaderRecord): string[] | null {
  const vary = res.vary
  if (vary === undefined) return null
  const names = vary.toLowerCase().split(',').map((s) => s.trim()).filter((s) => s !== '')
  if (names.includes('*')) return ['*']
  return names.length === 0 ? null : names.sort()
}

/** The secondary key (§4.1): the normalised values of the nominated request fields. */
export function variantOf (names: string[] | null, req: HeaderRecord): string {
  if (names === null) return ''
  let out = ''
  for (const n of names) out += `${n}:${req[n] ?? ''}\n`
  return out
}
