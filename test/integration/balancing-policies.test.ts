/**
 * Pools end to end (docs/balancing.md): policies and weights over real nodes, sticky cookies, named pools shared by
 * routes, node state across reloads and draining of removed nodes, in-process handler members, DNS re-resolution,
 * and the config errors of the pool settings.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { closedPort, runCli, send, startOrigin, startProxy, type Origin } from '../helpers/servers.js'
import { eventually } from '../helpers/poll.js'

/** Origins answering their own name. */
async function named (...names: string[]): Promise<Origin[]> {
  return await Promise.all(names.map((n) => startOrigin((_req, res) => res.end(n))))
}

function tally (bodies: string[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const b of bodies) out[b] = (out[b] ?? 0) + 1
  return out
}

async function bodies (url: string, n: number, headers: http.OutgoingHttpHeaders = {}): Promise<string[]> {
  const out: string[] = []
  for (let i = 0; i < n; i++) out.push((await send(url, { headers })).body.toString())
  return out
}

test('weights: smooth weighted round-robin honours { url, weight } and `weights` exactly', async (t) => {
  const [a, b, c] = await named('a', 'b', 'c')
  const proxy = await startProxy({
    routes: [
      { path: '/list', upstream: { nodes: [{ url: a.url, weight: 1 }, { url: b.url, weight: 3 }] } },
      { path: '/map', upstream: { nodes: [a.url, c.url], weights: { [c.url]: 2 } } }
    ]
  })
  t.after(() => Promise.all([proxy.close(), a.close(), b.close(), c.close()]))
  assert.deepEqual(tally(await bodies(`${proxy.url}/list`, 400)), { a: 100, b: 300 })
  const seq = await bodies(`${proxy.url}/map`, 6)
  assert.deepEqual(tally(seq), { a: 2, c: 4 })
  assert.notDeepEqual(seq.slice(0, 2), ['c', 'c'], 'smooth: the heavy node does not take its share in one burst')
})

test('least-requests follows in-flight counts: a slow node holding a request gets no more until it answers', async (t) => {
  const held: (() => void)[] = []
  const slow = await startOrigin((_req, res) => { held.push(() => res.end('slow')) })
  const [fast] = await named('fast')
  const proxy = await startProxy({ upstreams: { '*': { nodes: [slow.url, fast.url], policy: 'least-requests' } } })
  t.after(() => Promise.all([proxy.close(), slow.close(), fast.close()]))
  const pending = send(`${proxy.url}/`)
  await eventually('the slow node holds one request', () => held.length === 1 || slow.requests.length === 1)
  const seen = await bodies(`${proxy.url}/`, 30)
  assert.deepEqual(tally(seen), { fast: 30 }, 'while the slow node has one in flight, the idle one takes everything')
  held.forEach((f) => f())
  assert.equal((await pending).status, 200)
})

test('random-two spreads over every node', async (t) => {
  const [a, b, c] = await named('a', 'b', 'c')
  const proxy = await startProxy({ upstreams: { '*': { nodes: [a.url, b.url, c.url], policy: 'random-two' } } })
  t.after(() => Promise.all([proxy.close(), a.close(), b.close(), c.close()]))
  const t3 = tally(await bodies(`${proxy.url}/`, 300))
  for (const n of ['a', 'b', 'c']) assert.ok((t3[n] ?? 0) > 50, `${n} got ${t3[n] ?? 0} of 300`)
})

