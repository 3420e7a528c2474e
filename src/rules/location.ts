/**
 * Redirect and cookie rewriting (nginx's `proxy_redirect default`, `proxy_cookie_path`, `proxy_cookie_domain`): a
 * node speaks of itself, at its own origin and under its own path prefix; the client must see the proxy's. Location,
 * Content-Location and Refresh (its `url=`) are mapped from the node's view to the client's — an absolute URL at one
 * of the node origins gets the client's scheme and host, and a path under the node's prefix gets the client's
 * prefix instead. Set-Cookie's Path is mapped the same way, and a Domain naming a node host becomes the client's.
 * A URL that points elsewhere (another host, a relative path, a path outside the node's prefix) is left alone.
 */
import { lowerAscii } from '../http/fields.js'

/** The two views of one response. */
export interface Views {
  /** "https://example.com" as the client reached Portico. */
  clientOrigin: string
  /** The client's hostname, without port. */
  clientHost: string
  /** What the client's path had in front of the node's path (the stripped prefix, a mount prefix), "" for none. */
  clientPrefix: string
  /** What Portico put in front of the path sent to the node (addPrefix), "" for none. */
  nodePrefix: string
  /** Node origins, lower-case ("http://10.0.0.7:8080"), and their hostnames. */
  nodeOrigins: readonly string[]
  nodeHosts: readonly string[]
}

/** Maps a path (with query) from the node's prefix to the client's; null when it is outside the node's prefix. */
function mapPath (p: string, v: Views): string | null {
  const np = v.nodePrefix
  if (np !== '') {
    if (!p.startsWith(np)) return null
    const c = p.charCodeAt(np.length)
    // On a segment boundary only: "/app" covers "/app", "/app/x", "/app?q", not "/apple".
    if (p.length > np.length && c !== 47 && c !== 63 && c !== 35) return null
  }
  const rest = p.slice(np.length)
  const out = v.clientPrefix + rest
  return out === '' ? '/' : out.charCodeAt(0) === 63 ? `/${out}` : out
}

/** One URL reference from the node's view to the client's (unchanged when it is not the node's). */
export function rewriteLocation (value: string, v: Views): string {
  if (value.charCodeAt(0) === 47 /* / */) {
    if (value.charCodeAt(1) === 47) return value // "//host/...": another authority.
    return mapPath(value, v) ?? value
  }
  const lower = value.slice(0, Math.min(value.length, 300)).toLowerCase()
  for (const o of v.nodeOrigins) {
    if (!lower.startsWith(o)) continue
    const rest = value.slice(o.length)
    const c = rest.charCodeAt(0)
    if (rest !== '' && c !== 47 && c !== 63 && c !== 35) continue
    const p = rest === '' || c !== 47 ? `/${rest}` : rest
    return v.clientOrigin + (mapPath(p, v) ?? p)
  }
  return value
}

/** Refresh: "5; url=/next" → the url part rewritten. */
function rewriteRefresh (value: string, v: Views): string {
  const m = /^(\s*\d+\s*[;,]\s*url\s*=\s*)(['"]?)(.*?)\2\s*$/i.exec(value)
  if (m === null) return value
  return `${m[1]}${m[2]}${rewriteLocation(m[3], v)}${m[2]}`
}

/** Set-Cookie: Path and Domain attributes from the node's view to the client's. */
export function rewriteCookie (value: string, v: Views): string {
  const parts = value.split(';')
  let changed = false
  for (let i = 1; i < parts.length; i++) {
    const eq = parts[i].indexOf('=')
    if (eq === -1) continue
    const name = parts[i].slice(0, eq).trim().toLowerCase()
    const attr = parts[i].slice(eq + 1).trim()
    if (name === 'path' && attr.startsWith('/')) {
      let mapped = mapPath(attr, v)
      // Path=/ under a prefix is the prefix itself: "/app" also covers "/app" (RFC 6265 §5.1.4), "/app/" would not.
      if (mapped !== null && mapped.length > 1 && mapped.endsWith('/') && attr.length - v.nodePrefix.length <= 1) mapped = mapped.slice(0, -1)
      if (mapped !== null && mapped !== attr) {
        parts[i] = ` Path=${mapped}`
        changed = true
      }
    } else if (name === 'domain') {
      const host = attr.replace(/^\./, '').toLowerCase()
      if (v.nodeHosts.includes(host) && host !== v.clientHost) {
        parts[i] = ` Domain=${v.clientHost}`
        changed = true
      }
    }
  }
  return changed ? parts.join(';') : value
}

/** Rewrites a response's fields in place. */
export function rewriteResponse (headers: string[], v: Views, redirects: boolean, cookies: boolean): void {
  for (let i = 0; i < headers.length; i += 2) {
    const n = headers[i]
    const len = n.length
    if (redirects && (len === 8 || len === 16 || len === 7)) {
      const lower = lowerAscii(n)
      if (lower === 'location' || lower === 'content-location') headers[i + 1] = rewriteLocation(headers[i + 1], v)
      else if (lower === 'refresh') headers[i + 1] = rewriteRefresh(headers[i + 1], v)
    } else if (cookies && len === 10 && lowerAscii(n) === 'set-cookie') {
      headers[i + 1] = rewriteCookie(headers[i + 1], v)
    }
  }
}
