/**
 * The targets a run can measure, each started fresh as its own process pinned to the measured core and proxying
 * to the shared origin: the origin itself (a second instance, as the baseline), Portico with and without its
 * access log, Portico embedded in an Express 5 app, node-http-proxy, @fastify/http-proxy, nginx and HAProxy. A
 * target whose binary is missing says why and is skipped by the caller. Portico, nginx and HAProxy can also be
 * started with a TLS listener offering h2 and http/1.1 by ALPN, node-http-proxy with an HTTPS (HTTP/1.1) front;
 * every one of them still proxies to the origin over cleartext HTTP/1.1. Two targets exist for the cache
 * scenarios only: Portico with its memory cache (`cache: { maxSize: 8mb }`, and the admin listener, whose
 * `/cache/stats` the bench reads around each window) and nginx with `proxy_cache` (at most 8 MiB on disk).
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort, spawnChild, waitUntilServing, type Child } from './children.js'
import { HAPROXY_BIN, NGINX_BIN, haproxyConfig, hasBinary, nginxConfig } from './peers/native.js'
import { fileLimit } from './proc.js'
import { TLS_HOST, type BenchCert } from './tls.js'

/** Names accepted by `--only`, in the order a run measures them. */
export const TARGET_NAMES = ['origin', 'portico', 'portico-cache', 'portico-log', 'portico-headers', 'portico-gzip', 'portico-workers', 'portico-express', 'http-proxy', 'fastify', 'nginx', 'nginx-cache', 'haproxy'] as const
export type TargetName = typeof TARGET_NAMES[number]

/**
 * Portico with traffic rules on its one route, for the cost of the rules (docs/rules.md): header edits with
 * placeholders and the security preset; compression (gzip of the origin's 1 KiB). And `portico-workers`: `--workers
 * 2`, not pinned (its primary and two workers may use both cores, which the origin and the load generator share).
 * Measured in GET 1 KiB only.
 */
export const RULES_TARGETS: readonly TargetName[] = ['portico-headers', 'portico-gzip', 'portico-workers']

/** The targets that cache; they are measured in the cache scenarios only. */
export const CACHING_TARGETS: readonly TargetName[] = ['portico-cache', 'nginx-cache']

/** The cache scenarios' contenders: the origin served directly, Portico and nginx forwarding, and both caching. */
export const CACHE_CONTENDERS: readonly TargetName[] = ['origin', 'portico', 'portico-cache', 'nginx', 'nginx-cache']

/**
 * What the caching targets may hold: Portico's `cache.maxSize`, nginx's `proxy_cache_path max_size`. Small enough
 * that the miss-heavy mix fills it within a `--quick` warm-up and window (about 1.2 KiB per stored 1 KiB object),
 * so the window measures a full cache evicting, and what bounds its memory.
 */
export const CACHE_MAX_MIB = 8

/** Where one instance of a target runs. */
export interface StartContext {
  /** A fresh directory for this instance's config and logs. */
  dir: string
  originPort: number
  /** The core to pin it to. */
  core: number
  /** Listen with TLS, serving this certificate (only for targets whose `tls` is not null). */
  tls?: BenchCert
  /** The most client connections the scenario holds at once; nginx and HAProxy size their limits to it. */
  connections?: number
}

/** A started, serving instance. */
export interface RunningTarget {
  child: Child
  port: number
  /** Portico's admin listener (GET /cache/stats), for `portico-cache`. */
  adminPort?: number
}

/** A target of the benchmark. */
export interface Target {
  name: TargetName
  /**
   * What it serves when started with `tls`: 'h2' is HTTP/2 and HTTP/1.1 by ALPN, 'http1' HTTP/1.1 only, null
   * means the bench gives it no TLS listener.
   */
  tls: 'h2' | 'http1' | null
  /** Why it cannot run on this machine, or null. */
  unavailable (): string | null
  /** Starts an instance and resolves once it answers HTTP. */
  start (ctx: StartContext): Promise<RunningTarget>
}

/** The repository root (this file is dist/bench/targets.js). */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const DIST_BENCH = fileURLToPath(new URL('.', import.meta.url))

/** The path of a compiled bench script, e.g. `script('origin.js')`. */
export function script (name: string): string {
  return path.join(DIST_BENCH, name)
}

async function startProcess (name: string, ctx: StartContext, cmd: string, args: (port: number) => string[], stdoutToNull = false): Promise<RunningTarget> {
  const port = await freePort()
  // Several workers on one pinned core would measure nothing but the cluster's overhead.
  const core = name === 'portico-workers' ? undefined : ctx.core
  const child = spawnChild(name, cmd, args(port), { core, logFile: path.join(ctx.dir, `${name}.log`), stdoutToNull, cwd: ROOT })
  await waitUntilServing(child, port, ctx.tls !== undefined)
  return { child, port }
}

/** Portico's cache settings and admin listener, for `portico-cache`. */
interface PorticoCache {
  adminPort: number
}

/** The rules of the RULES_TARGETS, as route keys. */
const RULES: Record<string, string> = {
  'portico-headers': `
    headers:
      request: { set: { x-client: "{client.ip}", x-request-id: "{request.id}" }, remove: [cookie] }
      response: { set: { x-served-by: portico }, remove: [x-powered-by] }
    securityHeaders: true`,
  'portico-gzip': `
    compress: { encodings: [gzip], types: [application/octet-stream] }`
}

