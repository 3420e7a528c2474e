/**
 * Every default value of the config, in one table keyed by the key path docs/config.md uses for it. The meaning
 * pass (resolve.ts) applies these and nothing else; the schema only describes shapes; docs/config.md shows each one
 * in its "default" column, and a test (test/unit/docs.test.ts) fails when a row and this table disagree.
 *
 * Durations are milliseconds and sizes bytes, written through the same parsers the config file goes through, so
 * the text here reads like the documentation.
 */
import { parseDuration, parseSize } from './units.js'

function ms (text: string): number {
  const v = parseDuration(text)
  if (v === undefined) throw new TypeError(`not a duration: ${text}`)
  return v
}

function bytes (text: string): number {
  const v = parseSize(text)
  if (v === undefined) throw new TypeError(`not a size: ${text}`)
  return v
}

/** The defaults, by documented key path. Route-level keys (`routes.…`) apply to the short form `upstreams:` too. */
export const DEFAULTS = {
  /** The listeners when the config has none. */
  'listen': [{ port: 8080 }],
  'listen.host': '0.0.0.0',
  'listen.tls': false,
  /** As Go servers (Caddy, Traefik) do: the kernel's cap (net.core.somaxconn, 4096 since Linux 5.4), not Node's 511. */
  'listen.backlog': 4096,
  'trustedProxies': [] as string[],
  'watch': true,
  'workers': 1 as number | 'auto',
  'paths.normalize': 'route-only',
  'paths.rejectEncodedSlash': false,
  'paths.mergeSlashes': true,
  'routes.host': '*',
  'routes.path': '/',
  'routes.stripPrefix': false,
  'routes.preserveHost': true,
  'routes.hsts.maxAge': ms('365d'),
  'routes.hsts.includeSubDomains': false,
  'routes.hsts.preload': false,
  'routes.upstream.policy': 'round-robin',
  'routes.upstream.nodes.weight': 1,
  'routes.upstream.failTimeout': ms('10s'),
  'routes.upstream.sticky.secure': 'auto',
  'routes.upstream.sticky.httpOnly': true,
  'routes.upstream.sticky.sameSite': 'Lax',
  'routes.upstream.sticky.path': '/',
  'routes.upstream.healthCheck.interval': ms('5s'),
  'routes.upstream.healthCheck.timeout': ms('2s'),
  'routes.upstream.healthCheck.unhealthyAfter': 3,
  'routes.upstream.healthCheck.healthyAfter': 2,
  'routes.upstream.healthCheck.expectStatus': '200-399',
  'routes.upstream.outlier.consecutiveFailures': 5,
  'routes.upstream.outlier.statuses': [] as number[],
  'routes.upstream.outlier.baseEjectionTime': ms('30s'),
  'routes.upstream.outlier.maxEjectionTime': ms('300s'),
  'routes.upstream.outlier.maxEjectedPercent': 50,
  'routes.upstream.retry.attempts': 3,
  'routes.upstream.retry.on': ['connect-failure', 'reset'] as (string | number)[],
  'routes.upstream.retry.backoff': ms('25ms'),
  'routes.upstream.retry.maxBackoff': ms('250ms'),
  'routes.upstream.retry.budget': 20,
  'routes.upstream.retry.bufferBody': bytes('64kb'),
  'routes.upstream.queue.size': 100,
  'routes.upstream.queue.timeout': ms('5s'),
  'routes.upstream.slowStart': 0,
  'routes.upstream.panicThreshold': 0,
  'routes.upstream.dnsRefresh': ms('30s'),
  'routes.upstream.maxConnections': 256,
  'routes.upstream.keepAlive': ms('4s'),
  'routes.upstream.http2': false,
  'routes.upstream.tls.insecureSkipVerify': false,
  'routes.redirect.status': 308,
  'routes.securityHeaders.hsts': 'max-age=31536000',
  'routes.securityHeaders.contentTypeOptions': 'nosniff',
  'routes.securityHeaders.referrerPolicy': 'strict-origin-when-cross-origin',
  'routes.securityHeaders.frameOptions': 'SAMEORIGIN',
  'routes.cors.methods': ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
  'routes.cors.headers': ['*'],
  'routes.cors.credentials': false,
  'routes.compress.encodings': ['zstd', 'br', 'gzip'] as ('zstd' | 'br' | 'gzip' | 'deflate')[],
  'routes.compress.minSize': bytes('1kb'),
  'routes.compress.types': ['text/*', 'application/json', 'application/*+json', 'application/javascript', 'application/xml', 'application/*+xml', 'application/wasm', 'image/svg+xml'],
  'routes.basicAuth.realm': 'Restricted',
  'routes.forwardAuth.timeout': ms('5s'),
  'routes.rateLimit.key': 'client-ip',
  'routes.rateLimit.burst': 0,
  'routes.rateLimit.store': 'memory',
  'routes.rateLimit.redis.prefix': 'portico:ratelimit:',
  'tls.minVersion': 'TLSv1.2',
  'tls.watch': true,
  'tls.acme.directory': 'letsencrypt',
  'tls.acme.challenges': ['http-01'],
  'tls.acme.storage.dir': './portico-data',
  'tls.acme.storage.redis.prefix': 'portico:acme:',
  'tls.acme.renewBefore': ms('30d'),
  'tls.acme.pending': 'default',
  'tls.acme.onDemand.rateLimit': '10/m',
  'tls.acme.onDemand.maxConcurrent': 4,
  'cache': false,
  'cache.store': 'memory',
  'cache.maxSize': bytes('256mb'),
  'cache.maxObjectSize': bytes('8mb'),
  'cache.heuristicFraction': 0.1,
  'cache.retainStale': ms('1h'),
  'cache.collapseTimeout': ms('10s'),
  'cache.targetedFields': ['CDN-Cache-Control', 'Surrogate-Control'],
  'cache.name': 'Portico',
  'cache.redis.prefix': 'portico:',
  'cache.redis.chunkSize': bytes('64kb'),
  'cache.redis.commandTimeout': ms('1s'),
  'admin.host': '127.0.0.1',
  'admin.metrics': true,
  'timeouts.connect': ms('5s'),
  'timeouts.response': ms('60s'),
  'timeouts.idle': ms('60s'),
  'headers.xForwarded': true,
  'headers.forwarded': false,
  'headers.via': 'portico',
  'server.drainTimeout': ms('10s'),
  'server.keepAliveTimeout': ms('5s'),
  'server.headersTimeout': ms('30s'),
  'server.requestTimeout': ms('300s'),
  'server.bodyTimeout': ms('60s'),
  'server.maxHeaderSize': bytes('16kb'),
  'log.level': 'info',
  'log.access': true,
  'log.format': 'json',
  'tracing.start': true,
  'tracing.sampled': true
} as const
