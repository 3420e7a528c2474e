/**
 * A soak: `npm run soak -- --minutes 10 [--report-every 30]`. A Portico child process (bench/soak-child.ts) serves
 * a mixed load for M minutes: keep-alive GETs to a pool of two nodes of which one flaps (stops listening for a few
 * seconds, comes back, again and again; health checks and retries hide it), uploads, uploads aborted mid-body, slow
 * readers, WebSockets that open, echo and close, and a cached route whose small memory store churns over a rotating
 * URL space. Every report prints the child's RSS, heap (after a full GC) and open descriptors. At the end the last
 * report is compared with the first one after warm-up (the first 20% of the run, at least two reports): RSS and
 * descriptors must end within 10% (exit status 1 otherwise). Every loop stops at the deadline; a hard timeout
 * kills the run.
 */
import http from 'node:http'
import { fork, type ChildProcess } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { WebSocket, WebSocketServer } from 'ws'

const args = process.argv.slice(2)
const arg = (name: string, fallback: number): number => {
  const i = args.indexOf(`--${name}`)
  return i === -1 ? fallback : Number(args[i + 1])
}
const MINUTES = arg('minutes', 10)
const REPORT_EVERY = arg('report-every', 30) * 1000
const DEADLINE = Date.now() + MINUTES * 60_000
const HARD_TIMEOUT = setTimeout(() => { console.error('soak: hard timeout'); process.exit(2) }, MINUTES * 60_000 + 60_000)
HARD_TIMEOUT.unref()

const counts: Record<string, number> = {}
const errors: Record<string, number> = {}
const count = (k: string): void => { counts[k] = (counts[k] ?? 0) + 1 }
const fail = (k: string): void => { errors[k] = (errors[k] ?? 0) + 1 }
const running = (): boolean => Date.now() < DEADLINE
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

// --- origins ------------------------------------------------------------------------------------------------------

const BIG = Buffer.alloc(1024 * 1024, 'soak ')
function appHandler (name: string): http.RequestListener {
  return (req, res) => {
    if (req.url === '/healthz') return res.end('ok')
    if (req.method === 'POST') {
      let n = 0
      req.on('data', (c: Buffer) => { n += c.length })
      req.on('end', () => res.end(`${name} ${n}`))
      req.on('error', () => {})
      return
    }
    if (req.url?.startsWith('/app/big') === true) return res.end(BIG)
    res.end(name)
  }
}

async function listen (server: http.Server, port = 0): Promise<number> {
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  return (server.address() as AddressInfo).port
}

const stable = http.createServer(appHandler('stable'))
const stablePort = await listen(stable)
let flapping = http.createServer(appHandler('flap'))
const flapPort = await listen(flapping)
const cacheOrigin = http.createServer((req, res) => {
  res.setHeader('cache-control', 'max-age=5')
  res.end(Buffer.alloc(4096, req.url ?? ''))
})
const cachePort = await listen(cacheOrigin)
const wsServer = http.createServer()
const wss = new WebSocketServer({ server: wsServer })
wss.on('connection', (ws) => ws.on('message', (m, binary) => ws.send(m, { binary })))
const wsPort = await listen(wsServer)

async function flap (): Promise<void> {
  while (running()) {
    await sleep(8000)
    if (!running()) break
    flapping.closeAllConnections()
    await new Promise<void>((resolve) => flapping.close(() => resolve()))
    count('flap-down')
    await sleep(3000)
    flapping = http.createServer(appHandler('flap'))
    await listen(flapping, flapPort)
  }
}

// --- the proxy ----------------------------------------------------------------------------------------------------

const config = {
  listen: [{ host: '127.0.0.1', port: 0 }],
  log: { access: false, level: 'error' },
  cache: { enabled: false, maxSize: '8mb' },
  server: { bodyTimeout: '5s' },
  routes: [
    {
      path: '/app',
      upstream: {
        nodes: [`http://127.0.0.1:${stablePort}`, `http://127.0.0.1:${flapPort}`],
        healthCheck: { path: '/healthz', interval: '1s', timeout: '500ms', unhealthyAfter: 1, healthyAfter: 1 },
        retry: { attempts: 3, budget: 100 }
      }
    },
    { path: '/cache', upstream: [`http://127.0.0.1:${cachePort}`], cache: true },
    { path: '/ws', upstream: [`http://127.0.0.1:${wsPort}`] }
  ]
}
const here = path.dirname(fileURLToPath(import.meta.url))
const child: ChildProcess = fork(path.join(here, 'soak-child.js'), [JSON.stringify(config)], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
const port = await new Promise<number>((resolve) => child.on('message', (m: { ready?: number }) => { if (m.ready !== undefined) resolve(m.ready) }))
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 })

// --- load ---------------------------------------------------------------------------------------------------------

function request (opts: http.RequestOptions & { path: string }, body?: Buffer, slowRead = false): Promise<{ status: number, body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, agent, ...opts }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => {
        if (chunks.length < 4) chunks.push(c)
        if (slowRead) {
          res.pause()
          setTimeout(() => res.resume(), 20)
        }
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString().slice(0, 64) }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.setTimeout(30_000, () => req.destroy(new Error('client timeout')))
    req.end(body)
  })
}