test('first: ordered failover to the next node, and back when the first is healthy again', async (t) => {
  const a = await startOrigin((req, res) => res.end('a'))
  const [b] = await named('b')
  const port = a.port
  const proxy = await startProxy({
    upstreams: { '*': { nodes: [a.url, b.url], policy: 'first', healthCheck: { path: '/', interval: '30ms', unhealthyAfter: 1, healthyAfter: 1 } } }
  })
  t.after(() => Promise.all([proxy.close(), b.close()]))
  assert.deepEqual(tally(await bodies(`${proxy.url}/`, 10)), { a: 10 })
  await a.close()
  assert.deepEqual(tally(await bodies(`${proxy.url}/`, 10)), { b: 10 }, 'fails over (retry, then ejection or the check)')
  const back = http.createServer((_req, res) => res.end('a'))
  await new Promise<void>((resolve) => back.listen(port, '127.0.0.1', resolve))
  t.after(() => new Promise<void>((resolve) => { back.closeAllConnections(); back.close(() => resolve()) }))
  await eventually('traffic back on the first node', async () => (await send(`${proxy.url}/`)).body.toString() === 'a')
  assert.deepEqual(tally(await bodies(`${proxy.url}/`, 10)), { a: 10 })
})

test('hash: the same key always reaches the same node; keys spread; no key means any node', async (t) => {
  const origins = await named('a', 'b', 'c', 'd')
  const proxy = await startProxy({ upstreams: { '*': { nodes: origins.map((o) => o.url), policy: 'hash', hashKey: 'header:X-User' } } })
  t.after(() => Promise.all([proxy.close(), ...origins.map((o) => o.close())]))
  const owners = new Set<string>()
  for (let u = 0; u < 40; u++) {
    const seen = new Set(await bodies(`${proxy.url}/`, 5, { 'x-user': `user-${u}` }))
    assert.equal(seen.size, 1, `user-${u} stays on one node`)
    owners.add([...seen][0])
  }
  assert.ok(owners.size >= 3, `40 keys spread over the nodes (${owners.size} used)`)
  assert.equal(new Set(await bodies(`${proxy.url}/`, 8)).size > 1, true, 'no key: rotates')
})

test('hash on client-ip, uri, cookie and query keys', async (t) => {
  const origins = await named('a', 'b', 'c')
  const mk = (hashKey: string, p: string): { path: string, upstream: object } => ({ path: p, upstream: { nodes: origins.map((o) => o.url), policy: 'hash', hashKey } })
  const proxy = await startProxy({ routes: [mk('client-ip', '/ip'), mk('uri', '/uri'), mk('cookie:sid', '/cookie'), mk('query:u', '/query')] })
  t.after(() => Promise.all([proxy.close(), ...origins.map((o) => o.close())]))
  assert.equal(new Set(await bodies(`${proxy.url}/ip`, 9)).size, 1)
  assert.equal(new Set(await bodies(`${proxy.url}/uri/x`, 9)).size, 1)
  assert.equal(new Set(await bodies(`${proxy.url}/cookie`, 9, { cookie: 'a=1; sid=abc' })).size, 1)
  assert.equal(new Set(await bodies(`${proxy.url}/query?u=7&z=1`, 9)).size, 1)
})

test('sticky: a cookie keeps a client on one node for 100 requests, without revealing it; moves when that node is down', async (t) => {
  const [a, b, c] = await named('a', 'b', 'c')
  const proxy = await startProxy({
    upstreams: { '*': { nodes: [a.url, b.url, c.url], sticky: { cookie: 'lb', ttl: '1h' } } }
  })
  t.after(() => Promise.all([proxy.close(), a.close(), b.close(), c.close()]))
  const first = await send(`${proxy.url}/`)
  const setCookie = String(first.headers['set-cookie'])
  assert.match(setCookie, /^lb=[A-Za-z0-9_-]{22}; Path=\/; Max-Age=3600; HttpOnly; SameSite=Lax$/)
  for (const o of [a, b, c]) {
    assert.ok(!setCookie.includes(String(o.port)) && !setCookie.includes('127.0.0.1'), 'the value names no address')
  }
  const cookie = setCookie.split(';')[0]
  const home = first.body.toString()
  const seen = await bodies(`${proxy.url}/`, 100, { cookie })
  assert.deepEqual(tally(seen), { [home]: 100 })
  const again = await send(`${proxy.url}/`, { headers: { cookie } })
  assert.equal(again.headers['set-cookie'], undefined, 'no new cookie while it holds')
  await ({ a, b, c } as Record<string, Origin>)[home].close()
  const moved = await send(`${proxy.url}/`, { headers: { cookie } })
  assert.equal(moved.status, 200)
  assert.notEqual(moved.body.toString(), home)
  assert.match(String(moved.headers['set-cookie']), /^lb=/, 'a new cookie for the new node')
  const next = String(moved.headers['set-cookie']).split(';')[0]
  assert.deepEqual(new Set(await bodies(`${proxy.url}/`, 20, { cookie: next })), new Set([moved.body.toString()]))
})

