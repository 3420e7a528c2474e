/**
 * The Fastify adapter: a Fastify 5 plugin that mounts Portico under the plugin's prefix. It owns the Fastify
 * side only: claiming the routes, keeping Fastify's body parsers off the stream, moving the prefix from `url` to
 * `originalUrl` (so the core sends X-Forwarded-Prefix), and bringing WebSocket handshakes through Fastify's
 * router. Forwarding, headers, errors and logs are the core's.
 *
 * The plugin is encapsulated (no `skip-override`): its catch-all content-type parser and its routes stay in its
 * own context, so the app's JSON parser still parses the app's own routes.
 */
import { ServerResponse, type IncomingMessage, type Server } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify'
import { ConfigError, loadConfigObjectSync } from '../config/load.js'
import { oneRouteConfig, type OneRouteOptions } from '../config/one-route.js'
import type { Logger } from '../observability/logger.js'
import { Proxy } from '../proxy.js'
import { isUnder, mountRequest, segmentsOf, type MountedRequest } from '../routing/mount.js'

/** One route to one upstream, as `proxy()` takes it: a route's options plus a logger. */
export type PorticoFastifyRouteOptions = OneRouteOptions & { logger?: Logger }

/** A full Proxy (host and path routing) to mount; requests it does not route fall through to Fastify's 404. */
export interface PorticoFastifyProxyOptions {
  proxy: Proxy
}

/**
 * Options of `porticoFastify`. The mount path is Fastify's own register option `prefix`.
 * `websocket` (default true) brings WebSocket handshakes under the prefix through Fastify's router to the proxy.
 */
export type PorticoFastifyOptions = (PorticoFastifyRouteOptions | PorticoFastifyProxyOptions) & { websocket?: boolean }

/** Fastify's register options, which reach the plugin in its options object and are not Portico's. */
interface RegisterOptions {
  prefix?: string
  logLevel?: string
  logSerializers?: unknown
}

/** The socket and head of handshakes routed through Fastify by this module, keyed by their request. */
const handshakes = new WeakMap<IncomingMessage, { socket: Duplex, head: Buffer }>()

/** Per-server upgrade listener shared by every registration of the plugin on that server. */
const UPGRADE_STATE = Symbol.for('portico.fastify.upgrade')

interface UpgradeState {
  /** The prefixes of the registrations that take WebSockets, as segment lists. */
  mounts: Set<string[]>
  listener: (req: IncomingMessage, socket: Duplex, head: Buffer) => void
}

/**
 * The Fastify plugin. `app.register(porticoFastify, { prefix: '/api', upstream: ['http://127.0.0.1:4000'] })`
 * forwards everything under /api (as `/…`, with `X-Forwarded-Prefix: /api`), creating a Proxy that is closed
 * with the app. `app.register(porticoFastify, { proxy })` mounts an existing Proxy (the caller closes it);
 * requests it routes nowhere go to Fastify's not-found handler.
 *
 * Routes are claimed for every method Fastify supports at registration (`fastify.supportedMethods`), on the
 * prefix and below; the app's more specific routes win, as in any Fastify router. Bodies are not parsed: the
 * stream reaches the node untouched. App hooks (onRequest, preHandler, ...) run before forwarding; the reply is
 * then hijacked, so onSend/onResponse hooks and `reply.header()` values do not apply to proxied responses.
 * Fastify itself answers before the proxy in two cases: an invalid Content-Type (415) and QUERY without one (400).
 *
 * Throws ConfigError (PORTICO_ERR_CONFIG_INVALID) for invalid route options, or an HTTP/2 Fastify server.
 */
