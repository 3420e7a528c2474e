/**
 * The Proxy: owns the runtime (route table and live upstreams, swapped whole on reload), the listeners, and
 * shutdown (stop accepting, drain in-flight exchanges within a deadline, close upstream pools).
 */
import http, { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http'
import https from 'node:https'
import http2 from 'node:http2'
import type { TLSSocket } from 'node:tls'
import { CertificateStore } from './server/certificates.js'
import { normalizeHost } from './routing/host.js'
import type { AddressInfo, Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { UpstreamPool } from './balancer/pool.js'
import { isResolvedConfig, type MemberSpec, type ResolvedConfig, type ResolvedListener, type ResolvedRoute } from './config/resolve.js'
import { handleRequest, handleUpgrade, type CompiledRoute, type NextFunction, type Runtime } from './pipeline.js'
import { loadConfigObjectSync } from './config/load.js'
import type { PorticoConfig } from './config/schema.js'
import type { ExchangeContext } from './exchange.js'
import { silentLogger, type Logger } from './observability/logger.js'
import { Router } from './routing/router.js'
import { compileHooks } from './hooks.js'
import { InProcessUpstream } from './upstream/in-process.js'
import { RemoteNode } from './upstream/remote.js'
import type { Upstream } from './upstream/types.js'
import { createCache, type HttpCache, type PurgeFilter } from './cache/index.js'
import { createAdminServer, type PurgeRequest } from './server/admin.js'

/** A bound listener. */
export interface ListeningAddress {
  host: string
  port: number
  /** "http://127.0.0.1:8080" (IPv6 hosts bracketed). */
  url: string
}

/** One host of the compiled route table. */
export interface RouteTableEntry {
  host: string
  kind: 'exact' | 'prefix' | 'wildcard' | 'catch-all'
  paths: { path: string, stripPrefix: boolean, upstream: string, cache: boolean }[]
}

/** Options beyond the config. */
export interface ProxyOptions {
  logger?: Logger
}

interface Live {
  runtime: Runtime
  upstreams: Upstream[]
}

/** A configured reverse proxy. Create with `createProxy` (or `Proxy.fromResolved`). */
export class Proxy {
  #config: ResolvedConfig
  #live: Live
  readonly #logger: Logger
  readonly #servers: AnyServer[] = []
  readonly #sessions = new Set<http2.ServerHttp2Session>()
  readonly #h1Sockets = new Map<Socket, number>()
  #certificates: CertificateStore | null = null
  #cache: HttpCache | null
  #cacheSettings: string
  #admin: { server: http.Server, address: ListeningAddress } | null = null
  #draining = false
  #closed: Promise<void> | null = null
  readonly #ctx: ExchangeContext

  constructor (config: ResolvedConfig, options: ProxyOptions = {}) {
    this.#config = config
    this.#logger = options.logger ?? silentLogger()
    this.#cache = config.cache === null ? null : createCache(config.cache, this.#logger)
    this.#cacheSettings = JSON.stringify(config.cache)
    this.#live = compile(config, this.#logger, this.#cache)
    this.#ctx = {
      logger: this.#logger,
      accessLog: config.log.access,
      isDraining: () => this.#draining,
      tunnels: new Set(),
      runtime: () => this.#live.runtime
    }
  }

  /** The resolved config in force. */
  get config (): ResolvedConfig {
    return this.#config
  }

  /** The logger requests are logged to. */
  get logger (): Logger {
    return this.#logger
  }

  /** The compiled route table, most specific host first (what `portico check` prints). */
  describeRoutes (): RouteTableEntry[] {
    return this.#live.runtime.router.describe().map((h) => ({
      host: h.host,
      kind: h.kind,
      paths: h.routes.map((r) => ({ path: r.path, stripPrefix: r.stripPrefix, upstream: r.upstream.id, cache: r.cache !== null }))
    }))
  }

  /**
   * The request handler: `(req, res, next?)`. Usable as a `node:http` request listener or as Connect/Express
   * middleware; with `next`, unmatched requests fall through instead of getting 404.
   */
  readonly handler = (req: IncomingMessage, res: ServerResponse, next?: NextFunction): void => {
    handleRequest(this.#live.runtime, this.#ctx, req, res, next)
  }

  /**
   * The upgrade handler, for `server.on('upgrade', proxy.upgradeHandler)`: routes a WebSocket (or other
   * `Upgrade:`) handshake like a request and tunnels it to the chosen node. With `next`, an unmatched handshake
   * is left to it untouched; without, it is answered 404 and closed.
   */
  readonly upgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer, next?: NextFunction): void => {
    handleUpgrade(this.#live.runtime, this.#ctx, req, socket, head, next)
  }

  /** Starts every configured listener. Resolves with the bound addresses (port 0 becomes the real port). */
  async listen (): Promise<ListeningAddress[]> {
    const out: ListeningAddress[] = []
    for (const l of this.#config.listen) {
      const server = this.#createServer(l)
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(l.port, l.host, () => {
          server.off('error', reject)
          resolve()
        })
      })
      this.#servers.push(server)
      const addr = server.address() as AddressInfo
      const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address
      out.push({ host: addr.address, port: addr.port, url: `${l.tls ? 'https' : 'http'}://${host}:${addr.port}` })
    }
    const admin = this.#config.admin
    if (admin !== null && this.#admin === null) {
      const server = createAdminServer(this, admin.token, this.#logger)
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(admin.port, admin.host, () => {
          server.off('error', reject)
          resolve()
        })
      })
      const addr = server.address() as AddressInfo
      const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address
      this.#admin = { server, address: { host: addr.address, port: addr.port, url: `http://${host}:${addr.port}` } }
    }
    return out
  }

  /** The admin API's address once listening, or null. */
  get adminAddress (): ListeningAddress | null {
    return this.#admin?.address ?? null
  }

  /** The proxy cache, or null when no route caches. */
  get cache (): HttpCache | null {
    return this.#cache
  }

  /**
   * Purges the cache: an exact URL (every Vary variant), a host and path prefix, or a surrogate key / cache tag
   * (from Surrogate-Key or Cache-Tag). With a Redis store, every instance sharing it sees the purge. Resolves to
   * the number of stored responses removed (0 without a cache).
   */
  async purge (filter: PurgeRequest): Promise<number> {
    const cache = this.#cache
    if (cache === null) return 0
    return await cache.purge(toStoreFilter(filter))
  }

  /** Cache counters and store size, or null without a cache. */
  cacheStats (): object | null {
    const cache = this.#cache
    if (cache === null) return null
    return { store: cache.store.name, bytes: cache.store.bytes ?? null, ...cache.stats }
  }

  /** Reloads TLS certificates from disk (SIGHUP); a certificate that fails to load keeps the old one. */
  reloadCertificates (): void {
    this.#certificates?.reload()
  }

  /**
   * Swaps in a new config (an options object, validated like `createProxy`'s, or a resolved config from the
   * loaders): new requests use it at once; in-flight ones finish on the old upstreams. Listeners are unchanged.
   * Throws ConfigError and keeps the old config when the new one is invalid.
   */
  async reload (options: ResolvedConfig | PorticoConfig): Promise<void> {
    const config = isResolvedConfig(options) ? options : loadConfigObjectSync(options)
    const old = this.#live
    // The cache (and what it holds) survives a reload unless its own settings changed.
    const settings = JSON.stringify(config.cache)
    let oldCache: HttpCache | null = null
    let cache = this.#cache
    if (settings !== this.#cacheSettings) {
      oldCache = this.#cache
      cache = config.cache === null ? null : createCache(config.cache, this.#logger)
    }
    this.#live = compile(config, this.#logger, cache)
    this.#cache = cache
    this.#cacheSettings = settings
    this.#config = config
    if (oldCache !== null) {
      // Responses may still be streaming from the old store (a Redis hit): close it once they had time to end.
      const timer = setTimeout(() => {
        oldCache.abortFills()
        oldCache.close().catch((err: unknown) => this.#logger.warn({ err }, 'closing the previous cache failed'))
      }, config.server.drainTimeout)
      timer.unref()
    }
    this.#ctx.accessLog = config.log.access
    await Promise.all(old.upstreams.map((u) => u.close()))
  }

  /** True once `close` was called. */
  get draining (): boolean {
    return this.#draining
  }

  /**
   * Stops accepting connections, lets in-flight exchanges finish for up to `drainTimeout` ms (default: the
   * config's server.drainTimeout), then closes what is left and the upstream pools. Idempotent.
   */
  close (options: { drainTimeout?: number } = {}): Promise<void> {
    this.#closed ??= this.#close(options.drainTimeout ?? this.#config.server.drainTimeout)
    return this.#closed
  }

  async #close (drainTimeout: number): Promise<void> {
    this.#draining = true
    const closed = Promise.all(this.#servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))))
    // HTTP/2 sessions get GOAWAY and finish their open streams; responses written from now on carry
    // Connection: close; HTTP/1.1 connections that go idle are closed as they do.
    for (const session of this.#sessions) session.close()
    const sweep = setInterval(() => this.#closeIdle(), 50)
    this.#closeIdle()
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), drainTimeout) })
    const outcome = await Promise.race([closed.then(() => 'drained' as const), deadline])
    clearInterval(sweep)
    clearTimeout(timer)
    if (outcome === 'timeout') {
      this.#logger.warn({ drainTimeout }, 'drain timeout: closing remaining connections')
      for (const s of this.#servers) (s as http.Server).closeAllConnections?.()
      for (const session of this.#sessions) session.destroy()
      for (const socket of this.#h1Sockets.keys()) socket.destroy()
      // Upgraded connections (WebSockets) are no longer the HTTP server's to close.
      for (const close of [...this.#ctx.tunnels]) close()
      await closed
    }
    this.#certificates?.close()
    if (this.#admin !== null) {
      const admin = this.#admin.server
      admin.closeAllConnections()
      await new Promise<void>((resolve) => admin.close(() => resolve()))
    }
    // Background refreshes and fills nobody waits for any more must not hold the pools open.
    this.#cache?.abortFills()
    await Promise.all(this.#live.upstreams.map((u) => u.close()))
    await this.#cache?.close()
  }

  #closeIdle (): void {
    for (const s of this.#servers) (s as http.Server).closeIdleConnections?.()
    for (const [socket, active] of this.#h1Sockets) if (active === 0) socket.destroy()
  }

  #createServer (l: ResolvedListener): AnyServer {
    const s = this.#config.server
    const httpOptions = {
      keepAliveTimeout: s.keepAliveTimeout,
      headersTimeout: s.headersTimeout,
      requestTimeout: s.requestTimeout,
      maxHeaderSize: s.maxHeaderSize,
      requireHostHeader: true,
      joinDuplicateHeaders: false,
      noDelay: true
    }
    const handler: (req: IncomingMessage, res: ServerResponse) => void = l.redirectToHttps !== false
      ? redirectHandler(l.redirectToHttps, this.#logger)
      : this.handler
    let server: AnyServer
    if (l.tls) {
      this.#certificates ??= new CertificateStore(this.#config.tls!, this.#logger)
      const store = this.#certificates
      const tlsOptions = { ...store.serverOptions(), ...httpOptions }
      if (l.http2) {
        // ALPN offers h2 and http/1.1 on the same port.
        server = http2.createSecureServer({ ...tlsOptions, ...H2_OPTIONS, allowHTTP1: true }, handler as never)
        this.#trackHttp1(server)
      } else {
        server = https.createServer(tlsOptions, handler)
      }
      const tlsServer = server as unknown as { setSecureContext: (o: object) => void }
      const previous = store.onReload
      store.onReload = () => {
        previous?.()
        tlsServer.setSecureContext({ ...store.serverOptions() })
      }
      // RFC 9325 §3.5 / §4: no renegotiation; TLS 1.2 floor and session resumption are set in serverOptions.
      server.on('secureConnection', (socket: TLSSocket) => {
        // A renegotiation attempt is reported as an error and would leave the connection hanging: close it.
        socket.on('error', (err: NodeJS.ErrnoException) => { if (err.code === 'ERR_TLS_RENEGOTIATION_DISABLED') socket.destroy() })
        socket.disableRenegotiation()
      })
      server.on('tlsClientError', (err: Error) => this.#logger.debug({ err: err.message }, 'TLS handshake failed'))
    } else if (l.http2) {
      // Cleartext HTTP/2 with prior knowledge (h2c); HTTP/1.1 clients are not served on this listener.
      server = http2.createServer({ ...H2_OPTIONS }, handler as never)
    } else {
      server = http.createServer(httpOptions, handler)
    }
    if (server instanceof http.Server) server.keepAliveTimeout = s.keepAliveTimeout
    if ('on' in server) {
      server.on('session', (session: http2.ServerHttp2Session) => {
        this.#sessions.add(session)
        session.on('error', noop)
        session.once('close', () => this.#sessions.delete(session))
        if (this.#draining) session.close()
      })
      server.on('sessionError', noop)
    }
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.upgradeHandler(req, socket, head))
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => this.#onClientError(err, socket))
    // RFC 9110 §9.3.6: CONNECT asks for a tunnel; a reverse proxy refuses it (never an open proxy).
    server.on('connect', (req: IncomingMessage, socket: Duplex) => {
      if (req.httpVersionMajor >= 2) {
        // HTTP/2 compat passes (request, response). RFC 8441: CONNECT with :protocol websocket is a WebSocket.
        const res = socket as unknown as http2.Http2ServerResponse
        if (req.headers[':protocol'] === 'websocket') {
          handleUpgrade(this.#live.runtime, this.#ctx, req, res.stream, Buffer.alloc(0), undefined, res)
          return
        }
        res.writeHead(405, { allow: 'GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH' })
        res.end()
        return
      }
      socket.on('error', noop)
      this.#logger.info({ method: 'CONNECT', path: req.url, status: 405, error: 'PORTICO_ERR_METHOD_NOT_ALLOWED', remoteAddr: req.socket.remoteAddress })
      socket.end('HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
    })
    server.on('connection', (socket: Socket) => socket.on('error', noop))
    return server
  }

  /** HTTP/1.1 connections on an HTTP/2 server are not tracked by Node: count their active requests for drains. */
  #trackHttp1 (server: AnyServer): void {
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      if (req.httpVersionMajor >= 2) return
      const socket = req.socket
      if (!this.#h1Sockets.has(socket)) socket.once('close', () => this.#h1Sockets.delete(socket))
      this.#h1Sockets.set(socket, (this.#h1Sockets.get(socket) ?? 0) + 1)
      res.once('close', () => {
        if (this.#h1Sockets.has(socket)) this.#h1Sockets.set(socket, this.#h1Sockets.get(socket)! - 1)
      })
    })
  }

  #onClientError (err: NodeJS.ErrnoException, socket: Duplex): void {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy()
      return
    }
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400
    this.#logger.debug({ code: err.code, status }, 'malformed request')
    socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`)
  }
}

function noop (): void {}

/** HTTP/2 server settings: extended CONNECT (RFC 8441) carries WebSockets over HTTP/2 streams. */
const H2_OPTIONS = { settings: { enableConnectProtocol: true } }

type AnyServer = http.Server | https.Server | http2.Http2Server | http2.Http2SecureServer

/** RFC 9110 §15.4.9: 308 keeps the method and body; path and query are kept byte-exact. */
function redirectHandler (httpsPort: number, logger: Logger): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const hostHeader = req.headers.host ?? ''
    const name = normalizeHost(hostHeader)
    if (name === null || name === '') {
      res.writeHead(400, { 'content-type': 'text/plain', 'content-length': '12' })
      res.end('bad request\n')
      return
    }
    const authority = httpsPort === 443 ? name : `${name.includes(':') && !name.startsWith('[') ? `[${name}]` : name}:${httpsPort}`
    const target = (req.url ?? '/').startsWith('/') ? req.url : '/'
    const location = `https://${authority}${target}`
    res.writeHead(308, { location, 'content-length': '0' })
    res.end()
    logger.info({ method: req.method, host: name, path: req.url, status: 308, location })
  }
}


/** Builds live upstreams and the route table for a config. Nodes with identical settings share one pool. */
function compile (config: ResolvedConfig, logger: Logger, cache: HttpCache | null): Live {
  const nodes = new Map<string, Upstream>()
  const handlers = new Map<unknown, Upstream>()
  const tlsIds = new Map<object, number>()
  const upstreams: Upstream[] = []
  const memberFor = (m: MemberSpec, route: ResolvedRoute): Upstream => {
    if (m.kind === 'node') {
      const u = route.upstream
      const tlsKey = m.protocol === 'https:' ? tlsIds.get(u.tls) ?? tlsIds.set(u.tls, tlsIds.size).get(u.tls) : ''
      const key = `${m.origin}|${route.timeouts.connect}|${u.maxConnections}|${u.keepAlive}|${tlsKey}|${u.http2}`
      let node = nodes.get(key)
      if (node === undefined) {
        if (m.protocol === 'https:' && !u.tls.rejectUnauthorized) {
          logger.warn({ upstream: m.origin, route: route.name }, 'insecureSkipVerify: the certificate of this node is NOT verified; anyone on the path can impersonate it')
        }
        node = new RemoteNode(m.origin, {
          connectTimeout: route.timeouts.connect,
          maxConnections: u.maxConnections,
          keepAlive: u.keepAlive,
          ...(m.protocol === 'https:' ? { tls: u.tls, http2: u.http2 } : {})
        })
        nodes.set(key, node)
        upstreams.push(node)
      }
      return node
    }
    const fn = m.target.kind === 'listener' ? m.target.listener : m.target.kind === 'fetch' ? m.target.fetch : m.target.server
    let h = handlers.get(fn)
    if (h === undefined) {
      h = new InProcessUpstream(m.id, m.target, { onHandlerError: (err) => logger.error({ err, upstream: m.id }, 'handler failed') })
      handlers.set(fn, h)
      upstreams.push(h)
    }
    return h
  }
  const routes: CompiledRoute[] = config.routes.map((r) => ({
    name: r.name,
    hosts: r.hosts,
    path: r.path,
    stripPrefix: r.stripPrefix,
    upstream: new UpstreamPool(r.upstream.members.map((m) => memberFor(m, r)), { failTimeout: r.upstream.failTimeout }),
    headerOptions: { preserveHost: r.preserveHost, ...r.headers },
    dispatchOptions: { headersTimeout: r.timeouts.response, bodyTimeout: r.timeouts.idle },
    hsts: r.hsts,
    cache: r.cache ? cache : null
  }))
  return {
    runtime: { router: new Router(routes), maxRequestBody: config.limits.maxRequestBody, hooks: compileHooks(config.hooks) },
    upstreams
  }
}

/** A purge request in store terms: URLs become primary keys (GET, lower-case scheme and host, no port). */
function toStoreFilter (f: PurgeRequest): PurgeFilter {
  if ('url' in f) {
    const u = new URL(f.url)
    const target = f.url.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, '').replace(/#.*$/, '')
    return { key: `GET ${u.protocol}//${u.hostname.toLowerCase()}${target === '' ? '/' : target.startsWith('?') ? `/${target}` : target}` }
  }
  if ('tag' in f) return { tag: f.tag }
  return { host: f.host.toLowerCase().replace(/:\d+$/, ''), pathPrefix: f.prefix }
}