async function loop (kind: string, once: () => Promise<void>): Promise<void> {
  while (running()) {
    try {
      await once()
      count(kind)
    } catch (err) {
      fail(`${kind}: ${(err as Error).message.replace(/\s+/g, ' ').slice(0, 48)}`)
      await sleep(50)
    }
  }
}

const gets = async (): Promise<void> => {
  const r = await request({ path: '/app/x' })
  if (r.status !== 200) throw new Error(`status ${r.status}`)
}
let urlNo = 0
const cached = async (): Promise<void> => {
  const r = await request({ path: `/cache/${urlNo++ % 4000}` })
  if (r.status !== 200) throw new Error(`status ${r.status}`)
}
const upload = async (): Promise<void> => {
  const size = 256 * 1024 + Math.floor(Math.random() * 768 * 1024)
  const r = await request({ path: '/app/up', method: 'POST', headers: { 'content-length': size } }, BIG.subarray(0, size))
  if (r.status !== 200 || !r.body.endsWith(` ${size}`)) throw new Error(`upload ${r.status} ${r.body}`)
}
const abortedUpload = (): Promise<void> => new Promise((resolve) => {
  const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/app/up', headers: { 'content-length': String(BIG.length) } })
  req.on('error', () => resolve())
  req.write(BIG.subarray(0, 100 * 1024), () => setTimeout(() => { req.destroy(); resolve() }, 10))
})
const slowReader = async (): Promise<void> => {
  const r = await request({ path: '/app/big' }, undefined, true)
  if (r.status !== 200) throw new Error(`status ${r.status}`)
}
const websocket = (): Promise<void> => new Promise((resolve, reject) => {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`)
  let n = 0
  ws.on('open', () => ws.send(`m${n}`))
  ws.on('message', (m) => {
    if (String(m) !== `m${n}`) { ws.terminate(); reject(new Error('echo mismatch')); return }
    if (++n === 10) ws.close()
    else ws.send(`m${n}`)
  })
  ws.on('close', () => (n === 10 ? resolve() : reject(new Error('closed early'))))
  ws.on('error', reject)
})

// --- reports ------------------------------------------------------------------------------------------------------

interface Report { at: number, rssMiB: number, heapMiB: number, fds: number }
const reports: Report[] = []
const started = Date.now()
function rssMiB (pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m === null ? 0 : Number(m[1]) / 1024
}
async function report (): Promise<void> {
  const memory = await new Promise<NodeJS.MemoryUsage>((resolve) => {
    child.once('message', (m: { memory?: NodeJS.MemoryUsage }) => resolve(m.memory!))
    child.send('memory')
  })
  const r: Report = { at: Math.round((Date.now() - started) / 1000), rssMiB: rssMiB(child.pid!), heapMiB: memory.heapUsed / 2 ** 20, fds: readdirSync(`/proc/${child.pid!}/fd`).length }
  reports.push(r)
  const c = Object.entries(counts).map(([k, v]) => `${k}=${v}`).join(' ')
  const e = Object.entries(errors).map(([k, v]) => `${k}=${v}`).join(' ') || 'none'
  console.log(`t=${r.at}s rss=${r.rssMiB.toFixed(1)}MiB heap=${r.heapMiB.toFixed(1)}MiB fds=${r.fds} | ${c} | errors: ${e}`)
}

const work: Promise<void>[] = [flap()]
for (let i = 0; i < 8; i++) work.push(loop('get', gets))
for (let i = 0; i < 4; i++) work.push(loop('cache', cached))
for (let i = 0; i < 2; i++) work.push(loop('upload', upload))
work.push(loop('aborted-upload', abortedUpload))
work.push(loop('slow-reader', slowReader))
for (let i = 0; i < 2; i++) work.push(loop('websocket', websocket))
const ticker = (async () => {
  while (running()) {
    await sleep(Math.min(REPORT_EVERY, Math.max(0, DEADLINE - Date.now())))
    await report()
  }
})()
await Promise.all([...work, ticker])

// --- verdict ------------------------------------------------------------------------------------------------------

const warm = reports.findIndex((r) => r.at >= MINUTES * 60 * 0.2)
const first = reports[Math.max(warm, 2)] ?? reports[0]
const last = reports[reports.length - 1]
const within = (a: number, b: number): boolean => Math.abs(b - a) <= a * 0.1
const ok = first !== undefined && within(first.rssMiB, last.rssMiB) && within(first.fds, last.fds)
console.log(`after warm-up (t=${first?.at}s): rss ${first?.rssMiB.toFixed(1)} → ${last?.rssMiB.toFixed(1)} MiB, ` +
  `heap ${first?.heapMiB.toFixed(1)} → ${last?.heapMiB.toFixed(1)} MiB, fds ${first?.fds} → ${last?.fds}: ${ok ? 'PASS' : 'FAIL'} (within 10%)`)
child.kill('SIGTERM')
agent.destroy()
for (const s of [stable, flapping, cacheOrigin, wsServer]) { s.closeAllConnections(); s.close() }
wss.close()
process.exit(ok ? 0 : 1)
