#!/usr/bin/env node
// Measures which cache policy library covers more of the RFC 9111 shared-cache behaviours the proxy cache needs:
// http-cache-semantics (CachePolicy, shared: true) against undici 7's cache interceptor (type: 'shared', a
// MemoryCacheStore). One real origin (node:http on 127.0.0.1:0) answers every case; undici verdicts come from
// counting origin requests, http-cache-semantics verdicts from the policy's answers for real origin responses.
// Run from the repository root: node docs/decisions/0001-cache-library-compare.mjs   (no network besides 127.0.0.1; takes about 15 s)
import http from 'node:http'
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import CachePolicy from 'http-cache-semantics'
import { Agent, interceptors, cacheStores } from 'undici'

const version = (name) => JSON.parse(readFileSync(new URL(`../../node_modules/${name}/package.json`, import.meta.url), 'utf8')).version
const HCS_VERSION = version('http-cache-semantics')
const UNDICI_VERSION = version('undici')
const NP = 'not provided — the proxy must build it'

// ---------------------------------------------------------------------------------------------------------------
// The origin. Every check registers its own handler under a fresh path, so origin hits are counted per check.

const routes = new Map()
const hits = new Map()
const seen = new Map()
let nextId = 0

const server = http.createServer((req, res) => {
  const path = req.url.split('?')[0]
  hits.set(path, (hits.get(path) ?? 0) + 1)
  if (!seen.has(path)) seen.set(path, [])
  seen.get(path).push({ method: req.method, headers: req.headers })
  const handler = routes.get(path)
  if (!handler) {
    res.writeHead(404).end()
    return
  }
  handler(req, res, hits.get(path))
})
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
const HOST = `127.0.0.1:${server.address().port}`
const ORIGIN = `http://${HOST}`

function route (handler, path = `/r${++nextId}`) {
  routes.set(path, handler)
  return path
}
const hitCount = (path) => hits.get(path) ?? 0

/** A handler answering `status` with `headers` (a function of the hit number, or an object) and a body. */
function reply (headers, { status = 200, body = (n) => `body-${n}` } = {}) {
  return (req, res, n) => {
    const h = typeof headers === 'function' ? headers(n, req) : headers
    const s = typeof status === 'function' ? status(n, req) : status
    const b = typeof body === 'function' ? body(n, req) : body
    res.writeHead(s, h)
    res.end(s === 304 || req.method === 'HEAD' ? undefined : b)
  }
}

const httpDate = (offsetMs = 0) => new Date(Date.now() + offsetMs).toUTCString()
const DAY = 86400000

// ---------------------------------------------------------------------------------------------------------------
// http-cache-semantics harness: the origin is fetched with node:http (headers as a Node proxy sees them), the
// policy is built from the real response, and time is moved by overriding now() (the documented test hook).

let clockOffset = 0
class Policy extends CachePolicy {
  now () { return Date.now() + clockOffset }
}

