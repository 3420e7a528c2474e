/**
 * Portico's public API: `createProxy` for embedding, the config loaders the CLI uses, and the types.
 */
import { loadConfigObjectSync } from './config/load.js'
import type { PorticoConfig } from './config/schema.js'
import { Proxy, type ProxyOptions } from './proxy.js'

export { Proxy, type ProxyOptions, type ListeningAddress, type RouteTableEntry } from './proxy.js'
export { defineConfig, type PorticoConfig, type RouteConfig, type UpstreamConfig } from './config/schema.js'
export { loadConfigFile, loadConfigObject, loadConfigText, ConfigError, formatIssue, type LocatedIssue } from './config/load.js'
export type { ResolvedConfig, ResolvedRoute, FetchHandler } from './config/resolve.js'
export { ProxyError, ERRORS, type ErrorCode, type ErrorSource } from './errors.js'
export type { Upstream, UpstreamRequest, ResponseHandler, DispatchOptions } from './upstream/types.js'
export { createLogger, type Logger } from './observability/logger.js'

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
