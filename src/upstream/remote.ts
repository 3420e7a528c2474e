/**
 * A remote node: one undici Pool per origin, keep-alive, with the connect timeout set per pool and the
 * response/idle timeouts per request. `dispatch` hands the response handler to undici unchanged.
 */
import { Pool, type Dispatcher } from 'undici'
import type { DispatchOptions, ResponseHandler, Upstream, UpstreamRequest } from './types.js'
import type { UpstreamTls } from '../config/resolve.js'

/** Connection settings for a node. */
export interface RemoteNodeOptions {
  connectTimeout: number
  maxConnections: number
  keepAlive: number
  /** Pool factory for nodes that are not reached over TCP (in-process handlers). */
  connect?: Pool.Options['connect']
  /** TLS for https:// origins: CA, SNI name, client certificate, verification. */
  tls?: UpstreamTls
  /** Offer HTTP/2 by ALPN to https:// origins. */
  http2?: boolean
}

/** A remote node reached over HTTP/1.1 with a keep-alive pool. */
export class RemoteNode implements Upstream {
  readonly id: string
  readonly #pool: Pool

  constructor (origin: string, options: RemoteNodeOptions, id = origin) {
    this.id = id
    this.#pool = new Pool(origin, {
      connections: options.maxConnections,
      pipelining: 1,
      keepAliveTimeout: options.keepAlive,
      keepAliveMaxTimeout: Math.max(options.keepAlive, 1000),
      // Certificates are verified by default, with SNI set to the node's host (or tls.servername).
      connect: options.connect ?? { timeout: options.connectTimeout, ...options.tls },
      allowH2: options.http2 ?? false,
      // Per-request values replace these; they guard requests dispatched without them.
      headersTimeout: 60_000,
      bodyTimeout: 60_000,
      strictContentLength: true
    })
  }

  dispatch (req: UpstreamRequest, opts: DispatchOptions, handler: ResponseHandler): void {
    this.#pool.dispatch({
      path: req.path,
      method: req.method,
      headers: req.headers,
      body: req.body,
      headersTimeout: opts.headersTimeout,
      bodyTimeout: opts.bodyTimeout,
      blocking: false,
      upgrade: req.upgrade
    }, handler as unknown as Dispatcher.DispatchHandler)
  }

  close (): Promise<void> {
    return this.#pool.close()
  }

  /** Closes at once, failing in-flight requests. */
  destroy (): Promise<void> {
    return this.#pool.destroy()
  }
}