function porticoConfig (port: number, originPort: number, accessLog: boolean, tls: BenchCert | undefined, cache?: PorticoCache, rules = ''): string {
  // A TLS listener offers h2 and http/1.1 by ALPN (docs/config.md, "TLS termination").
  const listen = tls === undefined
    ? `listen: [{ host: 127.0.0.1, port: ${port} }]`
    : `listen: [{ host: 127.0.0.1, port: ${port}, tls: true }]
tls:
  certificates: [{ hosts: [${JSON.stringify(TLS_HOST)}], cert: ${JSON.stringify(tls.certFile)}, key: ${JSON.stringify(tls.keyFile)} }]`
  return `${listen}
routes:
  - host: "*"
    upstream: ["http://127.0.0.1:${originPort}"]${rules}
log: { access: ${accessLog} }
headers: { via: false }
${cache === undefined ? '' : `cache: { maxSize: "${CACHE_MAX_MIB}mb" }
admin: { host: 127.0.0.1, port: ${cache.adminPort} }
`}`
}

function portico (name: 'portico' | 'portico-log' | 'portico-headers' | 'portico-gzip' | 'portico-workers', accessLog: boolean): Target {
  return {
    name,
    tls: name === 'portico' ? 'h2' : null,
    unavailable: () => null,
    start: (ctx) => startProcess(name, ctx, process.execPath, (port) => {
      const file = path.join(ctx.dir, 'portico.yaml')
      writeFileSync(file, porticoConfig(port, ctx.originPort, accessLog, ctx.tls, undefined, RULES[name] ?? ''))
      return [path.join(ROOT, 'bin/portico.js'), '--config', file, ...(name === 'portico-workers' ? ['--workers', '2'] : [])]
    }, accessLog)
  }
}

/** Portico with its memory cache on every route, and the admin listener the bench reads cache statistics from. */
function porticoCache (): Target {
  return {
    name: 'portico-cache',
    tls: null,
    unavailable: () => null,
    start: async (ctx) => {
      const adminPort = await freePort()
      const running = await startProcess('portico-cache', ctx, process.execPath, (port) => {
        const file = path.join(ctx.dir, 'portico.yaml')
        writeFileSync(file, porticoConfig(port, ctx.originPort, false, undefined, { adminPort }))
        return [path.join(ROOT, 'bin/portico.js'), '--config', file]
      })
      return { ...running, adminPort }
    }
  }
}

function nginx (name: 'nginx' | 'nginx-cache'): Target {
  return {
    name,
    tls: name === 'nginx' ? 'h2' : null,
    unavailable: () => hasBinary(NGINX_BIN) ? null : `${NGINX_BIN} not found`,
    start: (ctx) => startProcess(name, ctx, NGINX_BIN, (port) => {
      for (const d of ['client_body', 'proxy_temp', 'fastcgi_temp', 'uwsgi_temp', 'scgi_temp']) mkdirSync(path.join(ctx.dir, d))
      const file = path.join(ctx.dir, 'nginx.conf')
      const cacheMiB = name === 'nginx-cache' ? CACHE_MAX_MIB : undefined
      writeFileSync(file, nginxConfig({ dir: ctx.dir, port, originPort: ctx.originPort, tls: ctx.tls, cacheMiB, connections: ctx.connections, fileLimit: fileLimit().hard }))
      return ['-p', ctx.dir, '-c', file, '-e', path.join(ctx.dir, 'error.log')]
    })
  }
}

function nodePeer (name: TargetName, file: string, tls: 'http1' | null = null): Target {
  return {
    name,
    tls,
    unavailable: () => null,
    start: (ctx) => startProcess(name, ctx, process.execPath, (port) => [script(file), String(port), `http://127.0.0.1:${ctx.originPort}`,
      ...(ctx.tls === undefined ? [] : ['--tls', ctx.tls.certFile, ctx.tls.keyFile])])
  }
}

/** Every target, in `TARGET_NAMES` order. */
export const TARGETS: readonly Target[] = [
  {
    name: 'origin',
    tls: null,
    unavailable: () => null,
    start: (ctx) => startProcess('origin', ctx, process.execPath, (port) => [script('origin.js'), String(port)])
  },
  portico('portico', false),
  porticoCache(),
  portico('portico-log', true),
  portico('portico-headers', false),
  portico('portico-gzip', false),
  portico('portico-workers', false),
  nodePeer('portico-express', 'peers/portico-express.js'),
  nodePeer('http-proxy', 'peers/http-proxy.js', 'http1'),
  nodePeer('fastify', 'peers/fastify.js'),
  nginx('nginx'),
  nginx('nginx-cache'),
  {
    name: 'haproxy',
    tls: 'h2',
    unavailable: () => hasBinary(HAPROXY_BIN) ? null : `${HAPROXY_BIN} not found`,
    start: (ctx) => startProcess('haproxy', ctx, HAPROXY_BIN, (port) => {
      const file = path.join(ctx.dir, 'haproxy.cfg')
      writeFileSync(file, haproxyConfig({ dir: ctx.dir, port, originPort: ctx.originPort, tls: ctx.tls, connections: ctx.connections, fileLimit: fileLimit().hard }))
      return ['-db', '-f', file]
    })
  }
]
