/**
 * What a failure looks like to the client: a short plain-text response naming the registry code and the exchange
 * id, with `Proxy-Status` (RFC 9209 §2: the error type, and the Portico code as details), `X-Request-Id` and
 * `Cache-Control: no-store`. Never a stack trace. The one rendering of it, written three ways: on a
 * `ServerResponse`, as raw bytes on a socket Node's server no longer writes to (malformed requests, CONNECT,
 * refused upgrades), and as parts for an HTTP/2 stream.
 */
import { STATUS_CODES, type ServerResponse } from 'node:http'
import type { ProxyError } from './errors.js'

/** The methods a reverse proxy serves, for `Allow` on 405 (RFC 9110 §15.5.6 requires the field). */
export const ALLOWED_METHODS = 'GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH'

/** An error response, ready to write. */
export interface ErrorAnswer {
  status: number
  /** Flat `[name, value, ...]`. */
  headers: string[]
  body: string | Buffer
}

/** A page replacing the plain-text body (a route's errorPages). */
export interface ErrorPage {
  body: Buffer
  type: string
}

/** The response for `err` on the exchange `reqId`; 499 (client gone) is never sent, so it renders as 400. */
export function errorAnswer (err: ProxyError, reqId: string, cacheStatus: string | null = null, page: ErrorPage | null = null): ErrorAnswer {
  const status = err.status === 499 ? 400 : err.status
  const body = page?.body ?? `${status} ${STATUS_CODES[status] ?? ''}\n${err.code}\nrequest id: ${reqId}\n`
  const headers = [
    'content-type', page?.type ?? 'text/plain; charset=utf-8',
    'content-length', String(Buffer.byteLength(body)),
    'cache-control', 'no-store',
    'proxy-status', `portico; error=${err.proxyStatus}; details="${err.code}"`,
    'x-request-id', reqId
  ]
  if (status === 405) headers.push('allow', ALLOWED_METHODS)
  if (err.retryAfter !== undefined) headers.push('retry-after', String(err.retryAfter))
  if (cacheStatus !== null) headers.push('cache-status', cacheStatus)
  if (err.fields !== undefined) headers.push(...err.fields)
  return { status, headers, body }
}

/** Writes the error response on `res` (nothing when a response already started); `close` ends the connection. */
export function sendErrorResponse (res: ServerResponse, err: ProxyError, reqId: string, close = false, cacheStatus: string | null = null, page: ErrorPage | null = null): void {
  if (res.headersSent || res.destroyed) return
  const a = errorAnswer(err, reqId, cacheStatus, page)
  if (close) res.shouldKeepAlive = false
  res.writeHead(a.status, a.headers)
  res.end(res.req?.method === 'HEAD' ? undefined : a.body)
}

/**
 * An HTTP/1.1 status line and header lines, unterminated (the caller adds its own fields and the blank line): for
 * sockets that no server writes to any more.
 */
export function rawHead (status: number, reason: string, headers: readonly string[]): string {
  let head = `HTTP/1.1 ${status} ${reason || STATUS_CODES[status] || ''}\r\n`
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`
  return head
}

/** The error response as raw HTTP/1.1 bytes, closing the connection. */
export function rawErrorResponse (err: ProxyError, reqId: string): string {
  const a = errorAnswer(err, reqId)
  return `${rawHead(a.status, '', a.headers)}connection: close\r\n\r\n${a.body}`
}
