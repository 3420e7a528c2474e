/**
 * The request body as it goes upstream: the client's stream itself (never buffered), watched for idleness
 * (`server.bodyTimeout`, server/body-timeout.ts), counted against `limits.maxRequestBody` when there is a limit, or — embedded behind a body parser that already read the stream —
 * replayed from what the parser kept.
 */
import type { IncomingMessage } from 'node:http'
import { Readable, Transform } from 'node:stream'
import { ProxyError } from './errors.js'
import type { Exchange } from './exchange.js'
import { replaceField } from './http/fields.js'
import { watchBody } from './server/body-timeout.js'

/** Whether the request carries a body (RFC 9112 §6.3; RFC 9113 §8.1.1 for HTTP/2, where no Content-Length is needed). */
export function hasRequestBody (req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined ||
    (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0') ||
    (req.httpVersionMajor >= 2 && req.headers['content-length'] === undefined &&
      (req as { stream?: { endAfterHeaders?: boolean } }).stream?.endAfterHeaders === false)
}

/**
 * The body to forward for a request that has one, with `headers` (the upstream head) adjusted when the body is
 * replayed; null when the exchange was already answered (413, or a body a parser consumed without keeping it).
 */
export function requestBody (exchange: Exchange, req: IncomingMessage, headers: string[], limit: number | null, idleTimeout = 0): Readable | null {
  if (req.readableEnded || req.readableDidRead || (req as { _body?: unknown })._body === true) {
    // Embedded behind a body parser: the stream is spent. Forward what the parser kept, never an empty body.
    const replay = consumedBody(req)
    if (replay === null) {
      exchange.sendError(new ProxyError('PORTICO_ERR_BODY_CONSUMED'))
      return null
    }
    // A replayed body has a known length: chunked framing is dropped and Content-Length stated.
    replaceField(headers, 'content-length', String(replay.length))
    return Readable.from([replay])
  }
  watchBody(req, exchange, idleTimeout)
  return limit === null ? req : limitBody(exchange, req, limit)
}

/**
 * The body a parser consumed, as bytes: `req.rawBody` when the parser kept it, else the parsed `req.body`
 * re-serialised for its content type (JSON, form, text, bytes). Null when neither exists.
 */
function consumedBody (req: IncomingMessage): Buffer | null {
  const raw = (req as { rawBody?: unknown }).rawBody
  if (Buffer.isBuffer(raw)) return raw
  if (typeof raw === 'string') return Buffer.from(raw)
  const parsed = (req as { body?: unknown }).body
  if (parsed === undefined || parsed === null) return null
  if (Buffer.isBuffer(parsed)) return parsed
  if (typeof parsed === 'string') return Buffer.from(parsed)
  const type = String(req.headers['content-type'] ?? '').toLowerCase()
  if (type.includes('json')) return Buffer.from(JSON.stringify(parsed))
  if (type.startsWith('application/x-www-form-urlencoded') && typeof parsed === 'object') {
    const form = new URLSearchParams()
    for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) {
      if (Array.isArray(v)) for (const x of v) form.append(k, String(x))
      else form.append(k, String(v))
    }
    return Buffer.from(form.toString())
  }
  return null
}

/**
 * RFC 9110 §15.5.14: 413 for a body over the limit. A declared Content-Length is checked up front; a chunked body
 * is counted as it streams and the exchange fails (413 if no response has started) once it passes the limit.
 * Returns the body to forward, or null when the request was already answered.
 */
function limitBody (exchange: Exchange, req: IncomingMessage, limit: number): Readable | null {
  const declared = req.headers['content-length']
  if (declared !== undefined) {
    if (Number(declared) <= limit) return req
    exchange.res.shouldKeepAlive = false
    exchange.sendError(new ProxyError('PORTICO_ERR_BODY_TOO_LARGE'))
    return null
  }
  let seen = 0
  const counter = new Transform({
    transform (chunk: Buffer, _enc, callback) {
      seen += chunk.length
      if (seen > limit) {
        exchange.res.shouldKeepAlive = false
        callback(new ProxyError('PORTICO_ERR_BODY_TOO_LARGE'))
        exchange.failRequest(new ProxyError('PORTICO_ERR_BODY_TOO_LARGE'))
        return
      }
      callback(null, chunk)
    }
  })
  req.on('error', (err) => counter.destroy(err))
  return req.pipe(counter)
}
