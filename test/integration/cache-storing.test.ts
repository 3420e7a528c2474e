/**
 * What the shared cache stores and for how long (RFC 9111 §3, §4.2, §5.2.2; RFC 9213; RFC 9211 Cache-Status).
 * Each case runs against a real origin through a real proxy and counts the requests the origin saw.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { send } from '../helpers/servers.js'
import { cacheRig, reply, type CacheRig } from '../helpers/cache.js'

let rig: CacheRig
test.before(async () => { rig = await cacheRig() })
test.after(() => rig.close())

/** Asks twice and returns both replies. */
async function twice (path: string, headers: Record<string, string> = {}): Promise<[Awaited<ReturnType<typeof send>>, Awaited<ReturnType<typeof send>>]> {
  const a = await send(rig.url(path), { headers })
  const b = await send(rig.url(path), { headers })
  return [a, b]
}

test('§4 / RFC 9211: a fresh response is stored, then served from the cache with Age and Cache-Status', async () => {
  rig.on('/fresh', reply({ 'cache-control': 'max-age=60', etag: '"v1"' }, 'fresh body'))
  const [a, b] = await twice('/fresh')
  assert.equal(a.status, 200)
  assert.match(String(a.headers['cache-status']), /^Portico; fwd=uri-miss; fwd-status=200; stored; ttl=(59|60)$/)
  assert.equal(b.body.toString(), 'fresh body')
  assert.match(String(b.headers['cache-status']), /^Portico; hit; ttl=\d+$/)
  assert.match(String(b.headers.age), /^\d+$/)
  assert.equal(b.headers.etag, '"v1"')
  assert.equal(rig.hits('/fresh'), 1)
})

test('§5.2.2.5 no-store and §5.2.2.7 private responses are not stored by a shared cache; private="field" keeps only that field out', async () => {
  rig.on('/no-store', reply({ 'cache-control': 'no-store, max-age=60' }))
  rig.on('/private', reply({ 'cache-control': 'private, max-age=60' }))
  rig.on('/private-q', reply({ 'cache-control': 'private="set-cookie", max-age=60', 'set-cookie': 'sid=secret' }))
  const [, b] = await twice('/no-store')
  assert.match(String(b.headers['cache-status']), /fwd=uri-miss; fwd-status=200; detail=no-store/)
  await twice('/private')
  // A qualified private="set-cookie" keeps only that field out of the shared cache; the rest is stored.
  const [q1, q2] = await twice('/private-q')
  assert.equal(q1.headers['set-cookie']?.[0], 'sid=secret')
  assert.match(String(q2.headers['cache-status']), /hit/)
  assert.equal(q2.headers['set-cookie'], undefined)
  assert.equal(rig.hits('/no-store'), 2)
  assert.equal(rig.hits('/private'), 2)
  assert.equal(rig.hits('/private-q'), 1)
})

test('§5.2.1.5: a request with no-store does not store the response', async () => {
  rig.on('/req-no-store', reply({ 'cache-control': 'max-age=60' }))
  await send(rig.url('/req-no-store'), { headers: { 'cache-control': 'no-store' } })
  await send(rig.url('/req-no-store'))
  assert.equal(rig.hits('/req-no-store'), 2)
})

test('§5.2.2.10: s-maxage wins over max-age (and over Expires) for a shared cache; directive names are case-insensitive', async () => {
  rig.on('/smax', reply({ 'cache-control': 'max-age=0, s-maxage=60', expires: 'Thu, 01 Jan 1970 00:00:00 GMT' }))
  rig.on('/smax-stale', reply({ 'cache-control': 'max-age=60, s-maxage=0' }))
  rig.on('/caps', reply({ 'cache-control': 'No-Store, Max-Age=60' }))
  const [, b] = await twice('/smax')
  assert.match(String(b.headers['cache-status']), /hit/)
  await twice('/smax-stale')
  await twice('/caps')
  assert.equal(rig.hits('/smax'), 1)
  assert.equal(rig.hits('/smax-stale'), 2)
  assert.equal(rig.hits('/caps'), 2)
})

test('§5.3: Expires gives freshness when there is no max-age; an invalid Expires ("0") means already expired', async () => {
  rig.on('/expires', reply({ expires: new Date(Date.now() + 60_000).toUTCString() }))
  rig.on('/expires-0', reply({ expires: '0' }))
  await twice('/expires')
  await twice('/expires-0')
  assert.equal(rig.hits('/expires'), 1)
  assert.equal(rig.hits('/expires-0'), 2)
})