test('named pools: routes share one pool (one state); node state survives a reload; a removed node drains', async (t) => {
  let held: { name: string, release: () => void } | null = null
  const holding = (name: string): Promise<Origin> => startOrigin((req, res) => {
    if (req.url?.endsWith('/hold') === true) held = { name, release: () => res.end(`${name}-held`) }
    else res.end(name)
  })
  const a = await holding('a')
  const b = await holding('b')
  const byName: Record<string, Origin> = { a, b }
  const dead = await closedPort()
  const pools = { web: { nodes: [a.url, b.url, `http://127.0.0.1:${dead}`] } }
  const proxy = await startProxy({ pools, routes: [{ path: '/one', upstream: { pool: 'web' } }, { path: '/two', upstream: { pool: 'web' } }] })
  t.after(() => Promise.all([proxy.close(), a.close(), b.close()]))
  assert.equal(proxy.proxy.pools().length, 1, 'one pool for both routes')
  await bodies(`${proxy.url}/one`, 3)
  await bodies(`${proxy.url}/two`, 3)
  const before = proxy.proxy.pools()[0].nodes.find((n) => n.id.endsWith(`:${dead}`))!
  assert.equal(before.status, 'ejected', 'one state: the failure seen through either route ejects the node once')
  assert.equal(before.ejections, 1)
  const pending = send(`${proxy.url}/one/hold`)
  await eventually('a node holds a request', () => held !== null)
  const holder = held!.name
  const other = holder === 'a' ? 'b' : 'a'

  // Reload: the same pool, another route; node state is kept.
  await proxy.proxy.reload({ pools, routes: [{ path: '/one', upstream: { pool: 'web' } }, { path: '/three', upstream: { pool: 'web' } }] })
  const after = proxy.proxy.pools()[0].nodes
  assert.equal(after.find((n) => n.id.endsWith(`:${dead}`))!.status, 'ejected', 'health survives the reload')
  assert.equal(after.find((n) => n.id.endsWith(`:${dead}`))!.ejections, 1)
  assert.equal(after.find((n) => n.id === byName[holder].url)!.inflight, 1, 'in-flight count survives')

  // Reload without the holding node: it finishes its request and gets no new one.
  const reloaded = proxy.proxy.reload({ pools: { web: { nodes: [byName[other].url] } }, routes: [{ path: '/one', upstream: { pool: 'web' } }] })
  assert.deepEqual(tally(await bodies(`${proxy.url}/one`, 6)), { [other]: 6 })
  held!.release()
  const r = await pending
  assert.equal(r.status, 200)
  assert.equal(r.body.toString(), `${holder}-held`, 'the removed node drained')
  await reloaded
})

test('handler members: weighted with nodes, health-checked in process', async (t) => {
  let healthy = true
  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    if (req.url === '/healthz') res.statusCode = healthy ? 200 : 503
    res.end('handler')
  }
  const [n] = await named('node')
  const proxy = await startProxy({
    upstreams: {
      '*': {
        nodes: [{ handler, weight: 3 }, { url: n.url, weight: 1 }],
        healthCheck: { path: '/healthz', interval: '30ms', unhealthyAfter: 1, healthyAfter: 1 }
      }
    }
  })
  t.after(() => Promise.all([proxy.close(), n.close()]))
  assert.deepEqual(tally(await bodies(`${proxy.url}/`, 40)), { handler: 30, node: 10 })
  healthy = false
  await eventually('the handler is unhealthy', () => proxy.proxy.pools()[0].nodes.some((m) => m.status === 'unhealthy'))
  assert.deepEqual(tally(await bodies(`${proxy.url}/`, 10)), { node: 10 })
  healthy = true
  await eventually('the handler is back', () => proxy.proxy.pools()[0].nodes.every((m) => m.status === 'healthy'))
})

