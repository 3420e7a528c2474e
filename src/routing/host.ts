/**
 * Host names for routing. A request's host is normalised (`normalizeHost`): lowercase, port removed, one trailing
 * dot removed (RFC 9110 §4.2.3: host names are case-insensitive; "example.com." names the same host). A config's
 * host keys are checked and lower-cased (`normalizeHostKey`). Pure.
 */

const VALID_HOST = /^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.~!$&'()*+,;=%-]+)(?::\d{0,5})?$/

/**
 * Returns the routing name for a Host header or URI authority, or null when it is not a valid host
 * (RFC 9110 §7.2: a server MUST answer 400 to an invalid Host).
 */
export function normalizeHost (raw: string): string | null {
  if (raw.length === 0 || raw.length > 255 || !VALID_HOST.test(raw)) return null
  let h = raw
  if (h.charCodeAt(0) === 91 /* [ */) {
    const end = h.indexOf(']')
    h = h.slice(0, end + 1)
  } else {
    const colon = h.indexOf(':')
    if (colon !== -1) h = h.slice(0, colon)
    if (h.endsWith('.')) h = h.slice(0, -1)
  }
  if (h.length === 0) return null
  // Fast path: most hosts are already lowercase.
  for (let i = 0; i < h.length; i++) {
    const c = h.charCodeAt(i)
    if (c >= 65 && c <= 90) return h.toLowerCase()
  }
  return h
}

const HOST_LABELS = /^(?:[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*$/
const IPV6_LITERAL = /^\[[0-9a-f:.]+\]$/

/**
 * Checks one host key of a config (a route's host, a certificate's name) and returns it normalized (lowercase), or
 * an error message. Forms: "*", "*.example.com", "api." (prefix key), an exact name, an IPv4 address or a bracketed
 * IPv6 literal. Ports are not part of keys.
 */
export function normalizeHostKey (key: string): { key: string } | { error: string } {
  const k = key.trim().toLowerCase()
  if (k === '*') return { key: k }
  if (k.startsWith('*.')) {
    return HOST_LABELS.test(k.slice(2)) ? { key: k } : { error: 'expected a wildcard such as "*.example.com"' }
  }
  if (IPV6_LITERAL.test(k)) return { key: k }
  if (k.endsWith('.')) {
    return HOST_LABELS.test(k.slice(0, -1)) ? { key: k } : { error: 'expected a prefix key such as "api."' }
  }
  if (k.includes(':')) return { error: 'host keys do not include a port; requests match whatever port they came to' }
  return HOST_LABELS.test(k) ? { key: k } : { error: 'expected a host name, "api." prefix key, "*.example.com" wildcard or "*"' }
}

/**
 * Whether a CA can issue a certificate for `name` (lower-case) by HTTP-01: DNS labels with at least one dot, at most
 * 253 characters; not a wildcard, prefix key, catch-all, IP literal or "localhost" (automatic HTTPS, docs/acme.md).
 */
export function isIssuableName (name: string): boolean {
  return name.length <= 253 && name.includes('.') && !name.startsWith('*.') && !name.endsWith('.') &&
    HOST_LABELS.test(name) && !/^[\d.]+$/.test(name)
}
