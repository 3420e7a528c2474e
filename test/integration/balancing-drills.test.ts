/**
 * Failure drills for pools (docs/balancing.md): real nodes on loopback that die, reset, hang, recover and overload,
 * with the clients' view and the nodes' own counts. Every loop is bounded in count and time.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import http, { type RequestListener } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { closedPort, send, startProxy } from '../helpers/servers.js'
import { load } from '../helpers/load.js'
import { eventually } from '../helpers/poll.js'
import type { HealthEvent } from '../../src/index.js'

/** A node on a fixed port that can be stopped and started again, counting requests and peak concurrency. */
class Node {
  readonly name: string
  port = 0
  server: http.Server | null = null
  requests = 0
  inflight = 0
  peak = 0
  handler: RequestListener

  constructor (name: string, handler?: RequestListener) {
    this.name = name
    this.handler = handler ?? ((_req, res) => res.end(name))
  }

  get url (): string {
    return `http://127.0.0.1:${this.port}`
  }

  async start (): Promise<this> {
    const server = http.createServer((req, res) => {
      this.requests++
      this.inflight++
      this.peak = Math.max(this.peak, this.inflight)
      res.on('close', () => { this.inflight-- })
      this.handler(req, res)
    })
    server.on('clientError', (_e, s) => s.destroy())
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve))
    this.port = (server.address() as AddressInfo).port
    this.server = server
    return this
  }

  async stop (): Promise<void> {
    const s = this.server
    if (s === null) return
    this.server = null
    s.closeAllConnections()
    await new Promise<void>((resolve) => s.close(() => resolve()))
  }
}

/** Health events of a proxy, with the time each arrived. */
function watchHealth (proxy: { on: (e: 'health', f: (ev: HealthEvent) => void) => unknown }): (HealthEvent & { at: number })[] {
  const events: (HealthEvent & { at: number })[] = []
  proxy.on('health', (e) => events.push({ ...e, at: Date.now() }))
  return events
}

test('drill: a node dies mid-load (2,000 GETs, 20 in flight): no client sees an error while another node is healthy', async (t) => {
  const a = await new Node('a').start()
  const b = await new Node('b').start()
  const proxy = await startProxy({ upstreams: { '*': [a.url, b.url] } })
  t.after(() => Promise.all([proxy.close(), a.stop(), b.stop()]))
  const health = watchHealth(proxy.proxy)
  let killedAt = 0
  const r = await load(proxy.url, {
    total: 2000,
    concurrency: 20,
    onProgress: (n) => {
      if (n === 500) {
        killedAt = Date.now()
        void a.stop()
      }
    }
  })
  assert.deepEqual(r.statuses, { 200: 2000 }, 'every request answered 200')
  const ejected = health.find((e) => e.node === a.url && e.to === 'ejected')
  assert.ok(ejected !== undefined, 'the dead node was ejected')
  const pool = proxy.proxy.pools()[0]
  t.diagnostic(`requests 2000, client-visible errors 0, node a served ${r.bodies.a}, node b ${r.bodies.b}; ` +
    `ejected ${ejected.at - killedAt} ms after the kill; retries ${pool.stats.retries}`)
})

test('drill: a node that resets every third connection: retries hide it; only the retry budget may refuse a burst', async (t) => {
  let connections = 0
  // Every answer closes its connection, so each request opens one and every third one is reset.
  const flaky = await new Node('flaky', (_req, res) => { res.setHeader('connection', 'close'); res.end('flaky') }).start()
  flaky.server!.on('connection', (s: Socket) => {
    connections++
    if (connections % 3 === 0) s.destroy()
  })
  const b = await new Node('b').start()
  t.after(() => Promise.all([flaky.stop(), b.stop()]))
  const run = async (retry: object): Promise<{ statuses: Record<string, number>, denied: number, retries: number, flaky: number }> => {
    const proxy = await startProxy({ upstreams: { '*': { nodes: [flaky.url, b.url], retry } } })
    const r = await load(proxy.url, { total: 300, concurrency: 10 })
    const stats = proxy.proxy.pools()[0].stats
    await proxy.close()
    return { statuses: r.statuses, denied: stats.retriesDeniedByBudget, retries: stats.retries, flaky: r.bodies.flaky ?? 0 }
  }
  // A node failing a third of its half of the traffic needs retries for ~17% of requests, near the default 20%
  // budget, and its failures come in bursts (undici fails every request queued on a connection that dies), so at 10
  // in flight the budget's floor of 10 retries at once can be exceeded. Every client error is such a refusal; with the budget
  // at 100% (a retry per request in flight) there is none.
  const byDefault = await run({})
  assert.equal((byDefault.statuses['200'] ?? 0) + byDefault.denied, 300, 'every request answered, or refused a retry by the budget')
  assert.ok(byDefault.denied <= 15, `the budget refused ${byDefault.denied} of ${byDefault.retries + byDefault.denied}`)
  const roomy = await run({ budget: 100 })
  assert.deepEqual(roomy.statuses, { 200: 300 })
  assert.ok(connections >= 60, `the flaky node reset many connections (${connections} opened)`)
  t.diagnostic(`300 GETs × 2: default budget ${byDefault.retries} retries, ${byDefault.denied} refused (= client errors); budget 100%: ` +
    `${roomy.retries} retries, 0 errors; flaky node reset ${Math.floor(connections / 3)} of ${connections} connections`)
})

