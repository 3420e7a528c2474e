/**
 * Cache-Control directives (RFC 9111 §5.2) as the cache reads them: names case-insensitive, the first of a
 * duplicated directive kept (§4.2.1), arguments unquoted, invalid delta-seconds treated as 0; and targeted fields
 * (RFC 9213 CDN-Cache-Control as RFC 8941 Dictionaries, Edge Architecture 1.0 Surrogate-Control) turned into
 * Cache-Control text. Pure.
 */
import { parseDictionary } from 'structured-headers'

/** Directives whose argument is delta-seconds (§1.2.2). */
const DELTA = new Set(['max-age', 's-maxage', 'stale-while-revalidate', 'stale-if-error', 'min-fresh'])

/** Directives whose value is an Integer (delta-seconds) in a targeted field. */
const INTEGER_DIRECTIVES = new Set(['max-age', 's-maxage', 'stale-while-revalidate', 'stale-if-error'])

/**
 * A targeted field's value as Cache-Control text, or null to ignore the field. RFC 9213 §2.1: targeted fields
 * are RFC 8941 Dictionaries; one that fails to parse is ignored whole, and a directive with a value of the wrong
 * type is ignored (`max-age="60"` is no max-age). Surrogate-Control (Edge Architecture 1.0) predates structured
 * fields and keeps the Cache-Control syntax; its `;target` forms are not for us and are skipped.
 */
export function targeted (name: string, value: string, token: string | undefined): string | null {
  if (name === 'surrogate-control') {
    // Edge Architecture 1.0 §3: "directive;token" is for the surrogate that announced that device token, and
    // wins over the same untargeted directive; directives for other surrogates are skipped.
    const mine: string[] = []
    const all: string[] = []
    for (const part of splitList(value)) {
      const semi = part.indexOf(';')
      if (semi === -1) all.push(part)
      else if (token !== undefined && part.slice(semi + 1).trim().toLowerCase() === token) mine.push(part.slice(0, semi))
    }
    const d = directives([...mine, ...all].join(', '))
    return d.size > 0 ? formatDirectives(d) : null
  }
  let dict
  try {
    dict = parseDictionary(value)
  } catch {
    return null
  }
  const parts: string[] = []
  for (const [key, [item]] of dict) {
    if (INTEGER_DIRECTIVES.has(key)) {
      if (typeof item === 'number' && Number.isInteger(item) && item >= 0) parts.push(`${key}=${item}`)
    } else if (item === true) {
      parts.push(key)
    }
  }
  // A valid field counts even when none of its directives is usable: Cache-Control is then ignored all the same.
  return parts.join(', ')
}

/** Splits a field value on commas outside quoted strings. */
function splitList (value: string): string[] {
  const out: string[] = []
  let cur = ''
  let quoted = false
  for (let i = 0; i < value.length; i++) {
    const c = value[i]
    if (c === '"' && value[i - 1] !== '\\') quoted = !quoted
    if (c === ',' && !quoted) {
      out.push(cur)
      cur = ''
    } else {
      cur += c
    }
  }
  out.push(cur)
  return out.map((s) => s.trim()).filter((s) => s !== '')
}

/**
 * Cache-Control directives, names lower-cased, first occurrence of each kept (§4.2.1), values unquoted.
 * A delta-seconds directive with an invalid value becomes 0 (max-age/s-maxage: "treat as stale", §1.2.2).
 */
export function directives (value: string | undefined): Map<string, string | true> {
  const out = new Map<string, string | true>()
  if (value === undefined) return out
  for (const part of splitList(value)) {
    const eq = part.indexOf('=')
    const name = (eq === -1 ? part : part.slice(0, eq)).toLowerCase()
    // §5.2: token [ "=" ( token / quoted-string ) ], no whitespace around "=": "max-age =60" is no max-age.
    if (name === '' || /\s/.test(name) || out.has(name)) continue
    let arg: string | true = eq === -1 ? true : part.slice(eq + 1).replace(/^"(.*)"$/, '$1')
    if (DELTA.has(name)) arg = typeof arg === 'string' && /^\d+$/.test(arg) ? String(Math.min(Number(arg), 2 ** 31)) : '0'
    if (name === 'max-stale' && arg !== true && !/^\d+$/.test(arg)) arg = true
    out.set(name, arg)
  }
  return out
}

export function formatDirectives (d: Map<string, string | true>): string {
  const parts: string[] = []
  for (const [k, v] of d) parts.push(v === true ? k : `${k}=${v}`)
  return parts.join(', ')
}