test('§4.2.1: a duplicated directive keeps its first value (max-age=0 then max-age=60 is stale)', async () => {
  rig.on('/dup', (_req, res) => {
    res.setHeader('cache-control', ['max-age=0', 'max-age=60'])
    res.end('dup')
  })
  await twice('/dup')
  assert.equal(rig.hits('/dup'), 2)
})

test('§3.5: an answer to an authenticated request is stored only when public, s-maxage or must-revalidate allow it', async () => {
  const auth = { authorization: 'Bearer x' }
  rig.on('/auth', reply({ 'cache-control': 'max-age=60' }))
  rig.on('/auth-smax', reply({ 'cache-control': 's-maxage=60' }))
  rig.on('/auth-public', reply({ 'cache-control': 'public, max-age=60' }))
  rig.on('/auth-mr', reply({ 'cache-control': 'max-age=60, must-revalidate' }))
  await twice('/auth', auth)
  await twice('/auth-smax', auth)
  await twice('/auth-public', auth)
  await twice('/auth-mr', auth)
  assert.equal(rig.hits('/auth'), 2)
  assert.equal(rig.hits('/auth-smax'), 1)
  assert.equal(rig.hits('/auth-public'), 1)
  assert.equal(rig.hits('/auth-mr'), 1)
})

test('§5.2.2.3: must-understand lets an understood status be stored despite no-store; an unknown status is not', async () => {
  rig.on('/mu', reply({ 'cache-control': 'no-store, must-understand, max-age=60' }))
  rig.on('/mu-299', reply({ 'cache-control': 'no-store, must-understand, max-age=60' }, 'x', 299))
  await twice('/mu')
  await twice('/mu-299')
  assert.equal(rig.hits('/mu'), 1)
  assert.equal(rig.hits('/mu-299'), 2)
})

test('§4.2.2: heuristic freshness only with Last-Modified and a heuristically cacheable status', async () => {
  const lastModified = new Date(Date.now() - 10 * 86_400_000).toUTCString()
  rig.on('/heur', reply({ 'last-modified': lastModified }))
  rig.on('/heur-none', reply({}))
  rig.on('/heur-302', reply({ 'last-modified': lastModified, location: '/x' }, 'moved', 302))
  const [, b] = await twice('/heur')
  assert.match(String(b.headers['cache-status']), /hit/)
  await twice('/heur-none')
  await twice('/heur-302')
  assert.equal(rig.hits('/heur'), 1)
  assert.equal(rig.hits('/heur-none'), 2)
  assert.equal(rig.hits('/heur-302'), 2)
})

test('RFC 9213: CDN-Cache-Control overrides Cache-Control for Portico and is not forwarded downstream', async () => {
  rig.on('/cdn', reply({ 'cache-control': 'no-store', 'cdn-cache-control': 'max-age=60' }))
  rig.on('/cdn-nostore', reply({ 'cache-control': 'max-age=60', 'cdn-cache-control': 'no-store' }))
  const [a, b] = await twice('/cdn')
  assert.equal(a.headers['cdn-cache-control'], undefined)
  assert.equal(b.headers['cdn-cache-control'], undefined)
  assert.equal(b.headers['cache-control'], 'no-store', 'Cache-Control still goes to the client for its own cache')
  const [c] = await twice('/cdn-nostore')
  assert.equal(c.headers['cdn-cache-control'], undefined)
  assert.equal(rig.hits('/cdn'), 1)
  assert.equal(rig.hits('/cdn-nostore'), 2)
})

test('§5.1: an invalid Age is ignored; a list-valued Age uses its first member; Date gives the apparent age (§4.2.3)', async () => {
  rig.on('/age-bad', reply({ 'cache-control': 'max-age=60', age: 'abc' }))
  rig.on('/age-neg', reply({ 'cache-control': 'max-age=60', age: '-5' }))
  rig.on('/age-list', reply({ 'cache-control': 'max-age=60', age: '100, 1' }))
  rig.on('/age-date', reply({ 'cache-control': 'max-age=60', date: new Date(Date.now() - 3_600_000).toUTCString() }))
  const [, b] = await twice('/age-bad')
  assert.ok(Number(b.headers.age) < 60)
  await twice('/age-neg')
  await twice('/age-list')
  await twice('/age-date')
  assert.equal(rig.hits('/age-bad'), 1)
  assert.equal(rig.hits('/age-neg'), 1)
  assert.equal(rig.hits('/age-list'), 2, 'Age 100 > max-age 60: stale at once')
  assert.equal(rig.hits('/age-date'), 2, 'Date an hour old: stale at once')
})

