/**
 * How the shared cache serves and refreshes what it holds (RFC 9111 §4, §4.2.4, §4.3, §5.2.1, §5.2.2;
 * RFC 5861 stale-while-revalidate / stale-if-error; RFC 9110 §13 conditionals, §14 ranges).
 * Stale entries are made without waiting: the origin sends an Age larger than max-age.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { send } from '../helpers/servers.js'
import { cacheRig, reply, type CacheRig } from '../helpers/cache.js'
import { until } from '../helpers/poll.js'

let rig: CacheRig
test.before(async () => { rig = await cacheRig() })
test.after(() => rig.close())

test('§5.2.1.4 request no-cache and §5.2.1.1 max-age=0 make the cache revalidate (Cache-Status fwd=request); Pragma does not (§5.4)', async () => {
  rig.on('/rq', reply({ 'cache-control': 'max-age=60', etag: '"r1"' }))
  await send(rig.url('/rq'))
  const a = await send(rig.url('/rq'), { headers: { 'cache-control': 'no-cache' } })
  assert.match(String(a.headers['cache-status']), /fwd=request/)
  const b = await send(rig.url('/rq'), { headers: { 'cache-control': 'max-age=0' } })
  assert.match(String(b.headers['cache-status']), /fwd=request/)
  // §5.4: Pragma is deprecated and carries no cache semantics in RFC 9111 (cache-tests checks the same).
  const c = await send(rig.url('/rq'), { headers: { pragma: 'no-cache' } })
  assert.match(String(c.headers['cache-status']), /hit/)
  assert.equal(rig.hits('/rq'), 3)
  assert.equal(rig.origin.requests.at(-1)?.headers['if-none-match'], '"r1"', 'revalidated with the stored ETag')
})

test('§5.2.1.3 min-fresh beyond the remaining freshness forwards; §5.2.1.2 max-stale accepts a stale response', async () => {
  rig.on('/mf', reply({ 'cache-control': 'max-age=60' }))
  await send(rig.url('/mf'))
  await send(rig.url('/mf'), { headers: { 'cache-control': 'min-fresh=3600' } })
  assert.equal(rig.hits('/mf'), 2)
  rig.on('/ms', reply({ 'cache-control': 'max-age=10', age: '20', etag: '"ms"' }))
  await send(rig.url('/ms'))
  const s = await send(rig.url('/ms'), { headers: { 'cache-control': 'max-stale=60' } })
  assert.match(String(s.headers['cache-status']), /hit; ttl=-\d+/)
  const any = await send(rig.url('/ms'), { headers: { 'cache-control': 'max-stale' } })
  assert.match(String(any.headers['cache-status']), /hit/)
  assert.equal(rig.hits('/ms'), 1)
})

test('§5.2.1.7 only-if-cached: 504 on a miss, the stored response on a hit', async () => {
  const miss = await send(rig.url('/oic-none'), { headers: { 'cache-control': 'only-if-cached' } })
  assert.equal(miss.status, 504)
  assert.match(String(miss.headers['cache-status']), /fwd=miss; detail=only-if-cached/)
  assert.equal(rig.hits('/oic-none'), 0)
  rig.on('/oic', reply({ 'cache-control': 'max-age=60' }, 'cached'))
  await send(rig.url('/oic'))
  const hit = await send(rig.url('/oic'), { headers: { 'cache-control': 'only-if-cached' } })
  assert.equal(hit.status, 200)
  assert.equal(hit.body.toString(), 'cached')
})

test('§4.3.1/§4.3.4: a stale response is revalidated with its validators; the 304 fields are merged into the stored response', async () => {
  rig.on('/reval', (req, res, n) => {
    if (n === 1) {
      res.writeHead(200, { 'cache-control': 'max-age=10', age: '20', etag: '"e1"', 'last-modified': 'Mon, 02 Jan 2023 00:00:00 GMT', 'x-version': 'one', 'content-length': '8' })
      res.end('original')
      return
    }
    assert.equal(req.headers['if-none-match'], '"e1"')
    assert.equal(req.headers['if-modified-since'], 'Mon, 02 Jan 2023 00:00:00 GMT')
    res.writeHead(304, { 'cache-control': 'max-age=60', etag: '"e1"', 'x-version': 'two' })
    res.end()
  })
  await send(rig.url('/reval'))
  const r = await send(rig.url('/reval'))
  assert.equal(r.status, 200)
  assert.equal(r.body.toString(), 'original')
  assert.equal(r.headers['x-version'], 'two')
  assert.equal(r.headers['cache-control'], 'max-age=60')
  assert.match(String(r.headers['cache-status']), /fwd=stale; fwd-status=304/)
  const fresh = await send(rig.url('/reval'))
  assert.match(String(fresh.headers['cache-status']), /hit/)
  assert.equal(fresh.headers['x-version'], 'two')
  assert.equal(rig.hits('/reval'), 2)
})

test('§4.3.2: a revalidation answered 200 replaces the stored response', async () => {
  rig.on('/replace', reply({ 'cache-control': 'max-age=10', age: '20', etag: '"a"' }, (n) => `version ${n}`))
  await send(rig.url('/replace'))
  rig.on('/replace', reply({ 'cache-control': 'max-age=60', etag: '"b"' }, 'version 2'))
  const r = await send(rig.url('/replace'))
  assert.equal(r.body.toString(), 'version 2')
  const again = await send(rig.url('/replace'))
  assert.equal(again.body.toString(), 'version 2')
  assert.match(String(again.headers['cache-status']), /hit/)
})

test('RFC 9110 §13.1.2/§13.1.3: client conditionals are answered 304 from the cache', async () => {
  rig.on('/cond', reply({ 'cache-control': 'max-age=60', etag: 'W/"c1"', 'last-modified': 'Mon, 02 Jan 2023 00:00:00 GMT' }))
  const first = await send(rig.url('/cond'), { headers: { 'if-none-match': 'W/"c1"' } })
  assert.equal(first.status, 304, 'a miss is fetched in full, stored, and the conditional answered here')
  const inm = await send(rig.url('/cond'), { headers: { 'if-none-match': '"zzz", "c1"' } })
  assert.equal(inm.status, 304)
  assert.equal(inm.headers.etag, 'W/"c1"')
  assert.match(String(inm.headers['cache-status']), /hit/)
  assert.equal(inm.body.length, 0)
  const ims = await send(rig.url('/cond'), { headers: { 'if-modified-since': 'Tue, 03 Jan 2023 00:00:00 GMT' } })
  assert.equal(ims.status, 304)
  const older = await send(rig.url('/cond'), { headers: { 'if-modified-since': 'Sun, 01 Jan 2023 00:00:00 GMT' } })
  assert.equal(older.status, 200)
  const other = await send(rig.url('/cond'), { headers: { 'if-none-match': '"nope"' } })
  assert.equal(other.status, 200)
  assert.equal(rig.hits('/cond'), 1)
})

test('RFC 5861 §3 stale-while-revalidate: the stale response is served and refreshed once in the background', async () => {
  rig.on('/swr', (_req, res, n) => {
    const headers: Record<string, string> = n === 1
      ? { 'cache-control': 'max-age=10, stale-while-revalidate=600', age: '20' }
      : { 'cache-control': 'max-age=60' }
    setTimeout(() => {
      res.writeHead(200, headers)
      res.end(`swr ${n}`)
    }, n === 1 ? 0 : 100)
  })
  await send(rig.url('/swr'))
  const stale = await Promise.all([send(rig.url('/swr')), send(rig.url('/swr')), send(rig.url('/swr'))])
  for (const s of stale) {
    assert.equal(s.body.toString(), 'swr 1')
    assert.match(String(s.headers['cache-status']), /hit; ttl=-\d+; detail=stale-while-revalidate/)
  }
  assert.ok(await until(() => rig.hits('/swr') === 2), 'one background refresh')
  assert.ok(await until(() => false, { ms: 200 }) === false)
  const fresh = await send(rig.url('/swr'))
  assert.equal(fresh.body.toString(), 'swr 2')
  assert.match(String(fresh.headers['cache-status']), /hit/)
  assert.equal(rig.hits('/swr'), 2)
})

test('RFC 5861 §4 stale-if-error: a stale response answers when the origin fails with 5xx or cannot be reached', async () => {
  rig.on('/sie', (_req, res, n) => {
    if (n === 1) {
      res.writeHead(200, { 'cache-control': 'max-age=10, stale-if-error=600', age: '20', etag: '"s"' })
      res.end('still good')
    } else {
      res.writeHead(503, { 'content-type': 'text/plain' })
      res.end('down')
    }
  })
  await send(rig.url('/sie'))
  const r = await send(rig.url('/sie'))
  assert.equal(r.status, 200)
  assert.equal(r.body.toString(), 'still good')
  assert.match(String(r.headers['cache-status']), /fwd=stale; fwd-status=503; detail=stale-if-error/)

  // The origin unreachable: another proxy whose node refuses connections, same cache contents.
  rig.on('/sie-down', reply({ 'cache-control': 'max-age=10, stale-if-error=600', age: '20' }, 'kept'))
  await send(rig.url('/sie-down'))
  rig.on('/sie-down', (req) => { req.socket.destroy() })
  const down = await send(rig.url('/sie-down'))
  assert.equal(down.status, 200)
  assert.equal(down.body.toString(), 'kept')
  assert.match(String(down.headers['cache-status']), /detail=stale-if-error/)
})

test('§5.2.2.2 must-revalidate / §5.2.2.8 proxy-revalidate: fresh reuse is fine, stale never served (not even with max-stale or stale-if-error)', async () => {
  rig.on('/mr', reply({ 'cache-control': 'max-age=60, must-revalidate' }))
  await send(rig.url('/mr'))
  const fresh = await send(rig.url('/mr'))
  assert.match(String(fresh.headers['cache-status']), /hit/)
  assert.equal(rig.hits('/mr'), 1)

  rig.on('/mr-stale', reply({ 'cache-control': 'max-age=10, must-revalidate, stale-if-error=600', age: '20' }))
  await send(rig.url('/mr-stale'))
  await send(rig.url('/mr-stale'), { headers: { 'cache-control': 'max-stale=600' } })
  assert.equal(rig.hits('/mr-stale'), 2)
  rig.on('/mr-stale', reply({}, 'broken', 500))
  const err = await send(rig.url('/mr-stale'))
  assert.equal(err.status, 500)

  rig.on('/pr', reply({ 'cache-control': 'max-age=60, proxy-revalidate' }))
  await send(rig.url('/pr'))
  await send(rig.url('/pr'))
  assert.equal(rig.hits('/pr'), 1, 'proxy-revalidate does not forbid fresh reuse')
})

test('collapsing: 200 concurrent requests for one cold key make one upstream request and get identical bytes', async () => {
  const body = Buffer.alloc(256 * 1024)
  for (let i = 0; i < body.length; i++) body[i] = (i * 7) & 0xff
  rig.on('/collapse', (_req, res) => {
    setTimeout(() => {
      res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': String(body.length) })
      res.write(body.subarray(0, 1000))
      setTimeout(() => res.end(body.subarray(1000)), 50)
    }, 200)
  })
  const replies = await Promise.all(Array.from({ length: 200 }, () => send(rig.url('/collapse'))))
  assert.equal(rig.hits('/collapse'), 1)
  for (const r of replies) {
    assert.equal(r.status, 200)
    assert.ok(r.body.equals(body))
  }
  assert.ok(replies.filter((r) => /collapsed/.test(String(r.headers['cache-status']))).length >= 150)
})

test('collapsing: a response that is not shareable sends the waiting requests upstream on their own', async () => {
  rig.on('/collapse-private', (_req, res, n) => {
    setTimeout(() => {
      res.writeHead(200, { 'cache-control': 'private' })
      res.end(`own ${n}`)
    }, 100)
  })
  const replies = await Promise.all(Array.from({ length: 5 }, () => send(rig.url('/collapse-private'))))
  assert.equal(rig.hits('/collapse-private'), 5)
  assert.equal(new Set(replies.map((r) => r.body.toString())).size, 5)
})

test('collapsing: waiters give up after collapseTimeout and go upstream themselves', async () => {
  const local = await cacheRig({ collapseTimeout: '100ms' })
  try {
    local.on('/slow', (_req, res, n) => {
      setTimeout(() => {
        res.writeHead(200, { 'cache-control': 'max-age=60' })
        res.end(`slow ${n}`)
      }, n === 1 ? 1000 : 0)
    })
    const first = send(local.url('/slow'))
    await until(() => local.hits('/slow') === 1)
    const second = await send(local.url('/slow'))
    assert.match(String(second.headers['cache-status']), /^Portico; fwd=uri-miss; detail=collapse-timeout; fwd-status=200/)
    assert.equal((await first).status, 200)
    assert.equal(local.hits('/slow'), 2)
  } finally {
    await local.close()
  }
})

test('§4.4: a successful unsafe request invalidates the target URI and same-origin Location / Content-Location', async () => {
  for (const p of ['/inv', '/inv-loc', '/inv-cl', '/inv-keep']) rig.on(p, reply({ 'cache-control': 'max-age=60' }))
  for (const p of ['/inv', '/inv-loc', '/inv-cl', '/inv-keep']) await send(rig.url(p))
  rig.on('/inv', (req, res) => {
    if (req.method === 'GET') return reply({ 'cache-control': 'max-age=60' })(req, res, 0)
    res.writeHead(201, { location: '/inv-loc', 'content-location': `${rig.proxy.url.replace('127.0.0.1', 'localhost')}/inv-keep` })
    res.end()
  })
  rig.on('/inv-cl', (req, res) => {
    if (req.method === 'GET') return reply({ 'cache-control': 'max-age=60' })(req, res, 0)
    res.writeHead(500)
    res.end()
  })
  const post = await send(rig.url('/inv'), { method: 'POST', body: 'x' })
  assert.equal(post.status, 201)
  assert.match(String(post.headers['cache-status']), /fwd=method/)
  const failed = await send(rig.url('/inv-cl'), { method: 'DELETE' })
  assert.equal(failed.status, 500)
  const before = { inv: rig.hits('/inv'), loc: rig.hits('/inv-loc'), cl: rig.hits('/inv-cl'), keep: rig.hits('/inv-keep') }
  for (const p of ['/inv', '/inv-loc', '/inv-cl', '/inv-keep']) await send(rig.url(p))
  assert.equal(rig.hits('/inv'), before.inv + 1, 'target invalidated')
  assert.equal(rig.hits('/inv-loc'), before.loc + 1, 'same-origin Location invalidated')
  assert.equal(rig.hits('/inv-cl'), before.cl, 'a failed unsafe request invalidates nothing')
  assert.equal(rig.hits('/inv-keep'), before.keep, 'another origin (localhost vs 127.0.0.1) is not touched')
})

test('§4.4: an absolute same-origin Location invalidates whatever port it names (the port is not part of the key)', async () => {
  rig.on('/inv-abs', reply({ 'cache-control': 'max-age=60' }))
  await send(rig.url('/inv-abs'))
  rig.on('/inv-abs-post', (_req, res) => {
    res.writeHead(303, { location: `${rig.proxy.url}/inv-abs` })
    res.end()
  })
  const before = rig.hits('/inv-abs')
  assert.equal((await send(rig.url('/inv-abs'))).status, 200)
  assert.equal(rig.hits('/inv-abs'), before, 'stored before the POST')
  assert.equal((await send(rig.url('/inv-abs-post'), { method: 'POST', body: 'x' })).status, 303)
  await send(rig.url('/inv-abs'))
  assert.equal(rig.hits('/inv-abs'), before + 1, 'invalidated by the absolute Location')
})

test('RFC 9211: Cache-Status on every response of a cached route, errors and unsafe methods included', async () => {
  const gone = await send(rig.url('/nothing-scripted'))
  assert.match(String(gone.headers['cache-status']), /^Portico; fwd=uri-miss; fwd-status=404/)
  const options = await send(rig.url('/x'), { method: 'OPTIONS' })
  assert.match(String(options.headers['cache-status']), /^Portico; fwd=method; fwd-status=404/)
  const down = await cacheRig()
  await down.origin.close()
  try {
    const err = await send(down.url('/x'))
    assert.equal(err.status, 502)
    assert.match(String(err.headers['cache-status']), /^Portico; fwd=uri-miss/)
  } finally {
    await down.proxy.close()
  }
})

test('RFC 9110 §14: a Range on a stored response is answered 206 (or 416) from the cache; If-Range decides', async () => {
  rig.on('/range', reply({ 'cache-control': 'max-age=60', etag: '"rg"' }, '0123456789'))
  const miss = await send(rig.url('/range'), { headers: { range: 'bytes=0-1' } })
  assert.equal(miss.status, 200, 'with nothing stored, the Range goes to the origin as it is (this one ignores it)')
  assert.equal(rig.origin.requests.at(-1)?.headers.range, 'bytes=0-1')
  assert.doesNotMatch(String(miss.headers['cache-status']), /stored/)
  assert.equal(rig.hits('/range'), 1)
  await send(rig.url('/range'))
  const part = await send(rig.url('/range'), { headers: { range: 'bytes=2-5' } })
  assert.equal(part.status, 206)
  assert.equal(part.body.toString(), '2345')
  assert.equal(part.headers['content-range'], 'bytes 2-5/10')
  assert.match(String(part.headers['cache-status']), /hit/)
  const suffix = await send(rig.url('/range'), { headers: { range: 'bytes=-3' } })
  assert.equal(suffix.body.toString(), '789')
  const open = await send(rig.url('/range'), { headers: { range: 'bytes=7-' } })
  assert.equal(open.body.toString(), '789')
  const bad = await send(rig.url('/range'), { headers: { range: 'bytes=50-60' } })
  assert.equal(bad.status, 416)
  assert.equal(bad.headers['content-range'], 'bytes */10')
  const stale = await send(rig.url('/range'), { headers: { range: 'bytes=0-1', 'if-range': '"old"' } })
  assert.equal(stale.status, 200)
  assert.equal(stale.body.toString(), '0123456789')
  const same = await send(rig.url('/range'), { headers: { range: 'bytes=0-1', 'if-range': '"rg"' } })
  assert.equal(same.status, 206)
  assert.equal(rig.hits('/range'), 2)
})

