/**
 * The proxy's client connections, for a graceful drain: HTTP/2 sessions, HTTP/1.1 connections on HTTP/2 servers
 * (which Node does not track itself), and upgrade tunnels (which no HTTP server tracks once upgraded, and which exist
 * when Portico is embedded and has no listener at all). `drain` stops new work, lets what runs finish until the
 * deadline, then closes whatever is left.
 */
import type { RefusedConnections } from './connection-limits.js'
import type http from 'node:http'
import type https from 'node:https'
import type http2 from 'node:http2'
import type { Socket } from 'node:net'
import type { Logger } from '../observability/logger.js'

/** Any listener Portico creates. */
export type AnyServer = http.Server | https.Server | http2.Http2Server | http2.Http2SecureServer

/** Open upgrade tunnels, each as its close function; `whenEmpty` tells when the last one has closed. */
export class Tunnels {
  readonly #open = new Set<() => void>()
  #waiters: (() => void)[] = []

  get size (): number {
    return this.#open.size
  }

  add (close: () => void): void {
    this.#open.add(close)
  }

  delete (close: () => void): void {
    if (!this.#open.delete(close) || this.#open.size > 0) return
    const waiters = this.#waiters
    this.#waiters = []
    for (const w of waiters) w()
  }

  /** Resolves once no tunnel is open. */
  whenEmpty (): Promise<void> {
    if (this.#open.size === 0) return Promise.resolve()
    return new Promise((resolve) => this.#waiters.push(resolve))
  }

  /** Closes every open tunnel (both sockets). */
  closeAll (): void {
    for (const close of [...this.#open]) close()
  }
}

/** Tracks connections for drains. */
export class Connections {
  readonly tunnels = new Tunnels()
  /** Connections the listeners' limits refused (server/connection-limits.ts). */
  readonly refused: RefusedConnections = { maxConnections: 0, maxConnectionsPerIp: 0 }
  readonly #sessions = new Set<http2.ServerHttp2Session>()
  readonly #h1Sockets = new Map<Socket, number>()
  #draining = false

  /** True once a drain started: responses then carry Connection: close, new HTTP/2 sessions get GOAWAY. */
  get draining (): boolean {
    return this.#draining
  }

  /** Follows a server's HTTP/2 sessions, and on a server that also speaks HTTP/1.1 by ALPN, its HTTP/1.1 requests. */
  track (server: AnyServer, http1OnHttp2: boolean): void {
    server.on('session', (session: http2.ServerHttp2Session) => {
      this.#sessions.add(session)
      session.on('error', noop)
      session.once('close', () => this.#sessions.delete(session))
      if (this.#draining) session.close()
    })
    server.on('sessionError', noop)
    if (!http1OnHttp2) return
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      if (req.httpVersionMajor >= 2) return
      const socket = req.socket
      if (!this.#h1Sockets.has(socket)) socket.once('close', () => this.#h1Sockets.delete(socket))
      this.#h1Sockets.set(socket, (this.#h1Sockets.get(socket) ?? 0) + 1)
      res.once('close', () => {
        if (this.#h1Sockets.has(socket)) this.#h1Sockets.set(socket, this.#h1Sockets.get(socket)! - 1)
      })
    })
  }

  /**
   * Stops accepting, lets in-flight exchanges and tunnels finish for up to `timeout` ms, then closes what is left.
   * HTTP/2 sessions get GOAWAY at once and finish their open streams; HTTP/1.1 connections are closed as they go idle.
   */
  async drain (servers: readonly AnyServer[], timeout: number, logger: Logger, acceptFor = 0): Promise<void> {
    this.#draining = true
    if (acceptFor > 0) {
      // Still accepting, every answer says `Connection: close`: a client busy on a keep-alive connection gets that
      // before the connection goes (server.close() closes idle connections at once, racing a request in flight).
      // A cluster worker does this, as the other workers take new connections anyway.
      for (const session of this.#sessions) session.close()
      await new Promise((resolve) => setTimeout(resolve, Math.min(acceptFor, timeout / 2)))
    }
    const closed = Promise.all([
      ...servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))),
      this.tunnels.whenEmpty()
    ])
    for (const session of this.#sessions) session.close()
    // An HTTP/1.1 connection in use gets `Connection: close` on its next response and ends cleanly. Closing idle
    // ones at once would race a client that is sending on one right then (it sees a reset, nothing tells it to
    // retry): they are closed after a grace, by then only connections that really are idle.
    let sweep: NodeJS.Timeout | undefined
    const grace = setTimeout(() => {
      this.#closeIdle(servers)
      sweep = setInterval(() => this.#closeIdle(servers), 50)
    }, Math.min(DRAIN_GRACE_MS, timeout / 2))
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), timeout) })
    const outcome = await Promise.race([closed.then(() => 'drained' as const), deadline])
    clearTimeout(grace)
    clearInterval(sweep)
    clearTimeout(timer)
    if (outcome === 'timeout') {
      logger.warn({ drainTimeout: timeout }, 'drain timeout: closing remaining connections')
      for (const s of servers) (s as http.Server).closeAllConnections?.()
      for (const session of this.#sessions) session.destroy()
      for (const socket of this.#h1Sockets.keys()) socket.destroy()
      // Upgraded connections (WebSockets) are no longer the HTTP server's to close.
      this.tunnels.closeAll()
      await closed
    }
  }

  #closeIdle (servers: readonly AnyServer[]): void {
    for (const s of servers) (s as http.Server).closeIdleConnections?.()
    for (const [socket, active] of this.#h1Sockets) if (active === 0) socket.destroy()
  }
}

function noop (): void {}

/** How long a drain leaves idle HTTP/1.1 keep-alive connections open before closing them. */
const DRAIN_GRACE_MS = 1000
