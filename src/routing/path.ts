/**
 * The path a request is routed on. A raw path can name one route and mean another to the node behind it:
 * `/public/../admin`, `/public/%2e%2e/admin`, `//admin`, `/admin;x` (a path parameter Tomcat and Jetty strip),
 * `/public\..\admin` (a separator to IIS and browsers). Routing on the normalised form closes that gap:
 *
 * - percent-encodings of unreserved characters (RFC 3986 §2.3: ALPHA DIGIT - . _ ~) are decoded, other encodings
 *   upper-cased (§6.2.2.1); `%2F` and `%5C` are never separators (and with `rejectEncodedSlash`, a 400);
 * - `;parameters` are removed from each segment;
 * - runs of `/` are merged (`mergeSlashes`, on by default, as nginx's merge_slashes);
 * - dot segments are removed (§5.2.4), and a path that climbs above `/` is a 400, not silently clamped;
 * - a raw `\`, a control character, a space or a fragment `#` make the target invalid (RFC 9112 §3.2): 400.
 *
 * The query is never touched. Pure functions; a path with none of `% . ; \ //` costs one scan.
 */
import type { ResolvedPaths } from '../config/resolved.js'

/** Why a request target was refused. */
export type PathError = 'fragment' | 'invalid-character' | 'above-root' | 'encoded-slash'

/** Characters that send a path through the slow path: % . ; \ and a second slash in a row. */
function plain (path: string, end: number): boolean {
  let prev = 0
  for (let i = 0; i < end; i++) {
    const c = path.charCodeAt(i)
    if (c === 37 /* % */ || c === 46 /* . */ || c === 59 /* ; */ || c === 92 /* \ */ || c <= 32 || c === 127 || c === 35 /* # */) return false
    if (c === 47 && prev === 47) return false
    prev = c
  }
  return true
}

const HEX = '0123456789ABCDEF'

function hexValue (c: number): number {
  if (c >= 48 && c <= 57) return c - 48
  if (c >= 65 && c <= 70) return c - 55
  if (c >= 97 && c <= 102) return c - 87
  return -1
}

/** RFC 3986 §2.3. */
function unreserved (c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 45 || c === 46 || c === 95 || c === 126
}

/**
 * The target as routing sees it (normalised path + the query as sent), or why it is refused. `target` is
 * origin-form (starts with "/").
 */
export function routingTarget (target: string, opts: ResolvedPaths): string | PathError {
  const q = target.indexOf('?')
  const end = q === -1 ? target.length : q
  if (plain(target, end)) return target.indexOf('#', end) === -1 ? target : 'fragment'
  if (target.indexOf('#') !== -1) return 'fragment'
  const segments: string[] = []
  let i = 0
  // Walk the segments after each "/" (the path starts with one).
  while (i < end) {
    let j = i + 1
    let seg = ''
    let param = false
    while (j < end) {
      const c = target.charCodeAt(j)
      if (c === 47) break
      if (c === 92 || c <= 32 || c === 127) return 'invalid-character'
      if (c === 59) param = true
      if (!param) {
        if (c === 37) {
          const hi = hexValue(target.charCodeAt(j + 1))
          const lo = hexValue(target.charCodeAt(j + 2))
          if (hi === -1 || lo === -1 || j + 2 >= end) return 'invalid-character'
          const v = hi * 16 + lo
          if ((v === 0x2f || v === 0x5c) && opts.rejectEncodedSlash) return 'encoded-slash'
          seg += unreserved(v) ? String.fromCharCode(v) : `%${HEX[hi]}${HEX[lo]}`
          j += 3
          continue
        }
        seg += target[j]
      }
      j++
    }
    if (seg === '..') {
      if (segments.length === 0) return 'above-root'
      segments.pop()
      // "/a/.." leaves the directory "/" behind it.
      if (j >= end) segments.push('')
    } else if (seg === '.') {
      if (j >= end) segments.push('')
    } else if (seg === '' && opts.mergeSlashes && j < end) {
      // An empty segment between two slashes: merged away.
    } else {
      segments.push(seg)
    }
    i = j
  }
  const path = segments.length === 0 ? '/' : `/${segments.join('/')}`
  return q === -1 ? path : path + target.slice(q)
}

/** Whether a target may be forwarded at all (the checks `off` keeps): no fragment, no raw control characters. */
export function targetError (target: string): PathError | null {
  for (let i = 0; i < target.length; i++) {
    const c = target.charCodeAt(i)
    if (c === 35) return 'fragment'
    if (c < 32 || c === 127) return 'invalid-character'
  }
  return null
}