export const porticoFastify: FastifyPluginCallback<PorticoFastifyOptions> = (fastify, options, done) => {
  let proxy: Proxy
  let owned = false
  try {
    if ((fastify.initialConfig as { http2?: boolean }).http2 === true) {
      throw new ConfigError([{ path: ['http2'], message: 'the Fastify adapter serves HTTP/1.1 Fastify servers only' }])
    }
    if ('proxy' in options && options.proxy !== undefined) {
      proxy = options.proxy
    } else {
      proxy = createRouteProxy(options as PorticoFastifyRouteOptions & RegisterOptions & { websocket?: boolean })
      owned = true
    }
  } catch (err) {
    done(err as Error)
    return
  }

  // Leave the body stream to the proxy: no parser for any type in this context (and only in this one).
  fastify.removeAllContentTypeParsers()
  fastify.addContentTypeParser('*', (_request, _payload, parsed) => parsed(null))

  const segments = segmentsOf(fastify.prefix)
  const handler = (request: FastifyRequest, reply: FastifyReply): void => forward(proxy, segments, request, reply)
  fastify.all('/', handler)
  fastify.all('/*', handler)

  if (options.websocket !== false) {
    const server = fastify.server as Server & { [UPGRADE_STATE]?: UpgradeState }
    addUpgradeMount(server, segments, fastify.routing)
    fastify.addHook('onClose', (_instance, closed) => {
      removeUpgradeMount(server, segments)
      closed()
    })
  }
  if (owned) fastify.addHook('onClose', async () => { await proxy.close() })
  done()
}

Object.assign(porticoFastify, {
  [Symbol.for('fastify.display-name')]: 'portico',
  [Symbol.for('plugin-meta')]: { name: 'portico', fastify: '5.x' }
})

/** Builds the one-route Proxy, as `proxy()` does: host "*", path "/". */
function createRouteProxy (options: PorticoFastifyRouteOptions & RegisterOptions & { websocket?: boolean }): Proxy {
  const { prefix: _prefix, logLevel: _logLevel, logSerializers: _logSerializers, websocket: _websocket, logger, ...route } = options
  return new Proxy(loadConfigObjectSync(oneRouteConfig(route)), { logger })
}

/**
 * The route handler: strips the prefix, hands the raw request and response to the proxy and hijacks the reply.
 * A request the proxy does not route is restored and given to Fastify's not-found handler.
 */
function forward (proxy: Proxy, segments: readonly string[], request: FastifyRequest, reply: FastifyReply): void {
  const req = request.raw as MountedRequest
  const url = req.url ?? '/'
  const original = req.originalUrl
  // An outer framework's originalUrl already holds the full target: the core then sends the combined prefix.
  mountRequest(req, segments)
  let fellThrough = false
  let claimed = false
  const next = (): void => {
    req.url = url
    if (original === undefined) delete req.originalUrl
    if (!claimed) {
      fellThrough = true
      reply.callNotFound()
      return
    }
    // Routing is synchronous, so this is not reached today; if it were, the hijacked reply is ours to answer.
    if (!reply.raw.headersSent) reply.raw.writeHead(404, { 'content-length': '0' })
    reply.raw.end()
  }
  const handshake = handshakes.get(req)
  if (handshake !== undefined) {
    handshakes.delete(req)
    proxy.upgradeHandler(req, handshake.socket, handshake.head, next)
  } else {
    proxy.handler(req, reply.raw, next)
  }
  if (!fellThrough) {
    claimed = true
    reply.hijack()
  }
}

/**
 * Registers a prefix for WebSocket handshakes on the server, adding the shared 'upgrade' listener on first use.
 * The listener sends a handshake through Fastify's router (hooks included) when it is under one of the prefixes,
 * or when no other 'upgrade' listener exists (so the app's routes still answer it, as they would with none).
 */
function addUpgradeMount (server: Server & { [UPGRADE_STATE]?: UpgradeState }, segments: string[], routing: (req: IncomingMessage, res: ServerResponse) => void): void {
  let state = server[UPGRADE_STATE]
  if (state === undefined) {
    const mounts = new Set<string[]>()
    const listener = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
      if (server.listenerCount('upgrade') > 1 && ![...mounts].some((m) => isUnder(req.url ?? '/', m))) return
      socket.on('error', noop)
      handshakes.set(req, { socket, head })
      // A response on the handshake's socket, for Fastify's own answers (404, a hook's 401, ...).
      const res = new ServerResponse(req)
      res.assignSocket(socket as Socket)
      res.on('finish', () => (socket as Socket).destroySoon())
      routing(req, res)
    }
    state = { mounts, listener }
    server[UPGRADE_STATE] = state
    server.on('upgrade', listener)
  }
  state.mounts.add(segments)
}

function removeUpgradeMount (server: Server & { [UPGRADE_STATE]?: UpgradeState }, segments: string[]): void {
  const state = server[UPGRADE_STATE]
  if (state === undefined) return
  state.mounts.delete(segments)
  if (state.mounts.size === 0) {
    server.off('upgrade', state.listener)
    delete server[UPGRADE_STATE]
  }
}

function noop (): void {}