test('drill: a node that hangs answers 504 until it is ejected, then the rest is served', async (t) => {
  const hang = await new Node('hang', () => {}).start()
  const ok = await new Node('ok').start()
  const proxy = await startProxy({
    timeouts: { response: '300ms' },
    upstreams: { '*': { nodes: [hang.url, ok.url], outlier: { consecutiveFailures: 2, baseEjectionTime: '60s' } } }
  })
  t.after(() => Promise.all([proxy.close(), hang.stop(), ok.stop()]))
  const statuses: number[] = []
  for (let i = 0; i < 20; i++) statuses.push((await send(`${proxy.url}/`)).status)
  const timeouts = statuses.filter((s) => s === 504).length
  assert.equal(timeouts, 2, `two timeouts eject the node (got ${statuses.join(' ')})`)
  assert.equal(statuses.filter((s) => s === 200).length, 18)
  assert.equal(statuses.lastIndexOf(504) < 4, true, 'no timeout after the ejection')
  assert.equal(proxy.proxy.pools()[0].nodes[0].status, 'ejected')
  t.diagnostic(`20 GETs: ${timeouts} × 504 before the ejection, then 18 × 200; hanging node saw ${hang.requests}`)
})

test('drill: recovery after the node returns, found by the active check; slow start then grows its share', async (t) => {
  const a = await new Node('a').start()
  const b = await new Node('b').start()
  const proxy = await startProxy({
    upstreams: {
      '*': {
        nodes: [a.url, b.url],
        healthCheck: { path: '/healthz', interval: '50ms', timeout: '500ms', unhealthyAfter: 2, healthyAfter: 2 },
        slowStart: '2s'
      }
    }
  })
  t.after(() => Promise.all([proxy.close(), a.stop(), b.stop()]))
  const health = watchHealth(proxy.proxy)
  const stoppedAt = Date.now()
  await a.stop()
  await eventually('node a marked unhealthy', () => health.some((e) => e.node === a.url && e.to === 'unhealthy'))
  const down = await load(proxy.url, { total: 50, concurrency: 5 })
  assert.deepEqual(down.statuses, { 200: 50 })
  assert.equal(down.bodies.a, undefined, 'no traffic to the unhealthy node')
  const restartedAt = Date.now()
  await a.start()
  await eventually('node a healthy again', () => health.some((e) => e.node === a.url && e.to === 'healthy'))
  const healthyAt = health.find((e) => e.node === a.url && e.to === 'healthy')!.at
  const unhealthyAt = health.find((e) => e.node === a.url && e.to === 'unhealthy')!.at
  await eventually('node a serves again', async () => (await send(`${proxy.url}/`)).body.toString() === 'a')
  t.diagnostic(`marked unhealthy ${unhealthyAt - stoppedAt} ms after it stopped; healthy ${healthyAt - restartedAt} ms after it came back`)
})

