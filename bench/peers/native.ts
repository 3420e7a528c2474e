/**
 * Config files for the native peers, nginx and HAProxy: each a minimal reverse proxy in the foreground on one
 * core, keeping idle upstream connections open, with logging to its own temp directory. Departures from the
 * packaged defaults, all so that every target does the same work as the Node proxies:
 * - nginx streams request bodies (`proxy_request_buffering off`) instead of spooling 1 MiB uploads to disk, and
 *   does not close client or upstream connections after 1,000 requests (`keepalive_requests`);
 * - both add X-Forwarded-For, as Portico and node-http-proxy (`xfwd`) do.
 * With `tls`, the listener terminates TLS instead and offers h2 and http/1.1 by ALPN, as Portico's does (nginx
 * 1.22: `listen ... ssl http2`; HAProxy: `bind ... ssl crt ... alpn h2,http/1.1`), and both still speak
 * cleartext HTTP/1.1 to the origin. TLS settings are the defaults but for one: nginx 1.22's default
 * `ssl_protocols` lacks TLSv1.3 (added in 1.23.4), so it gets `TLSv1.2 TLSv1.3`, Portico's and HAProxy's range;
 * otherwise it alone would serve TLS 1.2 to the load generators.
 * With `cacheMiB`, nginx also caches (the `nginx-cache` target of the cache scenarios): `proxy_cache` in a
 * `proxy_cache_path` under the instance's directory (`max_size` like Portico's memory store's `maxSize`; a 16 MiB
 * keys zone, about 128,000 keys), freshness from the origin's Cache-Control alone (no `proxy_cache_valid`, so
 * what the origin does not mark is not stored, as with Portico), and `X-Cache-Status: $upstream_cache_status` on
 * every answer so the bench can tell its hits.
 * With `connections` (the most client connections a scenario holds at once), both are sized for it where the
 * defaults here would not do: nginx's `worker_connections` (client and upstream connections together, so twice
 * the client connections) and `worker_rlimit_nofile`, HAProxy's `maxconn` (global and per frontend) and its
 * file-descriptor bound. The defaults (4,096 and 8,192) already fit 1,000 busy connections; only 10,000 idle
 * ones change the configs, and with them what the configs preallocate.
 * Starting the binaries is left to the caller.
 */
import { existsSync } from 'node:fs'
import path from 'node:path'
import type { BenchCert } from '../tls.js'

/** Where Debian installs the binaries. */
export const NGINX_BIN = '/usr/sbin/nginx'
export const HAPROXY_BIN = '/usr/sbin/haproxy'

/** True when the binary is installed. */
export function hasBinary (bin: string): boolean {
  return existsSync(bin)
}

/** Ports and the directory a native peer may write to. */
export interface NativeConfigOptions {
  /** A private temp directory: pid file, error log, body temp paths. */
  dir: string
  port: number
  originPort: number
  /** Terminate TLS with this certificate (h2 and http/1.1 by ALPN); cleartext HTTP/1.1 when absent. */
  tls?: BenchCert
  /** nginx only: cache responses (proxy_cache) in `dir`/cache, at most this many MiB on disk. */
  cacheMiB?: number
  /** The most client connections the scenario holds at once; sizes the connection limits (default 1,000). */
  connections?: number
  /** The hard limit on open files the process inherits: no config asks for more (default: no bound). */
  fileLimit?: number
}

/** nginx's `worker_connections` and HAProxy's `maxconn` unless a scenario needs more. */
const DEFAULT_MAX_CONNECTIONS = 4096
/** nginx's `worker_rlimit_nofile` unless a scenario needs more. */
const DEFAULT_FILE_LIMIT = 8192
/** Connections and files beyond the client connections: upstream, listeners, logs. */
const SPARE = 256

/** The connection and file limits for `connections` clients, each of which may also need an upstream connection. */
export function nativeLimits (connections = 1000, fileLimit = Infinity): { maxConnections: number, files: number } {
  const maxConnections = Math.max(DEFAULT_MAX_CONNECTIONS, 2 * connections + SPARE)
  return { maxConnections, files: Math.max(DEFAULT_FILE_LIMIT, Math.min(fileLimit, maxConnections + SPARE)) }
}

/** An nginx.conf for `nginx -p DIR -c FILE`. */
export function nginxConfig ({ dir, port, originPort, tls, cacheMiB, connections, fileLimit }: NativeConfigOptions): string {
  const p = (name: string): string => path.join(dir, name)
  const limits = nativeLimits(connections, fileLimit)
  const listen = tls === undefined
    ? `listen 127.0.0.1:${port};`
    : `listen 127.0.0.1:${port} ssl http2;
    ssl_certificate ${tls.certFile};
    ssl_certificate_key ${tls.keyFile};
    ssl_protocols TLSv1.2 TLSv1.3;`
  const cachePath = cacheMiB === undefined
    ? ''
    : `\n  proxy_cache_path ${p('cache')} levels=1:2 keys_zone=bench:16m max_size=${cacheMiB}m inactive=60m use_temp_path=off;`
  const cache = cacheMiB === undefined
    ? ''
    : `\n      proxy_cache bench;\n      add_header X-Cache-Status $upstream_cache_status always;`
  return `daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile ${limits.files};
error_log ${p('error.log')} warn;
pid ${p('nginx.pid')};

events {
  worker_connections ${limits.maxConnections};
}

http {
  access_log off;
  client_body_temp_path ${p('client_body')};
  proxy_temp_path ${p('proxy_temp')};
  fastcgi_temp_path ${p('fastcgi_temp')};
  uwsgi_temp_path ${p('uwsgi_temp')};
  scgi_temp_path ${p('scgi_temp')};
  keepalive_requests 1000000;${cachePath}

  upstream origin {
    server 127.0.0.1:${originPort};
    keepalive 64;
    keepalive_requests 1000000;
  }

  server {
    ${listen}
    client_max_body_size 0;

    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_request_buffering off;${cache}
    }
  }
}
`
}

/** An haproxy.cfg for `haproxy -db -f FILE`. */
export function haproxyConfig ({ port, originPort, tls, connections, fileLimit }: NativeConfigOptions): string {
  // maxconn counts client connections; HAProxy wants a file descriptor for as many upstream ones besides, and
  // refuses to start when the limit is below that (strict-limits) unless told not to: idle connections (the
  // only scenario beyond the default) have no upstream connection, so the inherited limit is enough.
  const maxconn = Math.max(DEFAULT_MAX_CONNECTIONS, (connections ?? 0) + SPARE)
  const sized = maxconn !== DEFAULT_MAX_CONNECTIONS
  const lenient = 2 * maxconn + SPARE > (fileLimit ?? Infinity) ? '\n  no strict-limits' : ''
  const bind = tls === undefined ? `127.0.0.1:${port}` : `127.0.0.1:${port} ssl crt ${tls.pemFile} alpn h2,http/1.1`
  return `global
  nbthread 1
  maxconn ${maxconn}${lenient}

defaults
  mode http${sized ? `\n  maxconn ${maxconn}` : ''}
  option forwardfor
  http-reuse always
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 60s

frontend bench
  bind ${bind}
  default_backend origin

backend origin
  server origin 127.0.0.1:${originPort}
`
}
