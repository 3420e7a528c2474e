/**
 * The admin API (docs/admin.md) and the Prometheus metrics (docs/metrics.md) with real traffic: figures checked
 * after a known number of requests of each kind, bounded label sets, two proxies in one process kept apart, the
 * config view with secrets redacted, the route explanation, pools, reload through the API, and the token.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import { createProxy, type PorticoConfig, type Proxy } from '../../src/index.js'
import { loadConfigObject } from '../../src/config/load.js'
import { startOrigin, send } from '../helpers/servers.js'

interface Running { proxy: Proxy, url: string, admin: string }

async function start (t: { after: (fn: () => Promise<void>) => void }, config: PorticoConfig, configSource?: () => Promise<PorticoConfig>): Promise<Running> {
  const proxy = createProxy({ listen: [{ host: '127.0.0.1', port: 0 }], admin: { port: 0 }, ...config }, {
    configSource: configSource === undefined ? undefined : async () => await loadConfigObject({ listen: [{ host: '127.0.0.1', port: 0 }], admin: { port: 0 }, ...await configSource() })
  })
  const [addr] = await proxy.listen()
  t.after(() => proxy.close({ drainTimeout: 500 }))
  return { proxy, url: addr.url, admin: proxy.adminAddress!.url }
}

/** The value of one sample line of the exposition (labels in any order), or undefined. */
function sample (text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue
    const m = /^([a-z_:]+)(\{([^}]*)\})? (\S+)$/.exec(line)
    if (m === null || m[1] !== name) continue
    const got: Record<string, string> = {}
    for (const pair of (m[3] ?? '').match(/[a-z_]+="(?:[^"\\]|\\.)*"/g) ?? []) {
      const eq = pair.indexOf('=')
      got[pair.slice(0, eq)] = pair.slice(eq + 2, -1)
    }
    if (Object.entries(labels).every(([k, v]) => got[k] === v) && Object.keys(got).length === Object.keys(labels).length) return Number(m[4])
  }
  return undefined
}

async function metrics (admin: string): Promise<string> {
  const r = await send(`${admin}/metrics`)
  assert.equal(r.status, 200)
  assert.match(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/)
  return r.body.toString()
}

test('metrics after known traffic: requests by route, method and status class, durations, errors, rule outcomes, upstream time, node health', async (t) => {
  const origin = await startOrigin((req, res) => {
    req.resume()
    res.end('ok')
  })
  t.after(() => origin.close())
  const p = await start(t, {
    routes: [
      { host: 'a.test', upstream: [origin.url] },
      { host: 'deny.test', upstream: [origin.url], deny: ['loopback'] },
      { host: 'limited.test', upstream: [origin.url], rateLimit: { rate: '1/h' } }
    ]
  })
  for (let i = 0; i < 5; i++) assert.equal((await send(p.url, { headers: { host: 'a.test' } })).status, 200)
  for (let i = 0; i < 2; i++) assert.equal((await send(p.url, { method: 'POST', headers: { host: 'a.test', 'content-length': '2' }, body: 'hi' })).status, 200)
  assert.equal((await send(p.url, { method: 'PROPFIND', headers: { host: 'a.test' } })).status, 200)
  for (let i = 0; i < 3; i++) assert.equal((await send(p.url, { headers: { host: 'nowhere.test' } })).status, 404)
  for (let i = 0; i < 2; i++) assert.equal((await send(p.url, { headers: { host: 'deny.test' } })).status, 403)
  assert.deepEqual([(await send(p.url, { headers: { host: 'limited.test' } })).status, (await send(p.url, { headers: { host: 'limited.test' } })).status], [200, 429])

  const m = await metrics(p.admin)
  assert.equal(sample(m, 'portico_requests_total', { route: 'a.test', method: 'GET', status_class: '2xx' }), 5)
  assert.equal(sample(m, 'portico_requests_total', { route: 'a.test', method: 'POST', status_class: '2xx' }), 2)
  assert.equal(sample(m, 'portico_requests_total', { route: 'a.test', method: 'other', status_class: '2xx' }), 1, 'a method outside the known set is "other"')
  assert.equal(sample(m, 'portico_requests_total', { route: '(none)', method: 'GET', status_class: '4xx' }), 3)
  assert.equal(sample(m, 'portico_errors_total', { route: '(none)', code: 'PORTICO_ERR_NO_ROUTE' }), 3)
  assert.equal(sample(m, 'portico_rule_outcomes_total', { route: 'deny.test', outcome: 'denied' }), 2)
  assert.equal(sample(m, 'portico_rule_outcomes_total', { route: 'limited.test', outcome: 'rate_limited' }), 1)
  assert.equal(sample(m, 'portico_request_duration_seconds_count', { route: 'a.test' }), 8)
  assert.equal(sample(m, 'portico_upstream_duration_seconds_count', { pool: 'a.test', node: origin.url }), 8)
  assert.equal(sample(m, 'portico_upstream_node_healthy', { pool: 'a.test', node: origin.url, status: 'healthy' }), 1)
  assert.equal(sample(m, 'portico_requests_in_flight'), 0)
  assert.equal(sample(m, 'portico_connections_active', { listener: new URL(p.url).host, protocol: 'http' }) !== undefined, true)
  assert.ok((sample(m, 'portico_process_cpu_user_seconds_total') ?? -1) >= 0, 'process metrics')
  for (const line of m.split('\n')) {
    if (line.startsWith('portico_requests_total{')) assert.doesNotMatch(line, /nowhere\.test|PROPFIND/, 'no label value comes from the request')
  }
})

