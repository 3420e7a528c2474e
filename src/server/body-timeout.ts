/**
 * The request body idle timeout (`server.bodyTimeout`, nginx's client_body_timeout): a client that starts a body
 * and then sends nothing for that long is cut off, instead of holding a connection (and an upstream request) until
 * `server.requestTimeout`. One shared sweep (every second, unref'd, running only while uploads are open) watches each
 * open body's socket byte count; the clock only runs while Portico is waiting for the client (a body paused because
 * the node reads slowly is not the client's fault). On expiry the upstream attempt is aborted and the client gets 408
 * PORTICO_ERR_REQUEST_TIMEOUT when no response started yet (and the connection closes), else its connection is
 * destroyed. Per request this costs a Set entry, not a timer.
 */
import type { IncomingMessage } from 'node:http'
import { ProxyError } from '../errors.js'

/** What the watch needs of an exchange. */
export interface BodyWatcher {
  /** Fails the exchange from the request side (aborts the upstream attempt, answers when nothing was sent). */
  failRequest (err: ProxyError): void
}

interface Watched {
  req: IncomingMessage
  exchange: BodyWatcher
  timeout: number
  lastBytes: number
  lastChange: number
}

const SWEEP_MS = 1000
const open = new Set<Watched>()
let sweeper: NodeJS.Timeout | null = null

function sweep (): void {
  const now = Date.now()
  for (const w of open) {
    const socket = w.req.socket
    if (w.req.readableEnded || w.req.destroyed || socket === null || socket.destroyed) {
      open.delete(w)
      continue
    }
    const bytes = socket.bytesRead
    // Waiting on our side (the reader paused, or data is buffered and unread): not the client's silence.
    if (bytes !== w.lastBytes || w.req.readableFlowing === false || w.req.readableLength > 0) {
      w.lastBytes = bytes
      w.lastChange = now
      continue
    }
    if (now - w.lastChange < w.timeout) continue
    open.delete(w)
    w.exchange.failRequest(new ProxyError('PORTICO_ERR_REQUEST_TIMEOUT', `no request body data for ${w.timeout} ms (server.bodyTimeout)`))
    // Abort both sides: after a 408 (or a started response) the connection cannot carry another request. (An
    // HTTP/2 stream is closed by its response; the session is the other streams'.)
    if (w.req.httpVersionMajor < 2) setImmediate(() => { if (!socket.destroyed) socket.destroySoon() })
  }
  if (open.size === 0 && sweeper !== null) {
    clearInterval(sweeper)
    sweeper = null
  }
}

/** Watches a request body that is being forwarded until it ends. */
export function watchBody (req: IncomingMessage, exchange: BodyWatcher, timeout: number): void {
  if (timeout <= 0 || req.readableEnded || req.socket === null) return
  const w: Watched = { req, exchange, timeout, lastBytes: req.socket.bytesRead, lastChange: Date.now() }
  open.add(w)
  req.once('end', () => open.delete(w))
  req.once('close', () => open.delete(w))
  if (sweeper === null) {
    sweeper = setInterval(sweep, Math.min(SWEEP_MS, timeout))
    sweeper.unref()
  }
}