test('review fixes: one Age per response, a 304 without Date freshens, no 304 for a stored 404, immutable alone is not freshness', async () => {
  rig.on('/age-once', (_req, res, n) => {
    setTimeout(() => {
      res.writeHead(200, { 'cache-control': 'max-age=60', age: '5' })
      res.end(`a${n}`)
    }, 100)
  })
  const replies = await Promise.all([send(rig.url('/age-once')), send(rig.url('/age-once')), send(rig.url('/age-once'))])
  for (const r of replies) {
    assert.equal(r.rawHeaders.filter((h, i) => i % 2 === 0 && h.toLowerCase() === 'age').length, 1)
  }

  rig.on('/no-date-304', (_req, res, n) => {
    if (n === 1) {
      res.writeHead(200, { 'cache-control': 'max-age=10', age: '20', etag: '"d"', date: new Date(Date.now() - 60_000).toUTCString() })
      res.end('dated')
      return
    }
    res.sendDate = false
    res.writeHead(304, { 'cache-control': 'max-age=60', etag: '"d"' })
    res.end()
  })
  await send(rig.url('/no-date-304'))
  await send(rig.url('/no-date-304'))
  const after = await send(rig.url('/no-date-304'))
  assert.match(String(after.headers['cache-status']), /hit/, 'the 304 made it fresh again')
  assert.equal(rig.hits('/no-date-304'), 2)

  rig.on('/gone', reply({ 'cache-control': 'max-age=60', etag: '"g"' }, 'not here', 404))
  await send(rig.url('/gone'))
  const g = await send(rig.url('/gone'), { headers: { 'if-none-match': '*' } })
  assert.equal(g.status, 404)

  rig.on('/immutable', reply({ 'cache-control': 'immutable' }))
  await send(rig.url('/immutable'))
  await send(rig.url('/immutable'))
  assert.equal(rig.hits('/immutable'), 2)

  rig.on('/nothing', reply({ 'cache-control': 'no-cache' }))
  const nothing = await send(rig.url('/nothing'))
  assert.match(String(nothing.headers['cache-status']), /detail=no-freshness/)
})

