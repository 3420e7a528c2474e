/**
 * Mount prefixes: the path an embedding framework (or Portico's own adapters) mounted the proxy at. A mounted
 * request keeps its full target in `originalUrl` (where Express and Connect keep it) and carries the rest in `url`;
 * `mountRequest` does that for the adapters and the one-route middleware's upgrades, and `mountPrefix` reads it back
 * for X-Forwarded-Prefix. Pure string work on raw targets.
 */
import type { IncomingMessage } from 'node:http'

/** A request as mounting frameworks leave it: the full target in `originalUrl`. */
export type MountedRequest = IncomingMessage & { originalUrl?: string }

/** "/api/v1/" → ["api", "v1"]; "" and "/" → []. */
export function segmentsOf (prefix: string): string[] {
  return prefix.split('/').filter((s) => s !== '')
}

/**
 * Whether a raw target's path starts with the prefix segments, on segment boundaries ("/apix" is not under
 * "/api"). Compared case-insensitively; a ":param" or "*" segment (a Fastify prefix) matches any one segment.
 */
export function isUnder (url: string, prefix: readonly string[]): boolean {
  const q = url.indexOf('?')
  const path = (q === -1 ? url : url.slice(0, q)).split('/').filter((s) => s !== '')
  if (path.length < prefix.length) return false
  return prefix.every((p, i) => p.startsWith(':') || p === '*' || p.toLowerCase() === path[i].toLowerCase())
}

/**
 * Removes the first `count` path segments from a raw target, whichever spelling the router accepted for them
 * (another case, repeated slashes, a parameter's value), keeping the rest byte-exact: "/api/x?y" → "/x?y",
 * "/api?y" → "/?y", "/api" → "/".
 */
export function stripSegments (url: string, count: number): string {
  let i = 0
  for (let s = 0; s < count; s++) {
    while (url.charCodeAt(i) === 47 /* / */) i++
    while (i < url.length && url.charCodeAt(i) !== 47 && url.charCodeAt(i) !== 63 /* ? */) i++
  }
  const rest = url.slice(i)
  return rest === '' || rest.charCodeAt(0) === 63 ? `/${rest}` : rest
}

/**
 * Mounts a request under `prefix` (segments): when its target lies under it, the full target is kept in
 * `originalUrl` (an outer framework's value wins) and `url` loses the prefix. Returns false, changing nothing, for a
 * target outside the prefix.
 */
export function mountRequest (req: MountedRequest, prefix: readonly string[]): boolean {
  const url = req.url ?? '/'
  if (!isUnder(url, prefix)) return false
  if (prefix.length === 0) return true
  req.originalUrl ??= url
  req.url = stripSegments(url, prefix.length)
  return true
}

/**
 * The prefix a framework removed before calling the proxy: "/google" for `app.use('/google', ...)`, from
 * `originalUrl` and `url`. Empty when the request is not mounted.
 */
export function mountPrefix (req: MountedRequest): string {
  const original = req.originalUrl
  if (typeof original !== 'string' || original === req.url) return ''
  const q1 = original.indexOf('?')
  const q2 = (req.url ?? '').indexOf('?')
  const full = q1 === -1 ? original : original.slice(0, q1)
  const rest = q2 === -1 ? (req.url ?? '') : (req.url ?? '').slice(0, q2)
  if (rest === '/' || rest === '') return full.endsWith('/') && full.length > 1 ? full.slice(0, -1) : full
  return full.endsWith(rest) ? full.slice(0, full.length - rest.length) : ''
}
