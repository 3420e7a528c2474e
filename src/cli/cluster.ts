/**
 * Every core (`--workers N`, `workers:`): the primary process forks N workers with node:cluster, which share the
 * listeners (the kernel's accept queue, handed out round-robin by the primary); the primary serves no request.
 *
 * - The primary serves the admin API: `/metrics` aggregated over the workers (prom-client's cluster registry),
 *   `/healthz`, `POST /config/reload` (the config is validated here, then every worker reloads), `GET /workers`,
 *   `POST /workers/restart` (a rolling restart); every other admin request is answered by a worker's own admin
 *   listener (loopback, a port of its own).
 * - SIGTERM/SIGINT drain every worker (each finishes its requests within drainTimeout), then the primary exits.
 *   SIGHUP reaches every worker (certificates and config). SIGUSR2 (or `portico restart`) replaces the workers one
 *   at a time: a new one is serving before an old one drains, so no request fails.
 * - A worker that exits unasked is replaced after a backoff (0.5 s doubling to 30 s while crashes keep coming) and
 *   logged.
 *
 * The memory cache, rate limits and pool health are per worker; `store: redis` shares the cache and rate limits.
 */
import cluster, { type Worker } from 'node:cluster'
import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import client from 'prom-client'
import type { ResolvedConfig } from '../config/resolved.js'
import type { Logger } from '../observability/logger.js'
import type { Proxy } from '../proxy.js'
import { AdminSession } from '../server/admin-session.js'
import { json } from '../server/admin.js'
import { listenOn } from '../server/listeners.js'

/** Messages between the primary and a worker. */
type ToWorker = { portico: 'reload', seq: number } | { portico: 'shutdown' }
type FromWorker = { portico: 'ready', adminPort: number | null } | { portico: 'reloaded', seq: number, ok: boolean, error?: string }

interface WorkerState {
  worker: Worker
  started: number
  adminPort: number | null
  ready: boolean
  /** Asked to stop (drain or restart): its exit is not a crash. */
  stopping: boolean
}