test('review fixes: Surrogate-Key, Cache-Tag and CDN-Cache-Control never go downstream, whatever path the response takes', async () => {
  const hidden = { 'surrogate-key': 'k', 'cache-tag': 't', 'cdn-cache-control': 'max-age=5', 'surrogate-control': 'max-age=5' }
  rig.on('/hide', reply({ 'cache-control': 'max-age=60', ...hidden }))
  for (const r of [
    await send(rig.url('/hide'), { method: 'HEAD' }),
    await send(rig.url('/hide'), { method: 'POST', body: 'x' }),
    await send(rig.url('/hide'), { method: 'OPTIONS' }),
    await send(rig.url('/hide'), { headers: { range: 'bytes=0-1' } }),
    await send(rig.url('/hide')),
    await send(rig.url('/hide'))
  ]) {
    for (const h of Object.keys(hidden)) assert.equal(r.headers[h], undefined, h)
  }
})

test('review fixes: an invalidation while a response is in flight keeps that response out of the store', async () => {
  let release: (() => void) | null = null
  rig.on('/race', (req, res, n) => {
    if (req.method === 'POST') {
      res.writeHead(204)
      res.end()
      return
    }
    res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': '4' })
    res.write('ab')
    if (n === 1) release = () => res.end('cd')
    else res.end('cd')
  })
  const pending = send(rig.url('/race'))
  assert.ok(await until(() => release !== null))
  await send(rig.url('/race'), { method: 'POST', body: 'change' })
  release!()
  assert.equal((await pending).body.toString(), 'abcd')
  const next = await send(rig.url('/race'))
  assert.match(String(next.headers['cache-status']), /fwd=uri-miss/)
})