test('Set-Cookie responses are never stored: one user\'s cookie must not reach another', async () => {
  rig.on('/cookie', reply({ 'cache-control': 'public, max-age=60', 'set-cookie': 'sid=1' }))
  await twice('/cookie')
  assert.equal(rig.hits('/cookie'), 2)
})

test('§3.3: a response whose body was cut short is never stored', async () => {
  rig.on('/cut', (_req, res, n) => {
    res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': '100' })
    if (n === 1) {
      res.write('x'.repeat(50))
      setTimeout(() => res.socket?.destroy(), 20)
    } else {
      res.end('y'.repeat(100))
    }
  })
  await assert.rejects(send(rig.url('/cut')))
  const b = await send(rig.url('/cut'))
  assert.equal(b.body.toString(), 'y'.repeat(100))
  assert.equal(rig.hits('/cut'), 2)
  const c = await send(rig.url('/cut'))
  assert.match(String(c.headers['cache-status']), /hit/)
})

test('§4.1: Vary selects a variant by normalised field values; Vary: * never matches', async () => {
  rig.on('/vary', (req, res) => {
    res.writeHead(200, { vary: 'Accept-Encoding', 'cache-control': 'max-age=60' })
    res.end(`enc=${req.headers['accept-encoding'] ?? ''}`)
  })
  rig.on('/vary-star', reply({ vary: '*', 'cache-control': 'max-age=60' }))
  const gz = await send(rig.url('/vary'), { headers: { 'accept-encoding': 'gzip, br' } })
  const id = await send(rig.url('/vary'), { headers: { 'accept-encoding': 'identity' } })
  assert.match(String(id.headers['cache-status']), /fwd=vary-miss/)
  const gz2 = await send(rig.url('/vary'), { headers: { 'accept-encoding': 'GZIP,br' } })
  const id2 = await send(rig.url('/vary'), { headers: { 'accept-encoding': 'identity' } })
  assert.equal(gz.body.toString(), 'enc=gzip, br')
  assert.equal(gz2.body.toString(), 'enc=gzip, br')
  assert.match(String(gz2.headers['cache-status']), /hit/)
  assert.equal(id2.body.toString(), 'enc=identity')
  assert.equal(rig.hits('/vary'), 2)
  await twice('/vary-star')
  assert.equal(rig.hits('/vary-star'), 2)
})

test('§4: HEAD is answered from a stored GET', async () => {
  rig.on('/head', reply({ 'cache-control': 'max-age=60' }, 'body of get'))
  await send(rig.url('/head'))
  const h = await send(rig.url('/head'), { method: 'HEAD' })
  assert.equal(h.status, 200)
  assert.equal(h.body.length, 0)
  assert.equal(h.headers['content-length'], String('body of get'.length))
  assert.match(String(h.headers['cache-status']), /hit/)
  assert.equal(rig.hits('/head'), 1)
})

test('the key is method + scheme + host + path + query: another query or host is another entry', async () => {
  rig.on('/k?a=1', reply({ 'cache-control': 'max-age=60' }, 'a1'))
  rig.on('/k?a=2', reply({ 'cache-control': 'max-age=60' }, 'a2'))
  await twice('/k?a=1')
  await twice('/k?a=2')
  await send(rig.url('/k?a=1'), { headers: { host: 'other.test' } })
  assert.equal(rig.hits('/k?a=1'), 2)
  assert.equal(rig.hits('/k?a=2'), 1)
})

test('Edge Architecture: Portico announces Surrogate-Capability and obeys Surrogate-Control aimed at it (or at all surrogates)', async () => {
  rig.on('/sc', (req, res) => {
    res.writeHead(200, {
      'cache-control': 'no-store',
      'surrogate-control': req.headers['surrogate-capability'] === 'portico="Surrogate/1.0"' ? 'no-store;othercdn, max-age=60;portico' : 'no-store'
    })
    res.end('sc')
  })
  rig.on('/sc-plain', reply({ 'cache-control': 'max-age=60', 'surrogate-control': 'no-store' }))
  const [a, b] = await twice('/sc')
  assert.equal(a.headers['surrogate-control'], undefined, 'for surrogates only, never sent downstream')
  assert.match(String(b.headers['cache-status']), /hit/)
  assert.equal(rig.hits('/sc'), 1)
  await twice('/sc-plain')
  assert.equal(rig.hits('/sc-plain'), 2, 'an untargeted Surrogate-Control no-store wins over Cache-Control')
})
