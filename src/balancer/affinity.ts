/**
 * Request affinity: what the `hash` policy hashes (the client address, a header, a cookie, the URI or a query
 * parameter, read from the upstream request) and the sticky-session cookie (its value names a member without
 * revealing its address: HMAC-SHA256 of the member's id with `sticky.secretEnv`'s secret, or plain SHA-256 when none
 * is set, as Caddy's cookie policy does).
 */
import { createHash, createHmac } from 'node:crypto'
import type { HashKey, ResolvedSticky } from '../config/resolved.js'
import type { UpstreamRequest } from '../upstream/types.js'

/** The value of the first header `name` (lower case) of a flat list, or null. */
function header (headers: readonly string[], name: string): string | null {
  for (let i = 0; i < headers.length; i += 2) {
    const n = headers[i]
    if (n.length === name.length && n.toLowerCase() === name) return headers[i + 1]
  }
  return null
}

/** The value of cookie `name` in the request's Cookie fields (RFC 6265 §5.4), or null. */
export function cookieValue (headers: readonly string[], name: string): string | null {
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i].length !== 6 || headers[i].toLowerCase() !== 'cookie') continue
    for (const pair of headers[i + 1].split(';')) {
      const eq = pair.indexOf('=')
      if (eq === -1) continue
      if (pair.slice(0, eq).trim() === name) return pair.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1')
    }
  }
  return null
}

/** The query parameter `name` of an origin-form target, decoded, or null. */
function queryParam (path: string, name: string): string | null {
  const q = path.indexOf('?')
  if (q === -1) return null
  return new URLSearchParams(path.slice(q + 1)).get(name)
}

/** The string the hash policy hashes for this request; null when the request has none (then any member will do). */
export function hashKeyOf (key: HashKey, req: UpstreamRequest): string | null {
  switch (key.kind) {
    case 'client-ip': return req.clientAddress ?? null
    case 'uri': return req.path
    case 'header': return header(req.headers, key.name)
    case 'cookie': return cookieValue(req.headers, key.name)
    case 'query': return queryParam(req.path, key.name)
  }
}

/** The opaque cookie value that names a member. */
export function stickyValue (memberId: string, secret: string | null): string {
  const h = secret === null ? createHash('sha256') : createHmac('sha256', secret)
  return h.update(memberId).digest('base64url').slice(0, 22)
}

/** The Set-Cookie field value that pins a client to the member named by `value`. */
export function stickySetCookie (s: ResolvedSticky, value: string, tls: boolean): string {
  let c = `${s.cookie}=${value}; Path=${s.path}`
  if (s.ttl !== null) c += `; Max-Age=${Math.floor(s.ttl / 1000)}`
  if (s.secure ?? tls) c += '; Secure'
  if (s.httpOnly) c += '; HttpOnly'
  c += `; SameSite=${s.sameSite}`
  return c
}