test('drill: a POST whose body was sent is never replayed, even on a retried status; a GET is', async (t) => {
  const busy = await new Node('busy', (req, res) => {
    req.resume()
    req.on('end', () => { res.statusCode = 503; res.end('busy') })
  }).start()
  const ok = await new Node('ok').start()
  const proxy = await startProxy({ upstreams: { '*': { nodes: [busy.url, ok.url], retry: { on: ['connect-failure', 'reset', 503] }, policy: 'first' } } })
  t.after(() => Promise.all([proxy.close(), busy.stop(), ok.stop()]))
  const post = await send(`${proxy.url}/`, { method: 'POST', body: 'charge once', headers: { 'content-length': '11' } })
  assert.equal(post.status, 503)
  assert.equal(busy.requests, 1)
  assert.equal(ok.requests, 0, 'the POST was not sent again')
  const get = await send(`${proxy.url}/`)
  assert.equal(get.status, 200)
  assert.equal(get.body.toString(), 'ok')
  const line = proxy.logs.find((l) => l.method === 'GET' && l.status === 200)!
  assert.equal(line.attempts, 2)
  assert.deepEqual(line.failedAttempts, [{ upstream: busy.url, error: 'status 503' }])
})

test('drill: a small POST whose connection failed is replayed on the next node', async (t) => {
  const dead = await closedPort()
  const live = await new Node('live', (req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => res.end(Buffer.concat(chunks)))
  }).start()
  const proxy = await startProxy({ upstreams: { '*': { nodes: [`http://127.0.0.1:${dead}`, live.url], policy: 'first' } } })
  t.after(() => Promise.all([proxy.close(), live.stop()]))
  const r = await send(`${proxy.url}/`, { method: 'POST', body: 'order 42', headers: { 'content-length': '8' } })
  assert.equal(r.status, 200)
  assert.equal(r.body.toString(), 'order 42')
  assert.equal(live.requests, 1)
  const line = proxy.logs.find((l) => l.method === 'POST')!
  assert.deepEqual(line.failedAttempts, [{ upstream: `http://127.0.0.1:${dead}`, error: 'PORTICO_ERR_UPSTREAM_REFUSED' }])
})

test('drill: a PUT body kept for replay (up to retry.bufferBody) is sent again after a reset; a larger one is not', async (t) => {
  let first = true
  const resetOnce = await new Node('r', (req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      if (first) {
        first = false
        req.socket.destroy()
        return
      }
      res.end(`got ${Buffer.concat(chunks).length}`)
    })
  }).start()
  const proxy = await startProxy({ upstreams: { '*': { nodes: [resetOnce.url], retry: { bufferBody: '1kb' } } } })
  t.after(() => Promise.all([proxy.close(), resetOnce.stop()]))
  const small = await send(`${proxy.url}/`, { method: 'PUT', body: Buffer.alloc(600, 1), headers: { 'content-length': '600' } })
  assert.equal(small.status, 200)
  assert.equal(small.body.toString(), 'got 600', 'the same bytes again')
  first = true
  const big = await send(`${proxy.url}/`, { method: 'PUT', body: Buffer.alloc(4000, 1), headers: { 'content-length': '4000' } })
  assert.equal(big.status, 502, 'too large to keep: not replayed')
})

test('drill: the retry budget caps retries when every node fails (counted at the nodes)', async (t) => {
  const failing = (name: string): Node => new Node(name, (req) => { setTimeout(() => req.socket.destroy(), 30) })
  const nodes = await Promise.all([failing('x').start(), failing('y').start(), failing('z').start()])
  const run = async (budget: number): Promise<{ atNodes: number, denied: number, statuses: Record<string, number> }> => {
    for (const n of nodes) n.requests = 0
    const proxy = await startProxy({ upstreams: { '*': { nodes: nodes.map((n) => n.url), retry: { attempts: 3, backoff: 0, budget } } } })
    const r = await load(proxy.url, { total: 300, concurrency: 60 })
    const denied = proxy.proxy.pools()[0].stats.retriesDeniedByBudget
    await proxy.close()
    return { atNodes: nodes.reduce((s, n) => s + n.requests, 0), denied, statuses: r.statuses }
  }
  t.after(() => Promise.all(nodes.map((n) => n.stop())))
  // 60 requests in flight: the budget (20%) allows 12 retries at once, so about one request in five is retried.
  const capped = await run(20)
  const open = await run(100)
  assert.deepEqual(capped.statuses, { 502: 300 })
  assert.ok(capped.denied > 0, 'the budget refused retries')
  assert.ok(capped.atNodes <= 450, `at most about budget × in flight retried (nodes saw ${capped.atNodes})`)
  assert.ok(open.atNodes >= 750, `without a budget, about 3 attempts each (nodes saw ${open.atNodes})`)
  t.diagnostic(`300 GETs at 60 in flight, every node failing: nodes saw ${capped.atNodes} requests with budget 20% (${capped.denied} retries refused), ${open.atNodes} with 100%`)
})