test('DNS: a named node is re-resolved; each address is a member with the name as Host; a failed lookup keeps the last', async (t) => {
  const one = await startOrigin((req, res) => res.end(`one ${req.headers.host}`))
  const two = http.createServer((req, res) => res.end(`two ${req.headers.host}`))
  await new Promise<void>((resolve) => two.listen(one.port, '127.0.0.2', resolve))
  t.after(() => new Promise<void>((resolve) => { two.closeAllConnections(); two.close(() => resolve()) }))
  let answer: string[] | Error = ['127.0.0.1']
  const lookup = async (): Promise<string[]> => {
    if (answer instanceof Error) throw answer
    return answer
  }
  const { createProxy } = await import('../../src/index.js')
  const { captureLogs } = await import('../helpers/servers.js')
  const logs = captureLogs()
  const proxy = createProxy({
    listen: [{ host: '127.0.0.1', port: 0 }],
    routes: [{ upstream: { nodes: [`http://svc.test:${one.port}`], dnsRefresh: '30ms' }, preserveHost: false }]
  }, { logger: logs.logger, lookup })
  const [addr] = await proxy.listen()
  t.after(() => Promise.all([proxy.close(), one.close()]))
  await eventually('resolved to 127.0.0.1', () => proxy.pools()[0].nodes[0].id.endsWith('(127.0.0.1)'))
  assert.equal((await send(`${addr.url}/`)).body.toString(), `one svc.test:${one.port}`)
  answer = ['127.0.0.1', '127.0.0.2']
  await eventually('two members', () => proxy.pools()[0].nodes.length === 2)
  assert.deepEqual(new Set(await bodies(`${addr.url}/`, 4)), new Set([`one svc.test:${one.port}`, `two svc.test:${one.port}`]))
  answer = new Error('SERVFAIL')
  await eventually('a warning for the failed lookup', () => logs.lines.some((l) => l.level === 40 && String(l.msg).includes('resolving svc.test failed')))
  assert.equal(proxy.pools()[0].nodes.length, 2, 'the last known addresses are kept')
  assert.equal((await send(`${addr.url}/`)).status, 200)
})

test('bad pool settings: each is file:line key.path: message and exit status 2', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'portico-pools-'))
  const cases: [string, RegExp][] = [
    ['upstreams:\n  "*":\n    nodes: ["http://127.0.0.1:1"]\n    policy: fastest\n', /portico\.yaml:4 {2}upstreams\.\*\.policy: expected one of round-robin/],
    ['upstreams:\n  "*":\n    nodes:\n      - url: "http://127.0.0.1:1"\n        weight: 0\n', /portico\.yaml:5 {2}upstreams\.\*\.nodes\.0\.weight: expected a weight greater than 0/],
    ['upstreams:\n  "*":\n    nodes: ["http://127.0.0.1:1"]\n    policy: hash\n', /portico\.yaml:4 {2}upstreams\.\*\.policy: policy "hash" needs a hashKey/],
    ['upstreams:\n  "*":\n    pool: web\n', /portico\.yaml:3 {2}upstreams\.\*\.pool: no pool "web" under pools: \(there are none\)/],
    ['upstreams:\n  "*":\n    nodes: ["http://127.0.0.1:1"]\n    healthCheck:\n      path: healthz\n', /portico\.yaml:5 {2}upstreams\.\*\.healthCheck\.path: expected a path starting with "\/"/]
  ]
  for (const [yaml, expected] of cases) {
    const file = path.join(dir, 'portico.yaml')
    writeFileSync(file, yaml)
    const r = await runCli(['check', '--config', file])
    assert.equal(r.code, 2, yaml)
    assert.match(r.stderr, expected)
  }
})