test('review fixes: a body of unknown length over maxObjectSize streams to every waiter with backpressure and is not kept', async () => {
  const local = await cacheRig({ maxObjectSize: '64kb' })
  try {
    const block = Buffer.alloc(16 * 1024, 7)
    local.on('/huge', (_req, res) => {
      setTimeout(() => {
        res.writeHead(200, { 'cache-control': 'max-age=60' })
        let i = 0
        const write = (): void => {
          while (i < 256) {
            i++
            if (!res.write(block)) {
              res.once('drain', write)
              return
            }
          }
          res.end()
        }
        write()
      }, 100)
    })
    const [a, b] = await Promise.all([send(local.url('/huge')), send(local.url('/huge'))])
    assert.equal(a.body.length, 256 * block.length)
    assert.ok(b.body.equals(a.body))
    assert.equal(local.hits('/huge'), 1, 'collapsed before the size was known')
    await send(local.url('/huge'))
    assert.equal(local.hits('/huge'), 2, 'not stored')
  } finally {
    await local.close()
  }
})

test('collapsing: a request arriving while the body streams joins at the first byte and gets it all', async () => {
  let release: (() => void) | null = null
  rig.on('/late-join', (_req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': '10' })
    res.write('01234')
    release = () => res.end('56789')
  })
  const stats = (): { collapsed: number } => rig.proxy.proxy.cacheStats() as { collapsed: number }
  const before = stats().collapsed
  const first = send(rig.url('/late-join'))
  assert.ok(await until(() => release !== null))
  const second = send(rig.url('/late-join'))
  assert.ok(await until(() => stats().collapsed === before + 1), 'the second request joined the fill')
  release!()
  const [a, b] = await Promise.all([first, second])
  assert.equal(a.body.toString(), '0123456789')
  assert.equal(b.body.toString(), '0123456789')
  assert.match(String(b.headers['cache-status']), /collapsed/)
  assert.equal(rig.hits('/late-join'), 1)
})

