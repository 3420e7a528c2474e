/**
 * The one upstream interface. A remote node, an in-process handler and a pool of either implement `Upstream`;
 * routing, retries and logging never ask which one they hold.
 *
 * The interface is callback-shaped (the shape of undici's dispatch handler) rather than promise-and-stream
 * shaped: a proxied request then costs no promise, no Readable and no pipe on the hot path, and a remote node
 * hands undici's callbacks straight through. Backpressure is the return value of `onData` plus `resume`.
 */
import type { RequestListener, Server } from 'node:http'
import type { Duplex, Readable } from 'node:stream'

/** The request as it goes upstream. Headers are already rewritten (hop-by-hop removed, forwarding added). */
export interface UpstreamRequest {
  method: string
  /** Origin-form target, byte-exact: path and query as the client sent them (after stripPrefix). */
  path: string
  /** Flat `[name, value, ...]`. A `host` entry, when present, is sent as the Host header. */
  headers: string[]
  /** The request body, or null when the request has none. Never buffered. */
  body: Readable | null
  /** For an upgrade (WebSocket) handshake: the protocol to ask for; the handler then needs `onUpgrade`. */
  upgrade?: string
  /** The client's address (the hash policy's `client-ip`). */
  clientAddress?: string
  /** The client connection is TLS (the sticky cookie's default Secure attribute). */
  clientTls?: boolean
}

/** Per-request limits. */
export interface DispatchOptions {
  /** Milliseconds from sending the request to the response head (0 = none). */
  headersTimeout: number
  /** Longest gap in milliseconds between two response body chunks (0 = none). */
  bodyTimeout: number
}

/**
 * Receives one response. Calls come in this order: `onConnect` (once per attempt from a transport; once per
 * request, before the first attempt, from a pool), then either `onError`, or `onHeaders` (possibly several times for
 * 1xx interim responses), `onData`*, and `onComplete` or `onError`. A pool also calls `onAttempt` before each
 * attempt and `onRetry` after each failed one that is tried again.
 */
export interface ResponseHandler {
  /** A pool chose the member an attempt goes to (its id, for logs). */
  onAttempt? (upstreamId: string): void
  /** An attempt failed and another follows: the member and the failure's registry code (for the access log). */
  onRetry? (upstreamId: string, code: string): void
  /** The attempt is under way; `abort` cancels it (the handler then gets `onError`). */
  onConnect (abort: (reason?: Error) => void): void
  /**
   * A response head. Status < 200 is an interim response. For a final response, returning false pauses the body
   * until `resume()` is called.
   */
  onHeaders (status: number, rawHeaders: Buffer[] | string[], resume: () => void, statusText: string): boolean
  /** A body chunk; return false to pause until `resume()`. The chunk is not reused by the sender. */
  onData (chunk: Buffer): boolean
  /** The body is complete; trailers are raw `[name, value, ...]` or null. */
  onComplete (rawTrailers: Buffer[] | string[] | null): void
  /** The exchange failed, before or after the head. */
  onError (err: Error): void
  /** The node switched protocols (101) for an `upgrade` request; `socket` is now a raw tunnel to it. */
  onUpgrade? (status: number, rawHeaders: Buffer[], socket: Duplex): void
}

/** Something that answers requests: a remote node, an in-process handler, or a pool of them. */
export interface Upstream {
  /** "http://10.0.0.7:8080", "handler:./apps/status.mjs". Used in logs. */
  readonly id: string
  dispatch (req: UpstreamRequest, opts: DispatchOptions, handler: ResponseHandler): void
  /** Closes connections; in-flight requests finish first. */
  close (): Promise<void>
}

/** A fetch-style handler: `(request) => Response`. */
export type FetchHandler = (request: Request) => Response | Promise<Response>

/** What an in-process member runs: a request listener, a fetch-style handler, or an app's own `http.Server`. */
export type HandlerTarget =
  | { kind: 'listener', listener: RequestListener }
  | { kind: 'fetch', fetch: FetchHandler }
  | { kind: 'server', server: Server }

/** Client-side TLS for https:// nodes, as Node's tls.connect options (files already read). */
export interface UpstreamTls {
  ca?: Buffer[]
  servername?: string
  cert?: Buffer
  key?: Buffer
  passphrase?: string
  rejectUnauthorized: boolean
}
