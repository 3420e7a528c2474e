/**
 * A real Redis for the tests. `REDIS_URL` wins (CI starts one redis-server for the whole run); otherwise a
 * private `redis-server` is spawned on a free loopback port, without persistence, and killed with the test
 * file. With neither: on CI (`CI=true`) startRedis throws, so the tests fail instead of passing quietly; elsewhere
 * it returns null and the caller skips loudly (`redisOrSkip`).
 *
 * Outage tests need a server they may kill: `startRedis({ own: true })` always spawns one (ignoring REDIS_URL),
 * and its `stop()` / `restart()` (same port) and `pause()` / `resume()` (SIGSTOP: the socket stays open, nothing
 * answers) simulate Redis going away and coming back.
 */
import net, { type AddressInfo } from 'node:net'
import { spawn, type ChildProcess } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import path from 'node:path'
import type { TestContext } from 'node:test'
import { until } from './poll.js'

export interface RedisServer {
  /** redis://host:port (from REDIS_URL as given, or the spawned server's). */
  url: string
  port: number
  /** True when this process spawned the server (stop, restart, pause and resume work). */
  owned: boolean
  /** Kills the spawned server and waits for it to exit (a no-op for REDIS_URL). */
  stop (): Promise<void>
  /** Starts the server again on the same port and waits for PING. Owned servers only. */
  restart (): Promise<void>
  /** SIGSTOP / SIGCONT: connections stay open but nothing answers. Owned servers only. */
  pause (): void
  resume (): void
}

const PING_TIMEOUT_MS = 5_000

/** Why Redis tests are skipped here, for t.skip and the banner. */
export const NO_REDIS = 'redis-server not installed and REDIS_URL not set: Redis cache tests skipped ' +
  '(apt-get install redis-server, or set REDIS_URL=redis://host:port)'

/** Every server spawned by this process: killed if the test process exits without stopping them. */
const children = new Set<ChildProcess>()
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL')
})

/** A port nothing listens on right now (bound on 127.0.0.1:0, then released). */
export async function freePort (): Promise<number> {
  const s = net.createServer()
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject)
    s.listen(0, '127.0.0.1', resolve)
  })
  const port = (s.address() as AddressInfo).port
  await new Promise<void>((resolve) => s.close(() => resolve()))
  return port
}

/** The absolute path of `redis-server` on PATH, or null. */
export function redisServerBinary (): string | null {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue
    const p = path.join(dir, 'redis-server')
    try {
      accessSync(p, constants.X_OK)
      return p
    } catch { /* not here */ }
  }
  return null
}

/** One PING on a fresh connection: true on +PONG (or an auth error, which still proves a Redis answers). */
function pingOnce (host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, host)
    let reply = ''
    const done = (ok: boolean): void => {
      clearTimeout(timer)
      socket.destroy()
      resolve(ok)
    }
    const timer = setTimeout(() => done(false), 500)
    socket.on('connect', () => socket.write('PING\r\n'))
    socket.on('data', (c: Buffer) => {
      reply += c.toString('latin1')
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG') || reply.startsWith('-NOAUTH') || reply.startsWith('-WRONGPASS'))
    })
    socket.on('error', () => done(false))
    socket.on('close', () => done(false))
  })
}

/** Polls PING until Redis answers or `timeoutMs` passes. */
export function waitForPing (host: string, port: number, timeoutMs = PING_TIMEOUT_MS): Promise<boolean> {
  return until(() => pingOnce(host, port), { ms: timeoutMs, every: 50 })
}

async function spawnServer (bin: string, port: number): Promise<ChildProcess> {
  const child = spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe']
  })
  children.add(child)
  let output = ''
  child.stdout!.on('data', (c: Buffer) => { output += c.toString() })
  child.stderr!.on('data', (c: Buffer) => { output += c.toString() })
  let exited = false
  child.once('exit', () => {
    exited = true
    children.delete(child)
  })
  const failed = new Promise<Error | null>((resolve) => {
    child.once('error', resolve)
    child.once('exit', () => resolve(null))
  })
  const up = await Promise.race([waitForPing('127.0.0.1', port), failed])
  if (up === true) return child
  child.kill('SIGKILL')
  const why = up instanceof Error ? up.message : exited ? `it exited (${child.exitCode ?? child.signalCode})` : `no PING answer within ${PING_TIMEOUT_MS} ms`
  throw new Error(`could not start redis-server on 127.0.0.1:${port}: ${why}\n${output.slice(-2000)}`)
}