function fetchOrigin (path, { method = 'GET', headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: server.address().port, path, method, headers, agent: false }, (res) => {
      const chunks = []
      res.on('data', (c) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

const hreq = (path, headers = {}, method = 'GET') => ({ url: path, method, headers: { host: HOST, ...headers } })

async function hcsStore (path, headers = {}, method = 'GET') {
  const res = await fetchOrigin(path, { method, headers })
  const policy = new Policy(hreq(path, headers, method), res, { shared: true })
  return { res, policy }
}

/** 'fresh' (reuse, no origin contact), 'swr' (reuse + background revalidation) or 'origin'. */
function hcsDecide (policy, path, headers = {}, method = 'GET') {
  const r = policy.evaluateRequest(hreq(path, headers, method))
  if (r.response && !r.revalidation) return 'fresh'
  if (r.response && r.revalidation && !r.revalidation.synchronous) return 'swr'
  return 'origin'
}

// ---------------------------------------------------------------------------------------------------------------
// undici harness: a shared cache interceptor over an Agent, as the brief specifies. Hit or miss is read from
// the origin's request count.

const agents = []
function undiciAgent (opts = {}, extra = []) {
  const store = new cacheStores.MemoryCacheStore()
  const agent = new Agent().compose(...extra, interceptors.cache({ store, type: 'shared', ...opts }))
  agents.push(agent)
  return { agent, store }
}
const U = undiciAgent().agent

async function uget (path, { method = 'GET', headers = {}, agent = U } = {}) {
  try {
    const r = await agent.request({ origin: ORIGIN, path, method, headers })
    const body = await r.body.text()
    return { status: r.statusCode, headers: r.headers, body }
  } catch (err) {
    return { status: 0, error: err.code ?? err.message, headers: {}, body: '' }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Verdicts: every check returns a list of [label, passed, detail]. All passed: pass; none: FAIL; else partial.

function judge (checks) {
  const passed = checks.filter((c) => c[1]).length
  const v = passed === checks.length ? 'pass' : passed === 0 ? 'FAIL' : 'partial'
  const failed = checks.filter((c) => !c[1]).map((c) => `✗ ${c[0]}${c[2] ? ` (${c[2]})` : ''}`)
  const ok = checks.filter((c) => c[1] && c[2]).map((c) => `✓ ${c[0]} (${c[2]})`)
  return { v, note: [...failed, ...ok].join('; ') }
}
const notProvided = (note) => ({ v: NP, note })

const rows = []
const extras = []
function row (behaviour, rfc, hcs, undici) { rows.push({ behaviour, rfc, hcs, undici }) }
function extra (behaviour, rfc, hcs, undici) { extras.push({ behaviour, rfc, hcs, undici }) }

// ---------------------------------------------------------------------------------------------------------------
// The behaviours.

row('no-store response not stored', 'RFC 9111 §5.2.2.5', async () => {
  const p = route(reply({ 'cache-control': 'no-store, max-age=60' }))
  const { policy } = await hcsStore(p)
  return judge([['storable() false', !policy.storable()]])
}, async () => {
  const p = route(reply({ 'cache-control': 'no-store, max-age=60' }))
  await uget(p); await uget(p)
  return judge([['2nd GET reaches origin', hitCount(p) === 2, `${hitCount(p)} origin hits`]])
})

row('private response not stored by a shared cache', 'RFC 9111 §5.2.2.7', async () => {
  const p = route(reply({ 'cache-control': 'private, max-age=60' }))
  const { policy } = await hcsStore(p)
  return judge([['storable() false', !policy.storable()]])
}, async () => {
  const p = route(reply({ 'cache-control': 'private, max-age=60' }))
  await uget(p); await uget(p)
  return judge([['2nd GET reaches origin', hitCount(p) === 2, `${hitCount(p)} origin hits`]])
})

row('s-maxage wins over max-age', 'RFC 9111 §5.2.2.10, §4.2.1', async () => {
  const a = route(reply({ 'cache-control': 'max-age=0, s-maxage=60' }))
  const b = route(reply({ 'cache-control': 'max-age=60, s-maxage=0' }))
  const pa = (await hcsStore(a)).policy
  const pb = (await hcsStore(b)).policy
  return judge([
    ['max-age=0, s-maxage=60 fresh', hcsDecide(pa, a) === 'fresh'],
    ['max-age=60, s-maxage=0 stale', hcsDecide(pb, b) === 'origin']
  ])
}, async () => {
  const a = route(reply({ 'cache-control': 'max-age=0, s-maxage=60' }))
  const b = route(reply({ 'cache-control': 'max-age=60, s-maxage=0' }))
  await uget(a); await uget(a); await uget(b); await uget(b)
  return judge([
    ['max-age=0, s-maxage=60 reused', hitCount(a) === 1],
    ['max-age=60, s-maxage=0 not reused', hitCount(b) === 2]
  ])
})

row('Expires used when there is no max-age', 'RFC 9111 §5.3, §4.2.1', async () => {
  const a = route(reply(() => ({ expires: httpDate(60000) })))
  const b = route(reply(() => ({ expires: httpDate(60000), 'cache-control': 'max-age=0' })))
  const pa = (await hcsStore(a)).policy
  const pb = (await hcsStore(b)).policy
  const ttl = pa.timeToLive()
  return judge([
    ['Expires +60 s fresh', hcsDecide(pa, a) === 'fresh' && ttl > 55000 && ttl <= 61000, `ttl ${ttl} ms`],
    ['max-age=0 overrides Expires', hcsDecide(pb, b) === 'origin']
  ])
}, async () => {
  const a = route(reply(() => ({ expires: httpDate(60000) })))
  const b = route(reply(() => ({ expires: httpDate(60000), 'cache-control': 'max-age=0' })))
  await uget(a); await uget(a); await uget(b); await uget(b)
  return judge([['Expires +60 s reused', hitCount(a) === 1], ['max-age=0 overrides Expires', hitCount(b) === 2]])
})

row('invalid Expires ("0") means already expired', 'RFC 9111 §5.3', async () => {
  const p = route(reply({ expires: '0' }))
  const { policy } = await hcsStore(p)
  return judge([['not fresh', hcsDecide(policy, p) === 'origin', `ttl ${policy.timeToLive()} ms`]])
}, async () => {
  const p = route(reply({ expires: '0' }))
  await uget(p); await uget(p)
  return judge([['2nd GET reaches origin', hitCount(p) === 2]])
})

row('Authorization: not stored without public/s-maxage/must-revalidate; stored with s-maxage', 'RFC 9111 §3.5', async () => {
  const auth = { authorization: 'Bearer alice' }
  const a = route(reply({ 'cache-control': 'max-age=60' }))
  const b = route(reply({ 'cache-control': 's-maxage=60' }))
  const c = route(reply({ 'cache-control': 'public, max-age=60' }))
  const pa = (await hcsStore(a, auth)).policy
  const pb = (await hcsStore(b, auth)).policy
  const pc = (await hcsStore(c, auth)).policy
  return judge([
    ['max-age=60 not stored', !pa.storable()],
    ['s-maxage=60 stored and fresh', pb.storable() && hcsDecide(pb, b, auth) === 'fresh'],
    ['public, max-age=60 stored', pc.storable()]
  ])
}, async () => {
  const headers = { authorization: 'Bearer alice' }
  const a = route(reply({ 'cache-control': 'max-age=60' }))
  const b = route(reply({ 'cache-control': 's-maxage=60' }))
  const c = route(reply({ 'cache-control': 'public, max-age=60' }))
  for (const p of [a, a, b, b, c, c]) await uget(p, { headers })
  return judge([
    ['max-age=60 not stored', hitCount(a) === 2],
    ['s-maxage=60 stored', hitCount(b) === 1],
    ['public, max-age=60 stored', hitCount(c) === 1]
  ])
})

row('must-understand + no-store with an understood status is stored', 'RFC 9111 §5.2.2.3', async () => {
  const p = route(reply({ 'cache-control': 'must-understand, no-store, max-age=60' }))
  const { policy } = await hcsStore(p)
  return judge([['200 stored', policy.storable(), `storable() ${policy.storable()}`]])
}, async () => {
  const p = route(reply({ 'cache-control': 'must-understand, no-store, max-age=60' }))
  await uget(p); await uget(p)
  return judge([['200 stored', hitCount(p) === 1, `${hitCount(p)} origin hits`]])
})

row('heuristic freshness only with Last-Modified and a heuristically cacheable status', 'RFC 9111 §4.2.2', async () => {
  const lm = httpDate(-10 * DAY)
  const a = route(reply({ 'last-modified': lm }))
  const b = route(reply({ 'last-modified': lm, location: '/elsewhere' }, { status: 302 }))
  const c = route(reply({}))
  const pa = (await hcsStore(a)).policy
  const pb = (await hcsStore(b)).policy
  const pc = (await hcsStore(c)).policy
  const ttl = pa.timeToLive()
  return judge([
    ['200 + Last-Modified 10 d ago fresh ~1 d', hcsDecide(pa, a) === 'fresh' && Math.abs(ttl - DAY) < 5000, `ttl ${Math.round(ttl / 1000)} s`],
    ['302 without explicit freshness not reused', hcsDecide(pb, b) === 'origin'],
    ['200 without Last-Modified not fresh', hcsDecide(pc, c) === 'origin']
  ])
}, async () => {
  const lm = httpDate(-10 * DAY)
  const a = route(reply({ 'last-modified': lm }))
  const b = route(reply({ 'last-modified': lm, location: '/elsewhere' }, { status: 302 }))
  const c = route(reply({}))
  for (const p of [a, a, b, b, c, c]) await uget(p)
  return judge([
    ['200 + Last-Modified reused', hitCount(a) === 1],
    ['302 not reused', hitCount(b) === 2],
    ['200 without Last-Modified not reused', hitCount(c) === 2]
  ])
})

row('CDN-Cache-Control honoured over Cache-Control', 'RFC 9213 §2', async () => {
  const a = route(reply({ 'cdn-cache-control': 'max-age=60', 'cache-control': 'no-store' }))
  const b = route(reply({ 'cdn-cache-control': 'no-store', 'cache-control': 'max-age=60' }))
  const pa = (await hcsStore(a)).policy
  const pb = (await hcsStore(b)).policy
  return judge([
    ['CDN max-age=60 over CC no-store: stored', pa.storable() && hcsDecide(pa, a) === 'fresh'],
    ['CDN no-store over CC max-age=60: not stored', !pb.storable()]
  ])
}, async () => {
  const a = route(reply({ 'cdn-cache-control': 'max-age=60', 'cache-control': 'no-store' }))
  const b = route(reply({ 'cdn-cache-control': 'no-store', 'cache-control': 'max-age=60' }))
  for (const p of [a, a, b, b]) await uget(p)
  return judge([
    ['CDN max-age=60 over CC no-store: stored', hitCount(a) === 1],
    ['CDN no-store over CC max-age=60: not stored', hitCount(b) === 2]
  ])
})

row('invalid Age ("abc", "-5") ignored', 'RFC 9111 §5.1, §4.2.3', async () => {
  const a = route(reply({ 'cache-control': 'max-age=60', age: 'abc' }))
  const b = route(reply({ 'cache-control': 'max-age=10', age: '-5' }))
  const pa = (await hcsStore(a)).policy
  const pb = (await hcsStore(b)).policy
  return judge([
    ['Age: abc → stored, ttl ≈ 60 s', hcsDecide(pa, a) === 'fresh' && pa.timeToLive() > 59000, `ttl ${pa.timeToLive()} ms`],
    ['Age: -5 does not extend max-age=10', pb.timeToLive() <= 10000, `ttl ${pb.timeToLive()} ms, age() ${pb.age().toFixed(1)}`]
  ])
}, async () => {
  const a = route(reply({ 'cache-control': 'max-age=60', age: 'abc' }))
  const b = route(reply({ 'cache-control': 'max-age=10', age: '-5' }))
  for (const p of [a, a, b, b]) await uget(p)
  return judge([
    ['Age: abc → stored', hitCount(a) === 1, `${hitCount(a)} origin hits: invalid Age taken as infinitely old`],
    ['Age: -5 → stored with max-age=10', hitCount(b) === 1, `${hitCount(b)} origin hits`]
  ])
})

row('Vary matching; Vary: * never matches', 'RFC 9111 §4.1', async () => {
  const a = route(reply({ 'cache-control': 'max-age=60', vary: 'Accept-Language' }))
  const b = route(reply({ 'cache-control': 'max-age=60', vary: '*' }))
  const en = { 'accept-language': 'en' }
  const fr = { 'accept-language': 'fr' }
  const pa = (await hcsStore(a, en)).policy
  const pb = (await hcsStore(b, en)).policy
  return judge([
    ['same Accept-Language reused', hcsDecide(pa, a, en) === 'fresh'],
    ['other Accept-Language not reused', hcsDecide(pa, a, fr) === 'origin'],
    ['Vary: * not reused', hcsDecide(pb, b, en) === 'origin']
  ])
}, async () => {
  const a = route(reply({ 'cache-control': 'max-age=60', vary: 'Accept-Language' }))
  const b = route(reply({ 'cache-control': 'max-age=60', vary: '*' }))
  const en = { 'accept-language': 'en' }
  await uget(a, { headers: en }); await uget(a, { headers: en })
  const afterSame = hitCount(a)
  await uget(a, { headers: { 'accept-language': 'fr' } })
  await uget(b, { headers: en }); await uget(b, { headers: en })
  return judge([
    ['same Accept-Language reused', afterSame === 1],
    ['other Accept-Language not reused', hitCount(a) === 2],
    ['Vary: * not reused', hitCount(b) === 2]
  ])
})

row('HEAD served from a stored GET', 'RFC 9110 §9.3.2; RFC 9111 §4', async () => {
  const p = route(reply({ 'cache-control': 'max-age=60' }))
  const { policy } = await hcsStore(p)
  const d = hcsDecide(policy, p, {}, 'HEAD')
  return judge([['evaluateRequest(HEAD) on a GET policy reuses it', d === 'fresh', `decision: ${d}`]])
}, async () => {
  const p = route(reply({ 'cache-control': 'max-age=60' }))
  await uget(p); await uget(p, { method: 'HEAD' })
  const headAgent = undiciAgent({ methods: ['GET', 'HEAD'] }).agent
  const q = route(reply({ 'cache-control': 'max-age=60' }))
  await uget(q, { agent: headAgent }); await uget(q, { agent: headAgent, method: 'HEAD' })
  return judge([
    ['default methods: HEAD from stored GET', hitCount(p) === 1, `${hitCount(p)} origin hits`],
    ["methods ['GET','HEAD']: HEAD from stored GET", hitCount(q) === 1, `${hitCount(q)} origin hits`]
  ])
})

row('Age header on a served response', 'RFC 9111 §5.1, §4.2.3', async () => {
  const p = route(reply({ 'cache-control': 'max-age=60', age: '10' }))
  const { policy } = await hcsStore(p)
  clockOffset = 5000
  const age = policy.evaluateRequest(hreq(p)).response?.headers.age
  return judge([['Age = origin Age + resident time', age === '15', `Age: ${age} after 5 s`]])
}, async () => {
  const p = route(reply({ 'cache-control': 'max-age=60', age: '10' }))
  await uget(p)
  const r = await uget(p)
  return judge([['Age present, ≥ origin Age', hitCount(p) === 1 && Number(r.headers.age) >= 10, `Age: ${r.headers.age}`]])
})

row('request no-cache (and Pragma: no-cache) goes to origin', 'RFC 9111 §5.2.1.4, §5.4', async () => {
  const p = route(reply({ 'cache-control': 'max-age=60', etag: '"x"' }))
  const { policy } = await hcsStore(p)
  return judge([
    ['Cache-Control: no-cache', hcsDecide(policy, p, { 'cache-control': 'no-cache' }) === 'origin'],
    ['Pragma: no-cache', hcsDecide(policy, p, { pragma: 'no-cache' }) === 'origin']
  ])
}, async () => {
  const p = route(reply({ 'cache-control': 'max-age=60', etag: '"x"' }))
  await uget(p); await uget(p, { headers: { 'cache-control': 'no-cache' } })
  const afterCc = hitCount(p)
  await uget(p, { headers: { pragma: 'no-cache' } })
  return judge([['Cache-Control: no-cache', afterCc === 2], ['Pragma: no-cache', hitCount(p) === 3]])
})

row('request max-age', 'RFC 9111 §5.2.1.1', async () => {
  const p = route(reply({ 'cache-control': 'max-age=60', age: '30' }))
  const { policy } = await hcsStore(p)
  return judge([
    ['max-age=10 < age 30 → origin', hcsDecide(policy, p, { 'cache-control': 'max-age=10' }) === 'origin'],
    ['max-age=50 > age 30 → cache', hcsDecide(policy, p, { 'cache-control': 'max-age=50' }) === 'fresh']
  ])
}, async () => {
  const p = route(reply({ 'cache-control': 'max-age=60', age: '30' }))
  await uget(p); await uget(p, { headers: { 'cache-control': 'max-age=50' } })
  const after50 = hitCount(p)
  await uget(p, { headers: { 'cache-control': 'max-age=10' } })
  return judge([['max-age=10 < age 30 → origin', hitCount(p) === 2], ['max-age=50 > age 30 → cache', after50 === 1]])
})

// max-age=3 with Age: 2 goes stale 1 s after arrival; both caches are asked 2.5 s later (stale by 1.5 s). The stale
// window is kept shorter than the freshness lifetime: undici deletes an entry without stale-* directives at
// staleAt + lifetime, so a max-stale beyond that finds nothing (a retention choice, not a max-stale verdict).
row('request max-stale', 'RFC 9111 §5.2.1.2', async () => {
  const p = route(reply({ 'cache-control': 'max-age=3', age: '2' }))
  const { policy } = await hcsStore(p)
  clockOffset = 2500
  return judge([
    ['stale 1.5 s, max-stale=60 → cache', hcsDecide(policy, p, { 'cache-control': 'max-stale=60' }) === 'fresh'],
    ['stale 1.5 s, max-stale=1 → origin', hcsDecide(policy, p, { 'cache-control': 'max-stale=1' }) === 'origin']
  ])
}, async () => {
  const p = route(reply({ 'cache-control': 'max-age=3', age: '2' }))
  await uget(p)
  await sleep(2500)
  await uget(p, { headers: { 'cache-control': 'max-stale=60' } })
  const after60 = hitCount(p)
  await uget(p, { headers: { 'cache-control': 'max-stale=1' } })
  return judge([['stale 1.5 s, max-stale=60 → cache', after60 === 1], ['stale 1.5 s, max-stale=1 → origin', hitCount(p) === 2]])
})

row('request min-fresh', 'RFC 9111 §5.2.1.3', async () => {
  const p = route(reply({ 'cache-control': 'max-age=60' }))
  const { policy } = await hcsStore(p)
  return judge([
    ['min-fresh=120 → origin', hcsDecide(policy, p, { 'cache-control': 'min-fresh=120' }) === 'origin'],
    ['min-fresh=10 → cache', hcsDecide(policy, p, { 'cache-control': 'min-fresh=10' }) === 'fresh']
  ])
}, async () => {
  const p = route(reply({ 'cache-control': 'max-age=60' }))
  await uget(p); await uget(p, { headers: { 'cache-control': 'min-fresh=10' } })
  const after10 = hitCount(p)
  await uget(p, { headers: { 'cache-control': 'min-fresh=120' } })
  return judge([['min-fresh=120 → origin', hitCount(p) === 2], ['min-fresh=10 → cache', after10 === 1]])
})

row('request only-if-cached: 504 on a miss', 'RFC 9111 §5.2.1.7', async () => {
  const p = route(reply({ 'cache-control': 'max-age=1' }))
  const { policy } = await hcsStore(p)
  clockOffset = 3000
  const d = hcsDecide(policy, p, { 'cache-control': 'only-if-cached' })
  return notProvided(`no policy exists on a miss; on a stale entry evaluateRequest(only-if-cached) answers "${d}"`)
}, async () => {
  const p = route(reply({ 'cache-control': 'max-age=60' }))
  const r = await uget(p, { headers: { 'cache-control': 'only-if-cached' } })
  return judge([['504 without origin contact', r.status === 504 && hitCount(p) === 0, `status ${r.status}, ${hitCount(p)} origin hits`]])
})

row('conditional revalidation (If-None-Match / If-Modified-Since) and 304 header merge', 'RFC 9111 §4.3.1, §4.3.4', async () => {
  const p = route(conditionalOrigin())
  const first = await hcsStore(p)
  const r = first.policy.evaluateRequest(hreq(p))
  const sent = r.revalidation?.headers ?? {}
  const res = await fetchOrigin(p, { headers: sent })
  const { policy, modified } = first.policy.revalidatedPolicy(hreq(p), res)
  const merged = policy.responseHeaders()
  return judge([
    ['If-None-Match sent', sent['if-none-match'] === '"v1"'],
    ['If-Modified-Since sent', sent['if-modified-since'] === LAST_MODIFIED],
    ['304 → stored body reused', res.status === 304 && modified === false],
    ['304 header fields merged', merged['x-version'] === '2', `x-version ${merged['x-version']}`],
    ['304 Cache-Control max-age=60 makes it fresh', hcsDecide(policy, p) === 'fresh']
  ])
}, async () => {
  const p = route(conditionalOrigin())
  await uget(p)
  const second = await uget(p)
  const sent = seen.get(p)[1]?.headers ?? {}
  const third = await uget(p)
  const thirdFromCache = hitCount(p) === 2
  return judge([
    ['If-None-Match sent', sent['if-none-match'] === '"v1"'],
    ['If-Modified-Since sent', sent['if-modified-since'] === LAST_MODIFIED],
    ['304 → stored body reused', second.status === 200 && second.body === 'body-1'],
    ['304 header fields merged', second.headers['x-version'] === '2' || (thirdFromCache && third.headers['x-version'] === '2'),
      `x-version on the revalidated response ${second.headers['x-version']}`],
    ['304 Cache-Control max-age=60 makes it fresh', thirdFromCache,
      `${hitCount(p)} origin hits for 3 GETs; 3rd got ${third.status} ${JSON.stringify(third.body)} from origin: the entry was dropped, not updated`]
  ])
})

const LAST_MODIFIED = httpDate(-DAY)
function conditionalOrigin () {
  return reply((n, req) => n === 1
    ? { 'cache-control': 'max-age=0', etag: '"v1"', 'last-modified': LAST_MODIFIED, 'x-version': '1' }
    : req.headers['if-none-match'] === '"v1"'
      ? { 'cache-control': 'max-age=60', etag: '"v1"', 'x-version': '2' }
      : { 'cache-control': 'max-age=60', etag: '"v2"', 'x-version': '2' },
  { status: (n, req) => n > 1 && req.headers['if-none-match'] === '"v1"' ? 304 : 200 })
}

row('client conditional answered 304 by the cache', 'RFC 9111 §4.3.2', async () => {
  const p = route(reply({ 'cache-control': 'max-age=60', etag: '"c1"' }))
  const { policy } = await hcsStore(p)
  const r = policy.evaluateRequest(hreq(p, { 'if-none-match': '"c1"' }))
  return notProvided(`evaluateRequest() ignores the client's If-None-Match: answers status ${r.response?.status}, no 304 helper`)
}, async () => {
  const p = route(reply({ 'cache-control': 'max-age=60', etag: '"c1"' }))
  await uget(p)
  const r = await uget(p, { headers: { 'if-none-match': '"c1"' } })
  return judge([['304 without origin contact', r.status === 304 && hitCount(p) === 1, `client got ${r.status}, ${hitCount(p)} origin hits`]])
})

row('stale-while-revalidate', 'RFC 5861 §3', async () => {
  const p = route(reply({ 'cache-control': 'max-age=1, stale-while-revalidate=60' }))
  const { policy } = await hcsStore(p)
  clockOffset = 3000
  const d = hcsDecide(policy, p)
  clockOffset = 120000
  return judge([['within window: serve stale + background revalidation', d === 'swr'], ['after window: origin', hcsDecide(policy, p) === 'origin']])
}, async () => {
  const p = route(reply({ 'cache-control': 'max-age=1, stale-while-revalidate=60' }))
  await uget(p)
  await sleep(2200)
  const stale = await uget(p)
  await sleep(300)
  const bg = hitCount(p)
  const next = await uget(p)
  return judge([
    ['stale body served at once', stale.body === 'body-1'],
    ['background revalidation happened', bg === 2],
    ['next request gets the refreshed entry', next.body === 'body-2' && hitCount(p) === 2]
  ])
})

row('stale-if-error (upstream 500, connection failure)', 'RFC 5861 §4', async () => {
  const p = route(staleIfErrorOrigin('500'))
  const q = route(staleIfErrorOrigin('reset'))
  const a = (await hcsStore(p)).policy
  const b = (await hcsStore(q)).policy
  clockOffset = 3000
  const res = await fetchOrigin(p, { headers: a.evaluateRequest(hreq(p)).revalidation.headers })
  const ra = a.revalidatedPolicy(hreq(p), res)
  let failed
  try { await fetchOrigin(q) } catch (err) { failed = err.code }
  const rb = b.revalidatedPolicy(hreq(q), undefined)
  return judge([
    ['500 → stale reused', res.status === 500 && ra.modified === false && ra.policy === a],
    ['connection failure → stale reused', failed !== undefined && rb.modified === false, `origin ${failed}, revalidatedPolicy(req, undefined)`]
  ])
}, async () => {
  const p = route(staleIfErrorOrigin('500'))
  const q = route(staleIfErrorOrigin('reset'))
  await uget(p); await uget(q)
  await sleep(2200)
  const a = await uget(p)
  const b = await uget(q)
  return judge([
    ['500 → stale reused', a.status === 200 && a.body === 'good', `client got ${a.status}`],
    ['connection failure → stale reused', b.status === 200 && b.body === 'good', `client got ${b.status || b.error}`]
  ])
})

function staleIfErrorOrigin (failure) {
  return (req, res, n) => {
    if (n === 1) {
      res.writeHead(200, { 'cache-control': 'max-age=1, stale-if-error=60' }).end('good')
    } else if (failure === '500') {
      res.writeHead(500, { 'cache-control': 'no-store' }).end('bad')
    } else {
      req.socket.destroy()
    }
  }
}

row('must-revalidate / proxy-revalidate', 'RFC 9111 §5.2.2.2, §5.2.2.8', async () => {
  const a = route(reply({ 'cache-control': 'max-age=60, must-revalidate' }))
  const b = route(reply({ 'cache-control': 'max-age=60, proxy-revalidate' }))
  const c = route(mustRevalidateOrigin())
  const pa = (await hcsStore(a)).policy
  const pb = (await hcsStore(b)).policy
  const pc = (await hcsStore(c)).policy
  const fa = hcsDecide(pa, a)
  const fb = hcsDecide(pb, b)
  clockOffset = 3000
  const maxStale = hcsDecide(pc, c, { 'cache-control': 'max-stale=60' })
  const res = await fetchOrigin(c, { headers: pc.evaluateRequest(hreq(c)).revalidation.headers })
  const r = pc.revalidatedPolicy(hreq(c), res)
  return judge([
    ['fresh must-revalidate response reused', fa === 'fresh', `decision ${fa}`],
    ['fresh proxy-revalidate response reused', fb === 'fresh', `decision ${fb}, maxAge() ${pb.maxAge()}`],
    ['stale: max-stale ignored', maxStale === 'origin'],
    ['stale: stale-if-error not applied on 500', r.modified === true || r.policy !== pc, `revalidatedPolicy(500) → modified ${r.modified}`]
  ])
}, async () => {
  const a = route(reply({ 'cache-control': 'max-age=60, must-revalidate' }))
  const b = route(reply({ 'cache-control': 'max-age=60, proxy-revalidate' }))
  const c = route(mustRevalidateOrigin())
  const d = route(mustRevalidateOrigin())
  for (const p of [a, a, b, b, c, d]) await uget(p)
  await sleep(2200)
  await uget(c, { headers: { 'cache-control': 'max-stale=60' } })
  const r = await uget(d)
  return judge([
    ['fresh must-revalidate response reused', hitCount(a) === 1],
    ['fresh proxy-revalidate response reused', hitCount(b) === 1],
    ['stale: max-stale ignored', hitCount(c) === 2],
    ['stale: stale-if-error not applied on 500', r.status === 500, `client got ${r.status}`]
  ])
})

function mustRevalidateOrigin () {
  return reply({ 'cache-control': 'max-age=1, must-revalidate, stale-if-error=60' }, { status: (n) => n === 1 ? 200 : 500 })
}

row('request collapsing (concurrent misses → one origin request)', 'RFC 9111 §4 (cache may collapse)', async () => {
  return notProvided('CachePolicy decides per stored response; it has no notion of in-flight requests')
}, async () => {
  const slow = () => (req, res) => { setTimeout(() => res.writeHead(200, { 'cache-control': 'max-age=60' }).end('x'), 300) }
  const p = route(slow())
  await Promise.all([1, 2, 3, 4, 5].map(() => uget(p)))
  const dedupAgent = undiciAgent({}, [interceptors.deduplicate()]).agent
  const q = route(slow())
  await Promise.all([1, 2, 3, 4, 5].map(() => uget(q, { agent: dedupAgent })))
  const r = judge([['5 concurrent GETs → 1 origin request', hitCount(q) === 1,
    `cache interceptor alone: ${hitCount(p)} origin requests; composed with interceptors.deduplicate(): ${hitCount(q)}`]])
  r.note += '; only while the leader waits for headers: deduplicate sends later requests independently once the body streams'
  return r
})

row('invalidation on unsafe methods, incl. Location / Content-Location', 'RFC 9111 §4.4', async () => {
  return notProvided('no API takes an unsafe request or a key to invalidate; storable() is all it says about POST')
}, async () => {
  const b = route(reply({ 'cache-control': 'max-age=60' }))
  const c = route(reply({ 'cache-control': 'max-age=60' }))
  const a = route((req, res) => req.method === 'POST'
    ? res.writeHead(201, { location: b, 'content-location': c }).end()
    : res.writeHead(200, { 'cache-control': 'max-age=60' }).end('a'))
  for (const p of [a, b, c, a, b, c]) await uget(p)
  const before = [a, b, c].map(hitCount).join('/')
  await uget(a, { method: 'POST' })
  for (const p of [a, b, c]) await uget(p)
  return judge([
    ['target URI invalidated', hitCount(a) === 3],
    ['Location invalidated', hitCount(b) === 2],
    ['Content-Location invalidated', hitCount(c) === 2, `GET hits before POST ${before}, after ${hitCount(a) - 1}/${hitCount(b)}/${hitCount(c)}`]
  ])
})

row('Cache-Status response header', 'RFC 9211 §2', async () => {
  const p = route(reply({ 'cache-control': 'max-age=60' }))
  const { policy } = await hcsStore(p)
  const h = policy.evaluateRequest(hreq(p)).response?.headers ?? {}
  return 'cache-status' in h ? judge([['Cache-Status emitted', true]]) : notProvided('responseHeaders() carries no Cache-Status; hit/miss/stale reason is only implicit in evaluateRequest()')
}, async () => {
  const p = route(reply({ 'cache-control': 'max-age=60' }))
  await uget(p)
  const r = await uget(p)
  return 'cache-status' in r.headers ? judge([['Cache-Status emitted', true]]) : notProvided('served hit carries no Cache-Status; no callback says hit/miss/stale/revalidated')
})

row('Range request served 206 from a stored full response', 'RFC 9110 §14.2; RFC 9111 §3.4', async () => {
  const p = route(rangeOrigin())
  const { policy } = await hcsStore(p)
  const r = policy.evaluateRequest(hreq(p, { range: 'bytes=0-3' }))
  return notProvided(`evaluateRequest(Range) answers status ${r.response?.status} (whole stored response); 206 slicing is the proxy's`)
}, async () => {
  const p = route(rangeOrigin())
  await uget(p)
  const r = await uget(p, { headers: { range: 'bytes=0-3' } })
  if (r.status === 206 && hitCount(p) === 1) return judge([['206 from cache', true]])
  return notProvided(`Range GET → status ${r.status}, body ${JSON.stringify(r.body)}, ${hitCount(p)} origin hits (full 200 replayed)`)
})

function rangeOrigin () {
  return (req, res) => {
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '')
    if (m) {
      res.writeHead(206, { 'cache-control': 'max-age=60', 'content-range': `bytes ${m[1]}-${m[2]}/10` }).end('0123456789'.slice(Number(m[1]), Number(m[2]) + 1))
    } else {
      res.writeHead(200, { 'cache-control': 'max-age=60', 'accept-ranges': 'bytes' }).end('0123456789')
    }
  }
}

row('streaming while storing (first byte before the origin finishes; late joiners fed from the fill)', 'RFC 9111 §3 (implementation)', async () => {
  return notProvided('policy only: no body handling at all')
}, async () => {
  const p = route((req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=60' })
    res.write('chunk1-')
    setTimeout(() => res.end('chunk2'), 600)
  })
  const t0 = Date.now()
  let firstByte = -1
  const first = (async () => {
    const r = await U.request({ origin: ORIGIN, path: p, method: 'GET' })
    let body = ''
    for await (const chunk of r.body) {
      if (firstByte < 0) firstByte = Date.now() - t0
      body += chunk
    }
    return body
  })()
  await sleep(200)
  const late = await uget(p)
  const body = await first
  const lateHits = hitCount(p)
  const after = await uget(p)
  return judge([
    ['first client streamed', firstByte >= 0 && firstByte < 400 && body === 'chunk1-chunk2', `first byte at ${firstByte} ms of 600`],
    ['late joiner fed from the in-progress fill', lateHits === 1, `${lateHits} origin requests for the first two clients (late one got ${JSON.stringify(late.body)})`],
    ['stored once complete', after.body === 'chunk1-chunk2' && hitCount(p) === lateHits]
  ])
})

row('store API: purge by prefix / tag', 'RFC 9111 §7 (implementation)', async () => {
  return notProvided('no store at all: CachePolicy.toObject()/fromObject() only')
}, async () => {
  const store = new cacheStores.MemoryCacheStore()
  const agent = new Agent().compose(interceptors.cache({ store, type: 'shared' }))
  agents.push(agent)
  const prefix = `/purge${++nextId}`
  const a = route(reply({ 'cache-control': 'max-age=60', 'surrogate-key': 'tag1' }), `${prefix}/a`)
  const b = route(reply({ 'cache-control': 'max-age=60', 'surrogate-key': 'tag1' }), `${prefix}/b`)
  await uget(a, { agent }); await uget(b, { agent })
  store.delete({ origin: ORIGIN, method: 'GET', path: `${prefix}/` })
  await uget(a, { agent })
  const methods = Object.getOwnPropertyNames(Object.getPrototypeOf(store)).filter((m) => m !== 'constructor')
  store.delete({ origin: ORIGIN, method: 'GET', path: b })
  await uget(b, { agent })
  const prefixWorked = hitCount(a) === 2
  const exactWorked = hitCount(b) === 2
  if (prefixWorked) return judge([['prefix purge', true]])
  return notProvided(`MemoryCacheStore API: ${methods.join(', ')}; delete(key) of the prefix removed nothing, delete of an exact origin+path ${exactWorked ? 'works' : 'did not work'}; no enumeration, no tags`)
})

// ---------------------------------------------------------------------------------------------------------------
// Extra probes (not counted in the totals): inputs where a proxy must sanitise what it feeds the library.

extra('Set-Cookie on a shared-cache response', 'RFC 9111 §7.3 (security)', async () => {
  const a = route(reply({ 'cache-control': 'max-age=60', 'set-cookie': 'sid=alice' }))
  const b = route(reply({ 'cache-control': 'public, max-age=60', 'set-cookie': 'sid=alice' }))
  const pa = (await hcsStore(a)).policy
  const pb = (await hcsStore(b)).policy
  const replayed = pb.evaluateRequest(hreq(b)).response?.headers['set-cookie']
  return { v: 'see note', note: `max-age=60: storable() ${pa.storable()}, reused ${hcsDecide(pa, a)}; public, max-age=60: reused ${hcsDecide(pb, b)}, replays Set-Cookie ${JSON.stringify(replayed)}` }
}, async () => {
  const b = route(reply({ 'cache-control': 'public, max-age=60', 'set-cookie': 'sid=alice' }))
  await uget(b); await uget(b)
  return { v: 'see note', note: `public, max-age=60 + Set-Cookie: ${hitCount(b)} origin hits for 2 GETs (never stored)` }
})

extra('Cache-Control directive names are case-insensitive', 'RFC 9111 §5.2', async () => {
  const a = route(reply({ 'cache-control': 'No-Store, max-age=60' }))
  const b = route(reply({ 'cache-control': 'Max-Age=60' }))
  const pa = (await hcsStore(a)).policy
  const pb = (await hcsStore(b)).policy
  return judge([['No-Store honoured', !pa.storable(), `storable() ${pa.storable()}`], ['Max-Age=60 honoured', hcsDecide(pb, b) === 'fresh', `decision ${hcsDecide(pb, b)}`]])
}, async () => {
  const a = route(reply({ 'cache-control': 'No-Store, max-age=60' }))
  const b = route(reply({ 'cache-control': 'Max-Age=60' }))
  for (const p of [a, a, b, b]) await uget(p)
  return judge([['No-Store honoured', hitCount(a) === 2], ['Max-Age=60 honoured', hitCount(b) === 1]])
})

extra('two Cache-Control fields with conflicting max-age (use first, or stale)', 'RFC 9111 §4.2.1', async () => {
  const p = route(reply({ 'cache-control': ['max-age=0', 'max-age=60'] }))
  const { res, policy } = await hcsStore(p)
  let arrayError = 'no error'
  try {
    const pol = new Policy(hreq(p), { status: 200, headers: { 'cache-control': ['max-age=0', 'max-age=60'] } }, { shared: true })
    arrayError = `storable ${pol.storable()}`
  } catch (err) { arrayError = `${err.name}: ${err.message}` }
  return judge([
    ['node:http-joined "max-age=0, max-age=60" treated as stale', hcsDecide(policy, p) === 'origin', `received "${res.headers['cache-control']}", decision ${hcsDecide(policy, p)}`],
    ['array-valued field (as undici dispatch delivers duplicates) accepted', !arrayError.includes('Error'), arrayError]
  ])
}, async () => {
  const p = route(reply({ 'cache-control': ['max-age=0', 'max-age=60'] }))
  await uget(p); await uget(p)
  return judge([['treated as stale', hitCount(p) === 2, `${hitCount(p)} origin hits`]])
})

extra('apparent age from Date counts (Date 1 h old, max-age=60, no Age)', 'RFC 9111 §4.2.3', async () => {
  const p = route(reply(() => ({ 'cache-control': 'max-age=60', date: httpDate(-3600000) })))
  const { policy } = await hcsStore(p)
  return judge([['stale', hcsDecide(policy, p) === 'origin', `age() ${policy.age().toFixed(1)} s, decision ${hcsDecide(policy, p)}`]])
}, async () => {
  const p = route(reply(() => ({ 'cache-control': 'max-age=60', date: httpDate(-3600000) })))
  await uget(p); await uget(p)
  return judge([['stale', hitCount(p) === 2, `${hitCount(p)} origin hits`]])
})

extra('s-maxage implies proxy-revalidate: no stale-if-error once stale', 'RFC 9111 §5.2.2.10', async () => {
  const p = route(reply({ 'cache-control': 's-maxage=1, stale-if-error=60' }, { status: (n) => n === 1 ? 200 : 500 }))
  const { policy } = await hcsStore(p)
  clockOffset = 3000
  const res = await fetchOrigin(p)
  const r = policy.revalidatedPolicy(hreq(p), res)
  return judge([['500 not masked by stale', r.modified === true, `revalidatedPolicy(500) → modified ${r.modified}`]])
}, async () => {
  const p = route(reply({ 'cache-control': 's-maxage=1, stale-if-error=60' }, { status: (n) => n === 1 ? 200 : 500 }))
  await uget(p)
  await sleep(2200)
  const r = await uget(p)
  return judge([['500 not masked by stale', r.status === 500, `client got ${r.status}`]])
})

// ---------------------------------------------------------------------------------------------------------------
// Run and print.

async function run (fn) {
  clockOffset = 0
  try {
    return await fn()
  } catch (err) {
    return { v: 'FAIL', note: `threw ${err.name}: ${err.message}` }
  } finally {
    clockOffset = 0
  }
}

const results = []
for (const r of [...rows, ...extras]) {
  const [h, u] = [await run(r.hcs), await run(r.undici)]
  results.push({ ...r, h, u, counted: rows.includes(r) })
}

const cell = (s) => String(s).replaceAll('|', '\\|')
const table = (list) => [
  '| behaviour | RFC § | http-cache-semantics | undici cache interceptor | note |',
  '|---|---|---|---|---|',
  ...list.map((r) => `| ${cell(r.behaviour)} | ${r.rfc} | ${r.h.v} | ${r.u.v} | ${cell([r.h.note && `hcs: ${r.h.note}`, r.u.note && `undici: ${r.u.note}`].filter(Boolean).join(' — '))} |`)
]

console.log(`http-cache-semantics ${HCS_VERSION}, undici ${UNDICI_VERSION}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}`)
console.log('')
console.log(table(results.filter((r) => r.counted)).join('\n'))
console.log('')
const tally = (key) => {
  const counted = results.filter((r) => r.counted).map((r) => r[key].v)
  const n = (v) => counted.filter((x) => x === v).length
  return `pass ${n('pass')}, partial ${n('partial')}, FAIL ${n('FAIL')}, not provided ${n(NP)} (of ${counted.length})`
}
console.log(`**Totals** — http-cache-semantics: ${tally('h')}; undici cache interceptor: ${tally('u')}.`)
console.log('')
console.log('Extra probes (inputs the proxy must sanitise; not counted in the totals):')
console.log('')
console.log(table(results.filter((r) => !r.counted)).join('\n'))

for (const a of agents) await a.close()
server.closeAllConnections()
server.close()