test('drill: over maxRequests the queue holds requests, overflow gets 503 at once, nodes never see more than the limit', async (t) => {
  const gate: (() => void)[] = []
  const slow = await new Node('slow', (_req, res) => { gate.push(() => res.end('slow')) }).start()
  const proxy = await startProxy({ upstreams: { '*': { nodes: [slow.url], maxRequests: 4, queue: { size: 4, timeout: '10s' } } } })
  t.after(() => Promise.all([proxy.close(), slow.stop()]))
  const replies = Array.from({ length: 20 }, () => send(`${proxy.url}/`))
  // The 12 that fit nowhere are answered while the node still holds the first 4.
  const overflow: Awaited<typeof replies[number]>[] = []
  for (const p of replies) void p.then((r) => { if (r.status === 503) overflow.push(r) })
  await eventually('12 answered 503 while the node holds 4', () => overflow.length === 12)
  assert.equal(slow.requests, 4)
  assert.equal(slow.peak, 4)
  assert.equal(overflow[0].headers['retry-after'], '1')
  assert.match(String(overflow[0].headers['proxy-status']), /connection_limit_reached; details="PORTICO_ERR_UPSTREAM_OVERLOADED"/)
  while (slow.requests < 8 || gate.length > 0) {
    gate.splice(0).forEach((f) => f())
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  const all = await Promise.all(replies)
  assert.equal(all.filter((r) => r.status === 200).length, 8)
  assert.equal(slow.peak, 4, 'never more than maxRequests at once')
  const stats = proxy.proxy.pools()[0].stats
  assert.equal(stats.overloaded, 12)
})

test('drill: a queued request that waits too long gets 503 with Retry-After; maxRequestsPerNode limits each node', async (t) => {
  const gate: (() => void)[] = []
  const hold = (name: string): Node => new Node(name, (_req, res) => { gate.push(() => res.end(name)) })
  const a = await hold('a').start()
  const b = await hold('b').start()
  const proxy = await startProxy({ upstreams: { '*': { nodes: [a.url, b.url], maxRequestsPerNode: 2, queue: { size: 10, timeout: '200ms' } } } })
  t.after(() => Promise.all([proxy.close(), a.stop(), b.stop()]))
  const replies = Array.from({ length: 6 }, () => send(`${proxy.url}/`))
  const late = await Promise.race(replies)
  assert.equal(late.status, 503)
  assert.equal(a.peak, 2)
  assert.equal(b.peak, 2)
  gate.splice(0).forEach((f) => f())
  const all = await Promise.all(replies)
  assert.deepEqual(all.map((r) => r.status).sort(), [200, 200, 200, 200, 503, 503])
})

test('no usable node: 503 PORTICO_ERR_NO_HEALTHY_UPSTREAM with Retry-After; panicThreshold sends to every node instead', async (t) => {
  let served = 0
  const sick = (name: string): Node => new Node(name, (req, res) => {
    if (req.url !== '/healthz') served++
    res.statusCode = req.url === '/healthz' ? 500 : 200
    res.end(name)
  })
  const a = await sick('a').start()
  const b = await sick('b').start()
  const check = { path: '/healthz', interval: '30ms', unhealthyAfter: 1 }
  const proxy = await startProxy({
    routes: [
      { path: '/strict', upstream: { nodes: [a.url, b.url], healthCheck: check } },
      { path: '/panic', upstream: { nodes: [a.url, b.url], healthCheck: check, panicThreshold: 50 } }
    ]
  })
  t.after(() => Promise.all([proxy.close(), a.stop(), b.stop()]))
  await eventually('every node unhealthy', () => proxy.proxy.pools().every((p) => p.nodes.every((n) => n.status === 'unhealthy')))
  const r = await send(`${proxy.url}/strict`)
  assert.equal(r.status, 503)
  assert.match(String(r.headers['proxy-status']), /details="PORTICO_ERR_NO_HEALTHY_UPSTREAM"/)
  assert.ok(Number(r.headers['retry-after']) >= 1)
  assert.equal(served, 0, 'no node was tried')
  const panic = await send(`${proxy.url}/panic`)
  assert.equal(panic.status, 200, 'panic mode: traffic to all nodes')
  assert.equal(served, 1)
})