test('two proxies in one process keep their figures apart; admin.metrics false turns them off', async (t) => {
  const origin = await startOrigin()
  t.after(() => origin.close())
  const a = await start(t, { routes: [{ host: '*', upstream: [origin.url] }] })
  const b = await start(t, { routes: [{ host: '*', upstream: [origin.url] }] })
  const off = await start(t, { routes: [{ host: '*', upstream: [origin.url] }], admin: { port: 0, metrics: false } })
  for (let i = 0; i < 3; i++) await send(a.url)
  await send(b.url)
  assert.equal(sample(await metrics(a.admin), 'portico_requests_total', { route: '*', method: 'GET', status_class: '2xx' }), 3)
  assert.equal(sample(await metrics(b.admin), 'portico_requests_total', { route: '*', method: 'GET', status_class: '2xx' }), 1)
  assert.equal((await send(`${off.admin}/metrics`)).status, 404)
})

test('GET /config redacts secrets; /routes, /routes/explain and /pools describe what runs', async (t) => {
  process.env.PORTICO_TEST_ADMIN_TOKEN = 's3cret-token'
  t.after(() => { delete process.env.PORTICO_TEST_ADMIN_TOKEN })
  const origin = await startOrigin()
  t.after(() => origin.close())
  const p = await start(t, {
    admin: { port: 0, tokenEnv: 'PORTICO_TEST_ADMIN_TOKEN' },
    routes: [
      { host: 'api.', path: '/v1', stripPrefix: true, upstream: { nodes: [origin.url], policy: 'least-requests' }, rateLimit: { rate: '10/s' }, basicAuth: { users: ['alice:$scrypt$ln=15,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'] } },
      { host: '*', path: '/healthz', respond: { status: 200, body: 'ok' } },
      { host: '*', upstream: [origin.url] }
    ]
  })
  const auth = { authorization: 'Bearer s3cret-token' }
  assert.equal((await send(`${p.admin}/config`)).status, 401, 'the token is required')
  const config = await send(`${p.admin}/config`, { headers: auth })
  assert.equal(config.status, 200)
  const text = config.body.toString()
  assert.doesNotMatch(text, /s3cret-token/)
  assert.doesNotMatch(text, /\$scrypt\$/, 'password hashes are not shown')
  const shown = JSON.parse(text) as { admin: { token: string }, routes: { name: string, rules: { basicAuth: { users: { name: string }[] } } | null }[] }
  assert.equal(shown.admin.token, '[redacted]')
  assert.equal(shown.routes[0].rules?.basicAuth.users[0].name, 'alice')

  const routes = JSON.parse((await send(`${p.admin}/routes`, { headers: auth })).body.toString()) as { host: string }[]
  assert.deepEqual(routes.map((r) => r.host), ['api.', '*'])
  const why = JSON.parse((await send(`${p.admin}/routes/explain?host=api.example.com&path=/v1/users?x=1&method=post`, { headers: auth })).body.toString()) as Record<string, unknown>
  assert.equal(why.matched, true)
  assert.equal(why.hostKey, 'api.')
  assert.equal(why.hostKind, 'prefix')
  assert.equal(why.route, 'api./v1')
  assert.equal(why.stripPrefix, true)
  assert.equal(why.method, 'POST')
  assert.deepEqual(why.rules, ['basicAuth', 'rateLimit', 'rewriteRedirects', 'rewriteCookies'])
  assert.deepEqual(why.upstream, { pool: 'api./v1', policy: 'least-requests', nodes: [origin.url] })
  const health = JSON.parse((await send(`${p.admin}/routes/explain?host=x.test&path=/healthz`, { headers: auth })).body.toString()) as Record<string, unknown>
  assert.equal(health.upstream, 'answered by the route')
  const traversal = JSON.parse((await send(`${p.admin}/routes/explain?host=x.test&path=/../etc`, { headers: auth })).body.toString()) as Record<string, unknown>
  assert.equal(traversal.matched, false)
  assert.equal((await send(`${p.admin}/routes/explain`, { headers: auth })).status, 400)
  const pools = JSON.parse((await send(`${p.admin}/pools`, { headers: auth })).body.toString()) as { name: string, nodes: { id: string, status: string }[] }[]
  assert.deepEqual(pools.map((x) => [x.name, x.nodes.map((n) => n.status)]).sort(), [['*', ['healthy']], ['api./v1', ['healthy']]])
})

