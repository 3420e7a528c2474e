/**
 * The targets a run can measure, each started fresh as its own process pinned to the measured core and proxying
 * to the shared origin: the origin itself (a second instance, as the baseline), Portico with and without its
 * access log, Portico embedded in an Express 5 app, node-http-proxy, @fastify/http-proxy, nginx and HAProxy. A
 * target whose binary is missing says why and is skipped by the caller.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort, spawnChild, waitUntilServing, type Child } from './children.js'
import { HAPROXY_BIN, NGINX_BIN, haproxyConfig, hasBinary, nginxConfig } from './peers/native.js'

/** Names accepted by `--only`, in the order a run measures them. */
export const TARGET_NAMES = ['origin', 'portico', 'portico-log', 'portico-express', 'http-proxy', 'fastify', 'nginx', 'haproxy'] as const
export type TargetName = typeof TARGET_NAMES[number]

/** Where one instance of a target runs. */
export interface StartContext {
  /** A fresh directory for this instance's config and logs. */
  dir: string
  originPort: number
  /** The core to pin it to. */
  core: number
}

/** A started, serving instance. */
export interface RunningTarget {
  child: Child
  port: number
}

/** A target of the benchmark. */
export interface Target {
  name: TargetName
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
  const child = spawnChild(name, cmd, args(port), { core: ctx.core, logFile: path.join(ctx.dir, `${name}.log`), stdoutToNull, cwd: ROOT })
  await waitUntilServing(child, port)
  return { child, port }
}

function porticoConfig (port: number, originPort: number, accessLog: boolean): string {
  return `listen: [{ host: 127.0.0.1, port: ${port} }]
routes:
  - host: "*"
    upstream: ["http://127.0.0.1:${originPort}"]
log: { access: ${accessLog} }
headers: { via: false }
`
}

function portico (name: 'portico' | 'portico-log', accessLog: boolean): Target {
  return {
    name,
    unavailable: () => null,
    start: (ctx) => startProcess(name, ctx, process.execPath, (port) => {
      const file = path.join(ctx.dir, 'portico.yaml')
      writeFileSync(file, porticoConfig(port, ctx.originPort, accessLog))
      return [path.join(ROOT, 'bin/portico.js'), '--config', file]
    }, accessLog)
  }
}

function nodePeer (name: TargetName, file: string): Target {
  return {
    name,
    unavailable: () => null,
    start: (ctx) => startProcess(name, ctx, process.execPath, (port) => [script(file), String(port), `http://127.0.0.1:${ctx.originPort}`])
  }
}

/** Every target, in `TARGET_NAMES` order. */
export const TARGETS: readonly Target[] = [
  {
    name: 'origin',
    unavailable: () => null,
    start: (ctx) => startProcess('origin', ctx, process.execPath, (port) => [script('origin.js'), String(port)])
  },
  portico('portico', false),
  portico('portico-log', true),
  nodePeer('portico-express', 'peers/portico-express.js'),
  nodePeer('http-proxy', 'peers/http-proxy.js'),
  nodePeer('fastify', 'peers/fastify.js'),
  {
    name: 'nginx',
    unavailable: () => hasBinary(NGINX_BIN) ? null : `${NGINX_BIN} not found`,
    start: (ctx) => startProcess('nginx', ctx, NGINX_BIN, (port) => {
      for (const d of ['client_body', 'proxy_temp', 'fastcgi_temp', 'uwsgi_temp', 'scgi_temp']) mkdirSync(path.join(ctx.dir, d))
      const file = path.join(ctx.dir, 'nginx.conf')
      writeFileSync(file, nginxConfig({ dir: ctx.dir, port, originPort: ctx.originPort }))
      return ['-p', ctx.dir, '-c', file, '-e', path.join(ctx.dir, 'error.log')]
    })
  },
  {
    name: 'haproxy',
    unavailable: () => hasBinary(HAPROXY_BIN) ? null : `${HAPROXY_BIN} not found`,
    start: (ctx) => startProcess('haproxy', ctx, HAPROXY_BIN, (port) => {
      const file = path.join(ctx.dir, 'haproxy.cfg')
      writeFileSync(file, haproxyConfig({ dir: ctx.dir, port, originPort: ctx.originPort }))
      return ['-db', '-f', file]
    })
  }
]
