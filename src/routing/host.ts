/**
 * Request-host normalising for routing: lowercase, port removed, one trailing dot removed (RFC 9110 §4.2.3:
 * host names are case-insensitive; "example.com." names the same host). Pure.
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