/** Runs the primary: forks, watches and drives the workers. Resolves never; the process exits on its own. */
export async function runPrimary (config: ResolvedConfig, count: number, logger: Logger, readConfig: () => Promise<ResolvedConfig>): Promise<void> {
  const workers = new Map<number, WorkerState>()
  let crashes = 0
  let lastCrash = 0
  let shuttingDown = false
  let restarting: Promise<void> | null = null
  let seq = 0
  const pending = new Map<number, { left: Set<number>, errors: string[], done: () => void }>()

  const fork = (): WorkerState => {
    const worker = cluster.fork()
    const state: WorkerState = { worker, started: Date.now(), adminPort: null, ready: false, stopping: false }
    workers.set(worker.id, state)
    worker.on('message', (m: FromWorker) => {
      if (m?.portico === 'ready') {
        state.ready = true
        state.adminPort = m.adminPort
        worker.emit('portico-ready')
      } else if (m?.portico === 'reloaded') {
        const p = pending.get(m.seq)
        if (p === undefined) return
        if (!m.ok) p.errors.push(m.error ?? 'failed')
        p.left.delete(worker.id)
        if (p.left.size === 0) p.done()
      }
    })
    worker.on('exit', (code, signal) => {
      workers.delete(worker.id)
      for (const p of pending.values()) {
        if (p.left.delete(worker.id) && p.left.size === 0) p.done()
      }
      if (state.stopping || shuttingDown) return
      const now = Date.now()
      crashes = now - lastCrash > 60_000 ? 1 : crashes + 1
      lastCrash = now
      const delay = Math.min(30_000, 500 * 2 ** (crashes - 1))
      logger.error({ worker: worker.process.pid, code, signal, restartIn: delay }, 'worker exited; replacing it')
      setTimeout(() => { if (!shuttingDown) fork() }, delay).unref()
    })
    return state
  }

  const ready = (state: WorkerState): Promise<boolean> => new Promise((resolve) => {
    if (state.ready) {
      resolve(true)
      return
    }
    state.worker.once('portico-ready', () => resolve(true))
    state.worker.once('exit', () => resolve(false))
  })

  const stop = (state: WorkerState): Promise<void> => new Promise((resolve) => {
    state.stopping = true
    if (state.worker.isDead()) {
      resolve()
      return
    }
    state.worker.once('exit', () => resolve())
    send(state.worker, { portico: 'shutdown' })
  })

  /** Replaces the workers one at a time: the new one serves before the old one drains. */
  const rollingRestart = async (): Promise<void> => {
    const old = [...workers.values()]
    logger.info({ workers: old.length }, 'rolling restart')
    for (const state of old) {
      if (shuttingDown) return
      const next = fork()
      if (!await ready(next)) {
        logger.error({ worker: next.worker.process.pid }, 'rolling restart: a new worker did not start; stopping the restart')
        return
      }
      await stop(state)
    }
    logger.info({ workers: [...workers.values()].map((w) => w.worker.process.pid) }, 'rolling restart done')
  }

  /** Every worker reloads; resolves with the errors of those that failed. */
  const reloadAll = async (): Promise<string[]> => {
    const id = ++seq
    const live = [...workers.values()].filter((w) => w.ready && !w.stopping)
    if (live.length === 0) return []
    return await new Promise<string[]>((resolve) => {
      const entry = { left: new Set(live.map((w) => w.worker.id)), errors: [] as string[], done: () => { pending.delete(id); resolve(entry.errors) } }
      pending.set(id, entry)
      for (const w of live) send(w.worker, { portico: 'reload', seq: id })
    })
  }

  for (let i = 0; i < count; i++) fork()
  const first = await Promise.all([...workers.values()].map(ready))
  logger.info({ workers: [...workers.values()].map((w) => w.worker.process.pid), started: first.filter(Boolean).length }, 'cluster started')

  let admin: http.Server | null = null
  if (config.admin !== null) {
    const token = config.admin.token
    const session = token === null ? null : new AdminSession(token)
    const aggregator = new client.AggregatorRegistry()
    admin = http.createServer((req, res) => {
      if (session !== null && !session.bearer(req)) {
        json(res, 401, { error: 'unauthorized' })
        return
      }
      const path = (req.url ?? '/').split('?')[0]
      if (path === '/healthz') {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '3' })
        res.end('ok\n')
      } else if (path === '/metrics' && config.admin?.metrics === true) {
        aggregator.clusterMetrics().then((text) => {
          res.writeHead(200, { 'content-type': aggregator.contentType, 'cache-control': 'no-store' })
          res.end(text)
        }, (err: unknown) => json(res, 500, { error: `metrics aggregation failed: ${(err as Error).message}` }))
      } else if (path === '/workers' && req.method === 'GET') {
        json(res, 200, [...workers.values()].map((w) => ({ pid: w.worker.process.pid, id: w.worker.id, ready: w.ready, startedAt: new Date(w.started).toISOString(), stopping: w.stopping })))
      } else if (path === '/workers/restart' && req.method === 'POST') {
        restarting ??= rollingRestart().finally(() => { restarting = null })
        restarting.then(() => json(res, 200, { ok: true, workers: [...workers.values()].map((w) => w.worker.process.pid) }), (err: unknown) => json(res, 500, { ok: false, error: (err as Error).message }))
      } else if (path === '/config/reload' && req.method === 'POST') {
        readConfig().then(async () => {
          const errors = await reloadAll()
          json(res, errors.length === 0 ? 200 : 422, errors.length === 0 ? { ok: true } : { ok: false, error: errors[0] })
        }, (err: unknown) => {
          logger.error({ err: (err as Error).message, source: 'admin' }, 'config reload failed; keeping the running config')
          json(res, 422, { ok: false, error: (err as Error).message })
        })
      } else {
        forward(req, res, [...workers.values()].find((w) => w.ready && !w.stopping && w.adminPort !== null)?.adminPort ?? null)
      }
    })
    await listenOn(admin, config.admin.port, config.admin.host, 'http')
  }

  const shutdown = (signal: string): void => {
    if (shuttingDown) {
      logger.warn({ signal }, 'second signal: exiting now')
      for (const w of workers.values()) w.worker.process.kill('SIGKILL')
      process.exit(1)
    }
    shuttingDown = true
    logger.info({ signal, workers: workers.size }, 'draining every worker')
    Promise.all([...workers.values()].map(stop)).then(() => {
      admin?.close()
      logger.info('stopped')
      logger.flush()
      process.exit(0)
    }, () => process.exit(1))
  }
  process.on('SIGTERM', () => shutdown('SIGTERM'))
  process.on('SIGINT', () => shutdown('SIGINT'))
  process.on('SIGHUP', () => { for (const w of workers.values()) w.worker.process.kill('SIGHUP') })
  process.on('SIGUSR2', () => { restarting ??= rollingRestart().finally(() => { restarting = null }) })
}

/**
 * In a worker: tells the primary it serves (and where its own admin listener is), reloads when asked, drains when
 * told to stop, and hands its metrics registry to the primary's aggregation.
 */
export function runWorker (proxy: Proxy, logger: Logger, stop: (signal: string) => void): void {
  const registry = proxy.metricsRegistry
  if (registry !== null) {
    client.AggregatorRegistry.setRegistries([registry])
    // Constructing one in a worker is what makes prom-client answer the primary's requests for metrics.
    void new client.AggregatorRegistry()
  }
  process.on('message', (m: ToWorker) => {
    if (m?.portico === 'reload') {
      proxy.reloadFromSource('admin').then((r) => send(process, { portico: 'reloaded', seq: m.seq, ...r }), (err: unknown) => {
        send(process, { portico: 'reloaded', seq: m.seq, ok: false, error: (err as Error).message })
      })
    } else if (m?.portico === 'shutdown') {
      stop('shutdown')
    }
  })
  send(process, { portico: 'ready', adminPort: proxy.adminAddress?.port ?? null })
  logger.debug({ pid: process.pid }, 'worker ready')
}

function send (to: Worker | NodeJS.Process, m: ToWorker | FromWorker): void {
  try {
    (to.send as ((m: unknown) => unknown) | undefined)?.call(to, m)
  } catch { /* the other side is gone */ }
}

/** An admin request the primary does not answer itself, to a worker's own admin listener. */
function forward (req: IncomingMessage, res: ServerResponse, port: number | null): void {
  if (port === null) {
    json(res, 503, { error: 'no worker is ready' })
    return
  }
  const out = http.request({ host: '127.0.0.1', port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
    res.writeHead(answer.statusCode ?? 502, answer.headers)
    answer.pipe(res)
  })
  out.on('error', () => { if (!res.headersSent) json(res, 502, { error: 'the worker did not answer' }) })
  req.pipe(out)
}
