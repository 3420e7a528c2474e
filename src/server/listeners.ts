/**
 * Listeners: one server per configured listener, cleartext HTTP/1.1, h2c, or TLS with HTTP/2 and HTTP/1.1 by ALPN
 * (certificates by SNI from certificates.ts). Each server hands requests and upgrades to the proxy, answers what never
 * reaches the pipeline through the error registry — a malformed request (400), a head too large (431), a request
 * too slow (408), CONNECT (405: never an open proxy) — and is tracked for drains (connections.ts).
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import https from 'node:https'
import http2 from 'node:http2'
import type { TLSSocket } from 'node:tls'
import type { AddressInfo, Server as NetServer, Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { ProxyError } from '../errors.js'
import { isEnding } from '../exchange.js'
import { classifyClientError, isRenegotiationAttempt } from '../classify.js'
import { rawErrorResponse, sendErrorResponse } from '../error-response.js'
import type { ResolvedListener, ResolvedServer } from '../config/resolved.js'
import type { Logger } from '../observability/logger.js'
import { nextRequestId } from '../observability/request-id.js'
import type { CertificateStore } from './certificates.js'
import type { AnyServer, Connections } from './connections.js'
import { redirectHandler } from './redirect.js'
import { limitConnections } from './connection-limits.js'
import type { AddressSet } from '../http/address-set.js'
import { tlsHandshake } from '../observability/channels.js'
import type { AcmeChallenges } from '../acme/manager.js'
import { answerTlsAlpn01 } from '../acme/tls-alpn-01.js'

/** A bound listener. */
export interface ListeningAddress {
  host: string
  port: number
  /** "http://127.0.0.1:8080" (IPv6 hosts bracketed). */
  url: string
}

/** What a listener needs from the proxy. */
export interface ListenerContext {
  server: ResolvedServer
  logger: Logger
  connections: Connections
  /** The certificate store (made by the proxy before its first TLS listener; only TLS listeners ask for it). */
  certificates: () => CertificateStore
  handler: (req: IncomingMessage, res: ServerResponse) => void
  upgradeHandler: (req: IncomingMessage, socket: Duplex, head: Buffer) => void
  /** WebSocket over HTTP/2 (RFC 8441): an extended CONNECT stream with its compat response. */
  h2Upgrade: (req: IncomingMessage, res: http2.Http2ServerResponse) => void
  /** The trusted proxies in force (their connections are not limited per address). */
  trust: () => AddressSet | null
  /** Identifies the proxy in diagnostics-channel messages (observability/channels.ts). */
  token: object
  /**
   * Pending ACME challenges, answered before anything else: HTTP-01 on cleartext listeners, TLS-ALPN-01 on TLS ones
   * (from the ClientHello); null without automatic HTTPS.
   */
  acmeChallenges: AcmeChallenges | null
}

/** HTTP/2 server settings: extended CONNECT (RFC 8441) carries WebSockets over HTTP/2 streams. */
const H2_OPTIONS = { settings: { enableConnectProtocol: true } }

