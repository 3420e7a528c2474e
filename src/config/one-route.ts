/**
 * The one-route shorthand: a single route's options (where to forward, timeouts, headers, hooks...) without a host
 * or path, as `proxy()` and the Fastify plugin take them. Everything that reaches such a proxy is forwarded; the
 * framework decides what reaches it.
 */
import type { PorticoConfig, RouteConfig } from './schema.js'

/** A route's options without host and path, plus the top-level settings that make sense for one route. */
export type OneRouteOptions = Omit<RouteConfig, 'host' | 'path'> & Pick<PorticoConfig, 'timeouts' | 'headers' | 'limits' | 'log' | 'hooks'>

/** The full config for one route: every host, path "/". */
export function oneRouteConfig (options: OneRouteOptions): PorticoConfig {
  const { timeouts, headers, limits, log, hooks, ...route } = options
  // A framework mount strips its prefix (app.use('/google', ...)): redirects and cookies are mapped back to it,
  // as nginx's proxy_redirect default does (docs/rules.md).
  const mapped = { rewriteRedirects: true, rewriteCookies: true, ...route }
  return { routes: [{ ...mapped, host: '*', path: '/' }], timeouts, headers, limits, log, hooks }
}
