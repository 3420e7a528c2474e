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
}

/** An nginx.conf for `nginx -p DIR -c FILE`. */
export function nginxConfig ({ dir, port, originPort, tls, cacheMiB }: NativeConfigOptions): string {
  const p = (name: string): string => path.join(dir, name)
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
worker_rlimit_nofile 8192;
error_log ${p('error.log')} warn;
pid ${p('nginx.pid')};

events {
  worker_connections 4096;
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
export function haproxyConfig ({ port, originPort, tls }: NativeConfigOptions): string {
  const bind = tls === undefined ? `127.0.0.1:${port}` : `127.0.0.1:${port} ssl crt ${tls.pemFile} alpn h2,http/1.1`
  return `global
  nbthread 1
  maxconn 4096

defaults
  mode http
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
