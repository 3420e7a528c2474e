/**
 * Framework adapters: a Fastify plugin and a fetch-style handler (Hono, and anything taking
 * `(Request) => Response`). Express and Connect need none: `proxy.handler` is their middleware already.
 * Fastify is a peer of the app, never a dependency: only its types are imported.
 */
export { porticoFastify, type PorticoFastifyOptions, type PorticoFastifyRouteOptions, type PorticoFastifyProxyOptions } from './fastify.js'
export { toFetchHandler, type FetchHandlerOptions, type PorticoFetchHandler } from './fetch.js'
