/**
 * Mount prefixes for the framework adapters: whether a request target lies under a prefix, and the target with
 * the prefix removed. Pure string work on raw targets; the core turns `originalUrl` vs `url` into
 * X-Forwarded-Prefix, so the adapters only need these two answers.
 */

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
