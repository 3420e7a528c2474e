/**
 * The cache key: one spelling of "which stored responses answer this request", used by the pipeline (lookups),
 * invalidation (RFC 9111 §4.4) and purges alike. The primary key is the method the response was stored for (always
 * GET: HEAD is answered from GET) and the effective request URI (RFC 9111 §2): scheme, the host as routing normalises
 * it (lower case, no port, no trailing dot), and the origin-form target byte-exact as the client sent it.
 */
import { normalizeHost } from '../routing/host.js'
import type { PurgeFilter } from './store.js'

/** The primary key of a request to `host` (already normalised, `normalizeHost`) for `target` (origin-form). */
export function cacheKey (scheme: string, host: string, target: string): string {
  return `GET ${scheme}://${host}${target}`
}

/**
 * The key and host of a URL: absolute (a purge, an absolute Location) or relative to `base` (a relative Location).
 * An absolute URL or an absolute path keeps its target byte-exact, as a client would send it; a relative path is
 * resolved against `base`. Null for anything that is not an http(s) URL with a valid host.
 */
export function urlKey (url: string, base?: string): { key: string, host: string } | null {
  let u: URL
  try {
    u = new URL(url, base)
  } catch {
    return null
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return null
  const host = normalizeHost(u.host)
  if (host === null) return null
  let target: string
  const absolute = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(url)
  if (absolute !== null) target = url.slice(absolute[0].length)
  else if (url.startsWith('/') && !url.startsWith('//')) target = url
  else target = `${u.pathname}${u.search}`
  target = target.replace(/#.*$/s, '')
  if (target === '' || target.startsWith('?')) target = `/${target}`
  return { key: cacheKey(u.protocol.slice(0, -1), host, target), host }
}

/** What a purge names, as the admin API and `proxy.purge()` take it. */
export type PurgeRequest = { url: string } | { host: string, prefix: string } | { tag: string }

/** A purge request in store terms: a URL becomes its primary key, a host is normalised like a request's. */
export function purgeFilter (f: PurgeRequest): PurgeFilter {
  if ('url' in f) {
    const k = urlKey(f.url)
    if (k === null) throw new TypeError(`not an http(s) URL: ${f.url}`)
    return { key: k.key }
  }
  if ('tag' in f) return { tag: f.tag }
  return { host: normalizeHost(f.host) ?? f.host.toLowerCase(), pathPrefix: f.prefix }
}