function stopChild (child: ChildProcess | null): Promise<void> {
  if (child === null || child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const killer = setTimeout(() => child.kill('SIGKILL'), 3_000)
    child.once('exit', () => {
      clearTimeout(killer)
      resolve()
    })
    // SIGCONT first: a paused server would not act on SIGTERM.
    child.kill('SIGCONT')
    child.kill('SIGTERM')
  })
}

function noControl (what: string): never {
  throw new Error(`${what}: this Redis comes from REDIS_URL and is not ours to control; use startRedis({ own: true })`)
}

/**
 * A Redis for this test file, or null when none can be had outside CI (see the module comment). `own: true`
 * ignores REDIS_URL and always spawns a private server (for outage tests).
 */
export async function startRedis (options: { own?: boolean } = {}): Promise<RedisServer | null> {
  const fromEnv = process.env.REDIS_URL
  if (fromEnv !== undefined && fromEnv !== '' && options.own !== true) {
    const u = new URL(fromEnv)
    const port = Number(u.port || 6379)
    const host = u.hostname.replace(/^\[|\]$/g, '')
    if (!await waitForPing(host, port)) throw new Error(`REDIS_URL=${u.protocol}//${u.host} does not answer PING`)
    return {
      url: fromEnv,
      port,
      owned: false,
      stop: async () => {},
      restart: () => noControl('restart'),
      pause: () => noControl('pause'),
      resume: () => noControl('resume')
    }
  }

  const bin = redisServerBinary()
  if (bin === null) {
    if (process.env.CI === 'true') {
      throw new Error('\n\n!!!!!!!! CI=true but redis-server is not on PATH' +
        (options.own === true ? ' (this test needs its own server, REDIS_URL is not enough)' : ' and REDIS_URL is not set') +
        ': the Redis cache tests cannot run. Install redis-server (apt-get install redis-server). !!!!!!!!\n')
    }
    return null
  }

  const port = await freePort()
  let child: ChildProcess | null = await spawnServer(bin, port)
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    owned: true,
    stop: async () => {
      const c = child
      child = null
      await stopChild(c)
    },
    restart: async () => {
      if (child !== null) await stopChild(child)
      child = await spawnServer(bin, port)
    },
    pause: () => { child?.kill('SIGSTOP') },
    resume: () => { child?.kill('SIGCONT') }
  }
}

/** Prints the skip banner once per process. */
let warned = false
export function warnNoRedis (): void {
  if (warned) return
  warned = true
  console.warn(`\n!!!!!!!! WARNING: ${NO_REDIS} !!!!!!!!\n`)
}

/**
 * For a test that needs the file's Redis: when there is none, skips the test loudly (t.skip + banner) and returns
 * false. Use as `if (!redisOrSkip(t, redis)) return`.
 */
export function redisOrSkip (t: TestContext, redis: RedisServer | null): redis is RedisServer {
  if (redis !== null) return true
  warnNoRedis()
  t.skip(NO_REDIS)
  return false
}

/** A key prefix no other test file (or earlier run on a shared Redis) uses. */
export function uniquePrefix (name: string): string {
  return `portico-test:${name}:${process.pid}:${Date.now().toString(36)}:`
}

/**
 * Deletes every key under `prefix` and stops `server`: a file's cleanup, leaving a shared (REDIS_URL) Redis as it
 * was. Uses its own short-lived client.
 */
export async function dropPrefixAndStop (server: RedisServer, prefix: string): Promise<void> {
  const { Redis } = await import('ioredis')
  const r = new Redis(server.url, { maxRetriesPerRequest: 0, retryStrategy: () => null })
  try {
    let cursor = '0'
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500)
      cursor = next
      if (keys.length > 0) await r.del(...keys)
    } while (cursor !== '0')
  } finally {
    r.disconnect()
    await server.stop()
  }
}
