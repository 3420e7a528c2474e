import { test } from 'node:test'
import assert from 'node:assert/strict'
import { rawExchange, send, startOrigin, startProxy, type Origin } from '../helpers/servers.js'

/** An origin that answers with its name and the target it received. */
async function named (name: string): Promise<Origin> {
  return startOrigin((req, res) => res.end(`${name} ${req.url}`))
}

test('host routing: exact, prefix key, wildcard, catch-all, with precedence', async (t) => {
  const [exact, prefix, wild, all] = await Promise.all([named('exact'), named('prefix'), named('wild'), named('all')])
  const proxy = await startProxy({
    upstreams: {
      'foobar.localhost': [exact.url],
      'api.': [prefix.url],
      '*.example.com': [wild.url],
      '*': [all.url]
    }
  })
  t.after(() => Promise.all([proxy.close(), exact.close(), prefix.close(), wild.close(), all.close()]))
  const via = async (host: string): Promise<string> => (await send(`${proxy.url}/p`, { headers: { host } })).body.toString()
  assert.equal(await via('foobar.localhost'), 'exact /p')
  assert.equal(await via('FooBar.LocalHost:8080'), 'exact /p', 'case and port ignored')
  assert.equal(await via('foobar.localhost.'), 'exact /p', 'trailing dot ignored')
  assert.equal(await via('api.anything.test'), 'prefix /p')
  assert.equal(await via('www.example.com'), 'wild /p')
  assert.equal(await via('a.b.example.com'), 'wild /p', 'wildcards cover one or more labels')
  assert.equal(await via('example.com'), 'all /p', 'the bare domain is not covered by *.example.com')
  assert.equal(await via('api.example.com'), 'wild /p', 'longest key wins between prefix and wildcard')
  assert.equal(await via('other.test'), 'all /p')
})

test('path routing: segment boundaries, longest match, stripPrefix byte-exact', async (t) => {
  const [root, api, v1] = await Promise.all([named('root'), named('api'), named('v1')])
  const proxy = await startProxy({
    routes: [
      { host: 'site.test', upstream: [root.url] },
      { host: 'site.test', path: '/api', stripPrefix: true, upstream: [api.url] },
      { host: 'site.test', path: '/api/v1', upstream: [v1.url] }
    ]
  })
  t.after(() => Promise.all([proxy.close(), root.close(), api.close(), v1.close()]))
  const get = async (p: string): Promise<string> => (await send(proxy.url, { path: p, headers: { host: 'site.test' } })).body.toString()
  assert.equal(await get('/api'), 'api /')
  assert.equal(await get('/api/'), 'api /')
  assert.equal(await get('/api/x/y?q=%2F%20&b'), 'api /x/y?q=%2F%20&b')
  assert.equal(await get('/api?q=1'), 'api /?q=1')
  assert.equal(await get('/apix'), 'root /apix')
  assert.equal(await get('/api/v1/users?id=7'), 'v1 /api/v1/users?id=7', 'not stripped on a route without stripPrefix')
  assert.equal(await get('/api/v10'), 'api /v10')
  assert.equal(await get('/%41pi/../x//y'), 'root /%41pi/../x//y', 'paths are forwarded without decoding or normalising')
})

test('no route: 404 with a short plain body, nothing forwarded', async (t) => {
  const origin = await named('o')
  const proxy = await startProxy({ routes: [{ host: 'known.test', path: '/app', upstream: [origin.url] }] })
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  const unknownHost = await send(`${proxy.url}/app`, { headers: { host: 'unknown.test' } })
  assert.equal(unknownHost.status, 404)
  assert.equal(unknownHost.headers['content-type'], 'text/plain; charset=utf-8')
  assert.match(unknownHost.body.toString(), /PORTICO_ERR_NO_ROUTE/)
  assert.match(String(unknownHost.headers['proxy-status']), /error=destination_not_found/)
  const unknownPath = await send(`${proxy.url}/other`, { headers: { host: 'known.test' } })
  assert.equal(unknownPath.status, 404)
  assert.equal(origin.requests.length, 0)
})

test('never an open proxy: absolute-form for unknown hosts is 404, CONNECT is refused', async (t) => {
  const origin = await named('o')
  const proxy = await startProxy({ upstreams: { 'known.test': [origin.url] } })
  t.after(() => Promise.all([proxy.close(), origin.close()]))

  const foreign = await rawExchange(proxy.port, 'GET http://127.0.0.1:1/secret HTTP/1.1\r\nHost: known.test\r\nConnection: close\r\n\r\n')
  assert.match(foreign, /^HTTP\/1\.1 404 /)
  // RFC 9112 §3.2.2: the authority of an absolute-form target wins over Host.
  const known = await rawExchange(proxy.port, 'GET http://known.test/a?b=1 HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n')
  assert.match(known, /^HTTP\/1\.1 200 /)
  assert.match(known, /o \/a\?b=1$/)

  const connect = await rawExchange(proxy.port, 'CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n')
  assert.match(connect, /^HTTP\/1\.1 405 /)
  assert.equal(origin.requests.length, 1)
  assert.equal(origin.requests[0].url, '/a?b=1')
})

test('malformed requests: bad request line 400, duplicate Host 400, missing Host 400, oversized head 431', async (t) => {
  const origin = await named('o')
  const proxy = await startProxy({ upstreams: { '*': [origin.url] }, server: { maxHeaderSize: '4kb' } })
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  assert.match(await rawExchange(proxy.port, 'GARBAGE\r\n\r\n'), /^HTTP\/1\.1 400 /)
  assert.match(await rawExchange(proxy.port, 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 400 /)
  assert.match(await rawExchange(proxy.port, 'GET / HTTP/1.1\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 400 /)
  assert.match(await rawExchange(proxy.port, `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(8000)}\r\n\r\n`), /^HTTP\/1\.1 431 /)
  assert.match(await rawExchange(proxy.port, 'GET / HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 400 /)
  assert.equal(origin.requests.length, 0)
  // HTTP/1.0 without Host is valid and goes to the catch-all.
  assert.match(await rawExchange(proxy.port, 'GET /ten HTTP/1.0\r\n\r\n'), /^HTTP\/1\.1 200 [\s\S]*o \/ten$/)
})

test('reload(options) swaps routes at once; an invalid config is refused and the old one stays', async (t) => {
  const [a, b] = await Promise.all([named('a'), named('b')])
  const proxy = await startProxy({ upstreams: { '*': [a.url] } })
  t.after(() => Promise.all([proxy.close(), a.close(), b.close()]))
  assert.equal((await send(`${proxy.url}/x`)).body.toString(), 'a /x')
  await proxy.proxy.reload({ upstreams: { '*': [b.url] } })
  assert.equal((await send(`${proxy.url}/x`)).body.toString(), 'b /x')
  await assert.rejects(proxy.proxy.reload({ upstreams: { '*': ['not a url'] } }), /upstreams\.\*\.0: expected a node URL/)
  assert.equal((await send(`${proxy.url}/y`)).body.toString(), 'b /y')
})
