/**
 * Portico's public API: `createProxy` for embedding, the config loaders the CLI uses, and the types.
 */
import { loadConfigObjectSync } from './config/load.js'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import type { PorticoConfig } from './config/schema.js'
import { oneRouteConfig, type OneRouteOptions } from './config/one-route.js'
import { mountRequest, segmentsOf } from './routing/mount.js'
import type { Logger } from './observability/logger.js'
import { Proxy, type ProxyOptions } from './proxy.js'

export { Proxy, type ProxyOptions, type ProxyEvents, type HealthEvent, type PoolSnapshot, type ListeningAddress, type RouteTableEntry } from './proxy.js'
export { defineConfig, type PorticoConfig, type RouteConfig, type UpstreamConfig } from './config/schema.js'
export { loadConfigFile, loadConfigObject, loadConfigText, ConfigError, formatIssue, type LocatedIssue } from './config/load.js'
export type { ResolvedConfig, ResolvedRoute } from './config/resolved.js'
export { ProxyError, ERRORS, type ErrorCode, type ErrorSource, type RetryCondition } from './errors.js'
export type { Upstream, UpstreamRequest, ResponseHandler, DispatchOptions, FetchHandler } from './upstream/types.js'
export { createLogger, type Logger } from './observability/logger.js'
export type { AccessRecord } from './observability/access-log.js'
export { porticoFastify, toFetchHandler, type PorticoFastifyOptions, type PorticoFastifyRouteOptions, type PorticoFastifyProxyOptions, type FetchHandlerOptions, type PorticoFetchHandler } from './adapters/index.js'
export { HeaderList, type ProxyHooks, type HookContext, type HookAnswer, type UpstreamRequestHead, type UpstreamResponseHead } from './hooks.js'

/**
 * Creates a proxy from an options object (the same shape as the config file, validated by the same schema).
 * Handlers must be given as functions; to load handler modules by path use `loadConfigObject` and `new Proxy`.
 * Nothing listens until `listen()`; `proxy.handler` can be mounted in an existing server instead.
 * Throws ConfigError (PORTICO_ERR_CONFIG_INVALID) listing every problem.
 */
export function createProxy (options: PorticoConfig, extras: ProxyOptions & { baseDir?: string } = {}): Proxy {
  const config = loadConfigObjectSync(options, { baseDir: extras.baseDir })
  return new Proxy(config, extras)
}

/** Options of the one-route shorthand: a route's options without host and path, plus a logger and a mount. */
export type ProxyMiddlewareOptions = OneRouteOptions & {
  /** A logger for access lines and errors (default: none). */
  logger?: Logger
  /**
   * The path this middleware is mounted at, for upgrades only: `server.on('upgrade', mw.upgrade)` sees full URLs,
   * so the handshake for `/google/ws` is routed when `mount` is "/google" and forwarded as `/ws`.
   */
  mount?: string
}

/** Middleware returned by `proxy()`: `(req, res, next)` plus `upgrade` for `server.on('upgrade', ...)`. */
export interface ProxyMiddleware {
  (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void): void
  /** Upgrade handler; handshakes outside `mount` go to `next` when given, else are left untouched. */
  upgrade (req: IncomingMessage, socket: Duplex, head: Buffer, next?: (err?: unknown) => void): void
  /** The underlying Proxy (close it with the app). */
  readonly proxy: Proxy
}

/**
 * The one-route shorthand for frameworks: `app.use('/google', proxy({ upstream: ['https://www.google.com'] }))`.
 * Every request that reaches it is forwarded; the mount prefix is removed the way the framework removes it
 * (Express/Connect: `req.url` without it) and sent upstream as `X-Forwarded-Prefix`.
 */
export function proxy (options: ProxyMiddlewareOptions): ProxyMiddleware {
  const { logger, mount, ...route } = options
  const p = createProxy(oneRouteConfig(route), { logger })
  const prefix = segmentsOf(mount ?? '')
  const mw = ((req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void) => p.handler(req, res, next)) as ProxyMiddleware
  mw.upgrade = (req, socket, head, next) => {
    if (!mountRequest(req, prefix)) {
      next?.()
      return
    }
    p.upgradeHandler(req, socket, head)
  }
  Object.defineProperty(mw, 'proxy', { value: p })
  return mw
}
