/**
 * A remote node: one undici Pool per origin, keep-alive, with the connect timeout set per pool and the
 * response/idle timeouts per request. `dispatch` hands the response handler to undici unchanged.
 *
 * For https:// nodes the TLS name (SNI and the name the certificate is verified against) is the node's: the
 * configured `tls.servername`, else the node URL's host name (none for an IP literal). undici would otherwise take
 * it from each request's Host header, which for a reverse proxy is the client's name, not the node's.
 */
import { isIP } from 'node:net'
import type { Dispatcher } from 'undici'
import { Pool, buildConnector, type Connector, type ConnectorOptions, type PoolOptions } from './undici.js'
import type { DispatchOptions, ResponseHandler, Upstream, UpstreamRequest, UpstreamTls } from './types.js'
import { skipUnsolicitedContinue } from './continue-filter.js'

/** Connection settings for a node. */
export interface RemoteNodeOptions {
  connectTimeout: number
  maxConnections: number
  keepAlive: number
  /** Pool factory for nodes that are not reached over TCP (in-process handlers). */
  connect?: PoolOptions['connect']
  /** TLS for https:// origins: CA, SNI name, client certificate, verification. */
  tls?: UpstreamTls
  /** Offer HTTP/2 by ALPN to https:// origins. */
  http2?: boolean
  /** The Host sent when a request carries none (an address of a DNS-named node: the name, not the address). */
  authority?: string
}

/**
 * How much a cleartext connection to a node buffers before it stops reading (its readable high-water mark). undici
 * sets 64 KiB, exactly the most one socket read returns, so every full read of a large answer stopped and restarted
 * reading (two epoll_ctl system calls per 64 KiB). Twice that keeps a full read below the mark; it only fills while
 * the client reads slower than the node sends, and then bounds what waits per connection, like nginx's proxy buffers.
 */
const UPSTREAM_READ_BUFFER = 128 * 1024

/** A remote node reached over HTTP/1.1 with a keep-alive pool. */
export class RemoteNode implements Upstream {
  readonly id: string
  readonly #pool: Pool
  /** For https:// nodes: one constant name per request, so undici never derives one from the Host header. */
  readonly #servername: string | undefined
  readonly #authority: string | undefined

  constructor (origin: string, options: RemoteNodeOptions, id = origin) {
    this.id = id
    this.#authority = options.authority
    const url = new URL(origin)
    let connector: Connector
    if (typeof options.connect === 'function') {
      connector = options.connect
    } else if (url.protocol === 'https:') {
      const tlsName = nodeTlsName(url, options.tls)
      // undici keeps one servername per connection and reconnects when a request carries another: a constant
      // one keeps connections reused whatever Host the clients send. The connector sends the real one.
      this.#servername = tlsName ?? url.hostname
      connector = tlsConnector(tlsName, { timeout: options.connectTimeout, allowH2: options.http2 ?? false, ...options.tls })
    } else {
      connector = buildConnector({ timeout: options.connectTimeout, highWaterMark: UPSTREAM_READ_BUFFER } as ConnectorOptions)
    }
    // Every connection skips unsolicited 100 Continue heads (continue-filter.ts); HTTP/2 ones need not.
    const connect: Connector = (opts, callback) => connector(opts, (err, socket) => {
      if (err !== null || socket === null || (socket as { alpnProtocol?: string | false }).alpnProtocol === 'h2') callback(err, socket as never)
      else callback(null, skipUnsolicitedContinue(socket))
    })
    this.#pool = new Pool(origin, {
      connections: options.maxConnections,
      pipelining: 1,
      keepAliveTimeout: options.keepAlive,
      keepAliveMaxTimeout: Math.max(options.keepAlive, 1000),
      // Certificates are verified by default, against the node's name (see tlsConnector).
      connect,
      allowH2: options.http2 ?? false,
      // Per-request values replace these; they guard requests dispatched without them.
      headersTimeout: 60_000,
      bodyTimeout: 60_000,
      strictContentLength: true
    })
  }

  dispatch (req: UpstreamRequest, opts: DispatchOptions, handler: ResponseHandler): void {
    const options: Dispatcher.DispatchOptions & { servername?: string } = {
      path: req.path,
      method: req.method,
      headers: this.#authority === undefined ? req.headers : withHost(req.headers, this.#authority),
      body: req.body,
      headersTimeout: opts.headersTimeout,
      bodyTimeout: opts.bodyTimeout,
      blocking: false,
      upgrade: req.upgrade,
      // Supported by undici's Request, missing from its DispatchOptions type.
      servername: this.#servername
    }
    this.#pool.dispatch(options, handler as unknown as Dispatcher.DispatchHandler)
  }

  close (): Promise<void> {
    return this.#pool.close()
  }

  /** Closes at once, failing in-flight requests. */
  destroy (): Promise<void> {
    return this.#pool.destroy()
  }
}

/** `headers` with a Host field added when it has none. */
function withHost (headers: string[], authority: string): string[] {
  for (let i = 0; i < headers.length; i += 2) if (headers[i].length === 4 && headers[i].toLowerCase() === 'host') return headers
  return ['host', authority, ...headers]
}

/**
 * The TLS name of an https:// node: `tls.servername` when configured, else the URL's host name; undefined for an
 * IP literal (RFC 6066 §3: no SNI for addresses; the certificate is then verified against the IP).
 */
export function nodeTlsName (url: URL, tls: UpstreamTls | undefined): string | undefined {
  if (tls?.servername !== undefined) return tls.servername
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname
  return isIP(host) === 0 ? host : undefined
}

/**
 * undici's connector with the TLS name fixed: the servername undici passes (derived from the request) is
 * replaced by `tlsName`, or dropped for IP nodes so the connector falls back to the node's own host.
 */
function tlsConnector (tlsName: string | undefined, options: ConnectorOptions): Connector {
  const connector = buildConnector(options)
  return (opts, callback) => connector({ ...opts, servername: tlsName ?? '' }, callback)
}