test('collapsing: waiters get the head the store keeps, never the leader\'s private fields (private="set-cookie", Proxy-Authenticate)', async () => {
  rig.on('/shared-head', (_req, res) => {
    setTimeout(() => {
      res.writeHead(200, { 'cache-control': 'max-age=60, private="set-cookie"', 'set-cookie': 'sid=leader', 'proxy-authenticate': 'Basic realm="x"', 'content-length': '2' })
      res.end('ok')
    }, 150)
  })
  const replies = await Promise.all(Array.from({ length: 4 }, () => send(rig.url('/shared-head'))))
  assert.equal(rig.hits('/shared-head'), 1)
  const withCookie = replies.filter((r) => r.headers['set-cookie'] !== undefined)
  assert.equal(withCookie.length, 1, 'only the leader, whose request fetched it')
  assert.equal(replies.filter((r) => r.headers['proxy-authenticate'] !== undefined).length, 1)
  const hit = await send(rig.url('/shared-head'))
  assert.equal(hit.headers['set-cookie'], undefined)
  assert.equal(hit.headers['proxy-authenticate'], undefined)
})

test('RFC 5861 §4: a request\'s own stale-if-error lets the stale response answer a 5xx', async () => {
  rig.on('/sie-req', (_req, res, n) => {
    if (n === 1) {
      res.writeHead(200, { 'cache-control': 'max-age=10', age: '20', etag: '"q"' })
      res.end('old but fine')
    } else {
      res.writeHead(500)
      res.end('broken')
    }
  })
  await send(rig.url('/sie-req'))
  const plain = await send(rig.url('/sie-req'))
  assert.equal(plain.status, 500, 'no stale-if-error anywhere: the error goes through')
  const asked = await send(rig.url('/sie-req'), { headers: { 'cache-control': 'stale-if-error=600' } })
  assert.equal(asked.status, 200)
  assert.equal(asked.body.toString(), 'old but fine')
  assert.match(String(asked.headers['cache-status']), /detail=stale-if-error/)
})