test('POST /config/reload: a valid source swaps in at once, an invalid one keeps the running config and says why', async (t) => {
  const origin = await startOrigin((_req, res) => res.end('origin'))
  t.after(() => origin.close())
  let next: PorticoConfig = { routes: [{ host: '*', upstream: [origin.url] }] }
  const p = await start(t, { routes: [{ host: '*', respond: { status: 200, body: 'before' } }] }, async () => next)
  assert.equal((await send(p.url)).body.toString(), 'before')
  const ok = await send(`${p.admin}/config/reload`, { method: 'POST' })
  assert.equal(ok.status, 200)
  assert.deepEqual(JSON.parse(ok.body.toString()), { ok: true })
  assert.equal((await send(p.url)).body.toString(), 'origin')
  next = { routes: [{ host: '*', upstream: ['not a url'] }] }
  const bad = await send(`${p.admin}/config/reload`, { method: 'POST' })
  assert.equal(bad.status, 422)
  assert.match(JSON.parse(bad.body.toString()).error as string, /routes\.0\.upstream/)
  assert.equal((await send(p.url)).body.toString(), 'origin', 'the running config stays')
  assert.equal((await send(`${p.admin}/config/reload`)).status, 405)
  const m = await metrics(p.admin)
  assert.equal(sample(m, 'portico_config_reloads_total', { result: 'ok', source: 'admin' }), 1)
  assert.equal(sample(m, 'portico_config_reloads_total', { result: 'failed', source: 'admin' }), 1)
})

test('a proxy created from an object has no source to reload from', async (t) => {
  const p = await start(t, { routes: [{ host: '*', respond: { status: 200 } }] })
  const r = await new Promise<{ status: number, body: string }>((resolve, reject) => {
    http.request(`${p.admin}/config/reload`, { method: 'POST' }, (res) => {
      let body = ''
      res.on('data', (c: Buffer) => { body += c.toString() })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    }).on('error', reject).end()
  })
  assert.equal(r.status, 422)
  assert.match(r.body, /no config source/)
})

test('TLS handshakes are counted by listener and result, connections by listener and protocol', async (t) => {
  const { testCert } = await import('../helpers/tls.js')
  const https = await import('node:https')
  const net = await import('node:net')
  const cert = await testCert(['a.test'])
  const proxy = createProxy({
    listen: [{ host: '127.0.0.1', port: 0, tls: true }],
    tls: { certificates: [{ hosts: ['a.test'], cert: cert.certFile, key: cert.keyFile }] },
    admin: { port: 0 },
    routes: [{ host: '*', respond: { status: 200, body: 'ok' } }]
  })
  const [addr] = await proxy.listen()
  t.after(() => proxy.close({ drainTimeout: 500 }))
  for (let i = 0; i < 2; i++) {
    await new Promise<void>((resolve, reject) => {
      https.get({ host: '127.0.0.1', port: addr.port, servername: 'a.test', ca: cert.cert, agent: false }, (res) => { res.resume(); res.on('end', resolve) }).on('error', reject)
    })
  }
  // Not TLS at all: the handshake fails.
  await new Promise<void>((resolve) => {
    const s = net.connect(addr.port, '127.0.0.1', () => s.end('GET / HTTP/1.1\r\nHost: a.test\r\n\r\n'))
    s.on('close', () => resolve())
    s.on('error', () => resolve())
    s.resume()
  })
  const m = await metrics(proxy.adminAddress!.url)
  const listener = `127.0.0.1:${addr.port}`
  assert.equal(sample(m, 'portico_tls_handshakes_total', { listener, result: 'ok' }), 2)
  assert.equal(sample(m, 'portico_tls_handshakes_total', { listener, result: 'failed' }), 1)
  assert.notEqual(sample(m, 'portico_connections_active', { listener, protocol: 'https+h2' }), undefined)
})
