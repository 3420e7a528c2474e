/**
 * Config files for the native peers, nginx and HAProxy: each a minimal reverse proxy in the foreground on one
 * core, keeping idle upstream connections open, with logging to its own temp directory. Departures from the
 * packaged defaults, all so that every target does the same work as the Node proxies:
 * - nginx streams request bodies (`proxy_request_buffering off`) instead of spooling 1 MiB uploads to disk, and
 *   does not close client or upstream connections after 1,000 requests (`keepalive_requests`);
 * - both add X-Forwarded-For, as Portico and node-http-proxy (`xfwd`) do.
 * Starting the binaries is left to the caller.
 */
import { existsSync } from 'node:fs'
import path from 'node:path'

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
}

/** An nginx.conf for `nginx -p DIR -c FILE`. */
export function nginxConfig ({ dir, port, originPort }: NativeConfigOptions): string {
  const p = (name: string): string => path.join(dir, name)
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
  keepalive_requests 1000000;

  upstream origin {
    server 127.0.0.1:${originPort};
    keepalive 64;
    keepalive_requests 1000000;
  }

  server {
    listen 127.0.0.1:${port};
    client_max_body_size 0;

    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_request_buffering off;
    }
  }
}
`
}

/** An haproxy.cfg for `haproxy -db -f FILE`. */
export function haproxyConfig ({ port, originPort }: NativeConfigOptions): string {
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
  bind 127.0.0.1:${port}
  default_backend origin

backend origin
  server origin 127.0.0.1:${originPort}
`
}