/** Creates (does not start) the server for one listener. */
export function createListener (l: ResolvedListener, ctx: ListenerContext): AnyServer {
  const s = ctx.server
  const httpOptions = {
    keepAliveTimeout: s.keepAliveTimeout,
    headersTimeout: s.headersTimeout,
    requestTimeout: s.requestTimeout,
    // Node checks headersTimeout and requestTimeout on this interval (30 s by default, so a 408 could come 30 s
    // late); once a second keeps them to the second, for a scan of the open connections.
    connectionsCheckingInterval: 1000,
    maxHeaderSize: s.maxHeaderSize,
    requireHostHeader: true,
    joinDuplicateHeaders: false,
    noDelay: true
  }
  const routed = l.redirectToHttps !== false ? redirectHandler(l.redirectToHttps, ctx.logger) : ctx.handler
  const challenges = ctx.acmeChallenges?.http01 ?? null
  // RFC 8555 §8.3: the CA asks for the challenge over cleartext HTTP, before routing and before any redirect.
  const handler = challenges === null || l.tls
    ? routed
    : (req: IncomingMessage, res: ServerResponse): void => { if (!challenges.answer(req, res)) routed(req, res) }
  let server: AnyServer
  if (l.tls) {
    const store = ctx.certificates()
    const tlsOptions = { ...store.serverOptions(), ...httpOptions }
    server = l.http2
      // ALPN offers h2 and http/1.1 on the same port.
      ? http2.createSecureServer({ ...tlsOptions, ...H2_OPTIONS, allowHTTP1: true }, handler as never)
      : https.createServer(tlsOptions, handler)
    // RFC 8737: a validation handshake is told apart by its ALPN, which Node shows only after choosing a certificate.
    const tlsAlpn01 = ctx.acmeChallenges?.tlsAlpn01 ?? null
    if (tlsAlpn01 !== null) answerTlsAlpn01(server as unknown as NetServer, tlsAlpn01, ctx.logger)
    const tlsServer = server as unknown as { setSecureContext: (o: object) => void }
    const previous = store.onReload
    store.onReload = () => {
      previous?.()
      tlsServer.setSecureContext({ ...store.serverOptions() })
    }
    // RFC 9325 §3.5 / §4: no renegotiation; TLS 1.2 floor and session resumption are set in serverOptions.
    // The listener as bound (a configured port 0 becomes the real one).
    const name = (): string => {
      const a = server.address() as AddressInfo | null
      return a === null ? `${l.host}:${l.port}` : `${a.address}:${a.port}`
    }
    server.on('secureConnection', (socket: TLSSocket) => {
      // A renegotiation attempt is reported as an error and would leave the connection hanging: close it.
      socket.on('error', (err: Error) => { if (isRenegotiationAttempt(err)) socket.destroy() })
      socket.disableRenegotiation()
      if (tlsHandshake.hasSubscribers) tlsHandshake.publish({ proxy: ctx.token, listener: name(), ok: true })
    })
    server.on('tlsClientError', (err: Error & { code?: string }) => {
      ctx.logger.debug({ err: err.message }, 'TLS handshake failed')
      if (tlsHandshake.hasSubscribers) tlsHandshake.publish({ proxy: ctx.token, listener: name(), ok: false, error: err.code ?? 'error' })
    })
  } else if (l.http2) {
    // Cleartext HTTP/2 with prior knowledge (h2c); HTTP/1.1 clients are not served on this listener.
    server = http2.createServer({ ...H2_OPTIONS }, handler as never)
  } else {
    server = http.createServer(httpOptions, handler)
  }
  if (server instanceof http.Server) server.keepAliveTimeout = s.keepAliveTimeout
  ctx.connections.track(server, l.tls && l.http2)
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => ctx.upgradeHandler(req, socket, head))
  server.on('clientError', (err: Error, socket: Duplex) => onClientError(err, socket, ctx.logger))
  server.on('connect', (req: IncomingMessage, socket: Duplex) => onConnect(req, socket, ctx))
  server.on('connection', (socket: Socket) => socket.on('error', noop))
  limitConnections(server as unknown as NetServer, l, ctx.connections.refused, ctx.trust, ctx.logger)
  return server
}

/** Starts a server on `port`/`host`; resolves with the bound address (port 0 becomes the real port). */
export async function listenOn (server: AnyServer, port: number, host: string, scheme: 'http' | 'https', exclusive = false, backlog?: number): Promise<ListeningAddress> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    // exclusive: in a cluster worker, a port of its own instead of the listener the workers share. backlog: how
    // many completed connections wait for accept; beyond it the kernel drops handshakes and clients retry after 1 s.
    server.listen({ port, host, exclusive, ...(backlog === undefined ? {} : { backlog }) }, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const addr = server.address() as AddressInfo
  const shown = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address
  return { host: addr.address, port: addr.port, url: `${scheme}://${shown}:${addr.port}` }
}

/**
 * RFC 9110 §9.3.6: CONNECT asks for a tunnel; a reverse proxy refuses it (never an open proxy). Over HTTP/2 an
 * extended CONNECT for `websocket` (RFC 8441) is a WebSocket handshake instead.
 */
function onConnect (req: IncomingMessage, socket: Duplex, ctx: ListenerContext): void {
  const refusal = new ProxyError('PORTICO_ERR_METHOD_NOT_ALLOWED', 'CONNECT is refused: Portico is not a forward proxy')
  const reqId = nextRequestId()
  if (req.httpVersionMajor >= 2) {
    // HTTP/2 compat passes (request, response).
    const res = socket as unknown as http2.Http2ServerResponse
    if (req.headers[':protocol'] === 'websocket') {
      ctx.h2Upgrade(req, res)
      return
    }
    sendErrorResponse(res as unknown as ServerResponse, refusal, reqId)
  } else {
    socket.on('error', noop)
    socket.end(rawErrorResponse(refusal, reqId))
  }
  ctx.logger.info({ reqId, method: 'CONNECT', path: req.url, status: refusal.status, error: refusal.code, remoteAddr: req.socket.remoteAddress })
}

/** Requests Node's parser rejected: 431 for a head too large, 408 for one too slow, 400 for anything malformed. */
function onClientError (err: Error, socket: Duplex, logger: Logger): void {
  const perr = classifyClientError(err)
  // A connection that already answered and is closing (exchange.ts isEnding) gets nothing more.
  if (perr === null || !socket.writable || isEnding(socket)) {
    socket.destroy()
    return
  }
  const reqId = nextRequestId()
  logger.debug({ reqId, err: err.message, status: perr.status, error: perr.code }, 'malformed request')
  socket.end(rawErrorResponse(perr, reqId))
}

function noop (): void {}
