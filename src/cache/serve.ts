/**
 * Answering a client from a stored response: 304 to a matching conditional (RFC 9110 §13.1, RFC 9111 §4.3.2), 206 or
 * 416 to a single byte range of a stored 200 (RFC 9110 §14, If-Range §13.1.5), the head alone for HEAD, else the whole
 * response with its current Age (RFC 9111 §5.1). Bodies come from memory or stream from a shared store.
 */
import { fieldValue, withoutFields } from '../http/fields.js'
import type { CacheStatus } from './cache-status.js'
import { Delivery, sliceAsync, sliceChunks } from './deliver.js'
import { httpDate } from '../http/date.js'
import type { Freshness, HeaderRecord } from './policy.js'
import type { CacheStore, StoredResponse } from './store.js'
import type { CacheClient, CacheRequest } from './types.js'

/** Fields a 304 answer from the cache carries (RFC 9110 §15.4.5). */
const NOT_MODIFIED_FIELDS = new Set(['cache-control', 'content-location', 'date', 'etag', 'expires', 'vary', 'last-modified', 'age'])

/**
 * Answers `client` from `stored`. `hidden` are fields meant for the cache alone. A shared store's body is read up
 * to its first chunk before the head is sent, so a store that fails by then lets `fallback` send the request upstream.
 */
export function serveStored (client: CacheClient, cr: CacheRequest, stored: StoredResponse, f: Freshness, status: CacheStatus, hidden: readonly string[], store: CacheStore, fallback: (err: unknown) => void): void {
  const meta = stored.meta
  const cacheStatus = status.text
  client.cacheStatus = cacheStatus
  const headers = servedHeaders(meta.headers, f.age(), hidden)
  if (notModified(cr.req, meta.headers, cr.method, meta.status)) {
    const d = new Delivery(client)
    if (d.start(304, notModifiedHeaders(headers, cacheStatus))) d.end()
    return
  }
  let range: [number, number] | null | 'unsatisfiable' = null
  if (cr.req.range !== undefined && meta.status === 200 && ifRangeMatches(cr.req['if-range'], meta.headers)) {
    range = parseRange(cr.req.range, meta.size)
  }
  if (range === 'unsatisfiable') {
    const d = new Delivery(client)
    const out = withoutFields(headers, ['content-length'])
    out.push('content-range', `bytes */${meta.size}`, 'content-length', '0', 'cache-status', cacheStatus)
    if (d.start(416, out)) d.end()
    return
  }
  let out: string[]
  let code = meta.status
  if (range !== null) {
    code = 206
    out = withoutFields(headers, ['content-length'])
    out.push('content-range', `bytes ${range[0]}-${range[1]}/${meta.size}`, 'content-length', String(range[1] - range[0] + 1))
  } else {
    out = headers
  }
  out.push('cache-status', cacheStatus)
  const d = new Delivery(client)
  if (stored.chunks !== null) {
    if (!d.start(code, out)) return
    if (cr.method === 'HEAD') d.end()
    else d.sendChunks(range === null ? stored.chunks : sliceChunks(stored.chunks, range[0], range[1]))
    return
  }
  if (cr.method === 'HEAD') {
    if (d.start(code, out)) d.end()
    return
  }
  const source = (range === null ? store.body(meta) : sliceAsync(store.body(meta), range[0], range[1]))[Symbol.asyncIterator]()
  source.next().then((first) => {
    if (client.finished) {
      void source.return?.()
      return
    }
    if (!d.start(code, out)) return
    if (first.done === true) d.end()
    else d.sendAsync(source, [first.value])
  }, (err: unknown) => {
    if (!client.finished) fallback(err)
  })
}

/** A stored head as sent downstream: fields meant for the cache removed, the current Age (§5.1) in place of any stored one. */
export function servedHeaders (flat: readonly string[], age: number, hidden: readonly string[]): string[] {
  const out: string[] = []
  for (let i = 0; i < flat.length; i += 2) {
    const n = flat[i].toLowerCase()
    if (n !== 'age' && !hidden.includes(n)) out.push(flat[i], flat[i + 1])
  }
  out.push('age', String(age))
  return out
}

/** The fields of a 304 built from a full head (RFC 9110 §15.4.5), with the Cache-Status. */
export function notModifiedHeaders (headers: readonly string[], cacheStatus: string): string[] {
  const out: string[] = []
  for (let i = 0; i < headers.length; i += 2) {
    if (NOT_MODIFIED_FIELDS.has(headers[i].toLowerCase())) out.push(headers[i], headers[i + 1])
  }
  out.push('cache-status', cacheStatus)
  return out
}

/**
 * RFC 9110 §13.1.2/§13.1.3 for a GET/HEAD answered by the cache: If-None-Match (weak comparison, "*" matches
 * any), else If-Modified-Since against Last-Modified.
 */
export function notModified (req: HeaderRecord, stored: readonly string[], method: string, status: number): boolean {
  // RFC 9110 §13.2.1: preconditions apply only where the unconditional answer would be 2xx.
  if ((method !== 'GET' && method !== 'HEAD') || status < 200 || status >= 300) return false
  const inm = req['if-none-match']
  if (inm !== undefined) {
    const etag = fieldValue(stored, 'etag')
    if (inm.trim() === '*') return true
    if (etag === undefined) return false
    return inm.split(',').some((t) => weakEqual(t.trim(), etag.trim()))
  }
  const ims = req['if-modified-since']
  if (ims !== undefined) {
    // RFC 9111 §4.3.2: the stored response's Last-Modified, else its Date (a stored head always has one).
    const since = httpDate(ims)
    const modified = httpDate(fieldValue(stored, 'last-modified') ?? fieldValue(stored, 'date'))
    return !Number.isNaN(since) && !Number.isNaN(modified) && modified <= since
  }
  return false
}

/** RFC 9110 §8.8.3.2 weak comparison; an unquoted tag (a common origin mistake) compares as if quoted. */
function weakEqual (a: string, b: string): boolean {
  return opaqueTag(a) === opaqueTag(b)
}

function opaqueTag (t: string): string {
  const v = t.trim().replace(/^W\//, '')
  return v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1) : v
}

/** RFC 9110 §13.1.5: If-Range with a strong ETag, or a date equal to Last-Modified. No If-Range: true. */
export function ifRangeMatches (ifRange: string | undefined, stored: readonly string[]): boolean {
  if (ifRange === undefined) return true
  const v = ifRange.trim()
  if (v.startsWith('"')) {
    const etag = fieldValue(stored, 'etag')
    return etag !== undefined && etag.trim() === v
  }
  if (v.startsWith('W/')) return false
  const lm = fieldValue(stored, 'last-modified')
  if (lm === undefined) return false
  const since = httpDate(v)
  return !Number.isNaN(since) && httpDate(lm) === since
}

/**
 * RFC 9110 §14.1.2: one byte range of a `size`-byte body. Null when the field is not a single bytes range
 * (then the whole response is sent, which §14.2 allows); 'unsatisfiable' → 416.
 */
export function parseRange (value: string, size: number): [number, number] | null | 'unsatisfiable' {
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(value)
  if (m === null || (m[1] === '' && m[2] === '')) return null
  if (m[1] === '') {
    const n = Number(m[2])
    if (n === 0) return 'unsatisfiable'
    return [Math.max(0, size - n), size - 1]
  }
  const start = Number(m[1])
  if (start >= size) return 'unsatisfiable'
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1)
  if (end < start) return null
  return [start, end]
}
