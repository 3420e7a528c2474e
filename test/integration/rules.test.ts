/**
 * Traffic rules (docs/rules.md) with real nodes on loopback: what the node receives and what the client gets, for
 * access control, fixed answers and redirects, path rewrites, header edits, security headers, CORS, redirect and
 * cookie rewriting, error pages, the route body limit and forwardAuth; and the config errors each rule can raise.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { startOrigin, startProxy, send, closedPort, type Origin, type RunningProxy } from '../helpers/servers.js'
import { loadConfigObjectSync } from '../../src/config/load.js'
import type { PorticoConfig } from '../../src/index.js'

/** An origin that echoes what it received as JSON: method, url, headers. */
async function echoOrigin (): Promise<Origin> {
  return await startOrigin((req, res) => {
    const body = JSON.stringify({ method: req.method, url: req.url, headers: req.headers })
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
    res.end(body)
  })
}

async function withProxy (t: { after: (fn: () => Promise<void>) => void }, config: PorticoConfig, options: { baseDir?: string } = {}): Promise<RunningProxy> {
  const p = await startProxy(config, options)
  t.after(() => p.close())
  return p
}

function json (body: Buffer): { method: string, url: string, headers: Record<string, string> } {
  return JSON.parse(body.toString()) as { method: string, url: string, headers: Record<string, string> }
}

// --- access control ------------------------------------------------------------------------------------------------

test('allow/deny: 403 before the node, on the trusted client address', async (t) => {
  const origin = await echoOrigin()
  t.after(() => origin.close())
  const p = await withProxy(t, {
    trustedProxies: ['loopback'],
    routes: [
      { host: 'deny.test', upstream: [origin.url], deny: ['203.0.113.0/24'] },
      { host: 'allow.test', upstream: [origin.url], allow: ['10.0.0.0/8'] },
      { host: 'open.test', upstream: [origin.url], allow: ['loopback'], deny: ['198.51.100.7'] }
    ]
  })
  const denied = await send(p.url, { headers: { host: 'deny.test', 'x-forwarded-for': '203.0.113.9' } })
  assert.equal(denied.status, 403)
  assert.match(String(denied.headers['proxy-status']), /PORTICO_ERR_FORBIDDEN/)
  assert.equal((await send(p.url, { headers: { host: 'deny.test', 'x-forwarded-for': '192.0.2.1' } })).status, 200)
  assert.equal((await send(p.url, { headers: { host: 'allow.test' } })).status, 403, 'loopback is not in 10/8')
  assert.equal((await send(p.url, { headers: { host: 'allow.test', 'x-forwarded-for': '10.1.2.3' } })).status, 200)
  assert.equal((await send(p.url, { headers: { host: 'open.test' } })).status, 200)
  assert.equal((await send(p.url, { headers: { host: 'open.test', 'x-forwarded-for': '198.51.100.7' } })).status, 403, 'deny wins over allow')
  assert.equal(origin.requests.length, 3, 'refused requests never reached the node')
})

test('a top-level rule is every route\'s default; a route turns it off with false', async (t) => {
  const origin = await echoOrigin()
  t.after(() => origin.close())
  const p = await withProxy(t, {
    deny: ['loopback'],
    routes: [
      { host: 'a.test', upstream: [origin.url] },
      { host: 'b.test', upstream: [origin.url], deny: false }
    ]
  })
  assert.equal((await send(p.url, { headers: { host: 'a.test' } })).status, 403)
  assert.equal((await send(p.url, { headers: { host: 'b.test' } })).status, 200)
})

// --- respond and redirect ------------------------------------------------------------------------------------------

test('respond: a fixed answer without an upstream, placeholders in body and fields', async (t) => {
  const p = await withProxy(t, {
    routes: [
      { host: 'm.test', respond: { status: 503, body: 'down for maintenance ({request.host}, {request.id})\n', headers: { 'retry-after': '120', 'x-route': '{route}' } } },
      { host: 'h.test', path: '/healthz', respond: { status: 200, body: 'ok' } }
    ]
  })
  const r = await send(p.url, { headers: { host: 'm.test' }, path: '/any' })
  assert.equal(r.status, 503)
  assert.equal(r.headers['retry-after'], '120')
  assert.equal(r.headers['x-route'], 'm.test')
  assert.match(r.body.toString(), /^down for maintenance \(m\.test, [0-9a-z-]+\)\n$/)
  assert.equal(r.headers['content-type'], 'text/plain; charset=utf-8')
  const h = await send(p.url, { headers: { host: 'h.test' }, path: '/healthz' })
  assert.deepEqual([h.status, h.body.toString(), h.headers['content-length']], [200, 'ok', '2'])
  const head = await send(p.url, { method: 'HEAD', headers: { host: 'h.test' }, path: '/healthz' })
  assert.deepEqual([head.status, head.body.length], [200, 0])
})

test('redirect: to a template with placeholders; with match only matching paths, with capture groups', async (t) => {
  const origin = await echoOrigin()
  t.after(() => origin.close())
  const p = await withProxy(t, {
    routes: [
      { host: 'old.test', redirect: { to: 'https://{request.host}{request.uri}' } },
      { host: 'docs.test', upstream: [origin.url], redirect: { match: '^/v1/(.*)$', to: '/v2/{1}', status: 301 } }
    ]
  })
  const r = await send(p.url, { headers: { host: 'old.test:8080' }, path: '/a/b?x=1' })
  assert.equal(r.status, 308)
  assert.equal(r.headers.location, 'https://old.test:8080/a/b?x=1')
  const moved = await send(p.url, { headers: { host: 'docs.test' }, path: '/v1/guide/intro?lang=en' })
  assert.equal(moved.status, 301)
  assert.equal(moved.headers.location, '/v2/guide/intro')
  const through = await send(p.url, { headers: { host: 'docs.test' }, path: '/v2/guide' })
  assert.equal(through.status, 200)
  assert.equal(json(through.body).url, '/v2/guide')
  assert.equal(origin.requests.length, 1)
})

// --- path rewrites ------------------------------------------------------------------------------------------------

test('path rewrites: addPrefix, replacePath, rewrite with groups; the query kept unless the replacement sets one', async (t) => {
  const origin = await echoOrigin()
  t.after(() => origin.close())
  const p = await withProxy(t, {
    routes: [
      { host: 'add.test', path: '/api', stripPrefix: true, addPrefix: '/v2', upstream: [origin.url] },
      { host: 'replace.test', replacePath: '/status', upstream: [origin.url] },
      { host: 'rw.test', rewrite: { match: '^/users/([0-9]+)/?$', replace: '/u?id={1}' }, upstream: [origin.url] },
      { host: 'rw2.test', rewrite: { match: '^/old/', replace: '/new/' }, upstream: [origin.url] }
    ]
  })
  const url = async (host: string, target: string): Promise<string> => json((await send(p.url, { headers: { host }, path: target })).body).url
  assert.equal(await url('add.test', '/api/items?x=1'), '/v2/items?x=1')
  assert.equal(await url('add.test', '/api'), '/v2/')
  assert.equal(await url('replace.test', '/anything/at/all?q=2'), '/status?q=2')
  assert.equal(await url('rw.test', '/users/42?ignored=1'), '/u?id=42')
  assert.equal(await url('rw.test', '/users/abc?kept=1'), '/users/abc?kept=1', 'no match: unchanged')
  assert.equal(await url('rw2.test', '/old/page?k=v'), '/new/page?k=v')
})

// --- header edits --------------------------------------------------------------------------------------------------

test('headers.request and headers.response: set, add, remove, with placeholders', async (t) => {
  const origin = await startOrigin((req, res) => {
    res.setHeader('server', 'node-internal')
    res.setHeader('x-powered-by', 'secret')
    res.setHeader('x-seen', JSON.stringify({ user: req.headers['x-user'], client: req.headers['x-client'], remove: req.headers['x-remove-me'], add: req.headers['x-tag'] }))
    res.end('ok')
  })
  t.after(() => origin.close())
  const p = await withProxy(t, {
    headers: { response: { set: { 'x-frame': 'top-level' } } },
    routes: [{
      host: 'h.test',
      upstream: [origin.url],
      headers: {
        request: { set: { 'x-user': 'anonymous', 'x-client': '{client.ip} via {request.scheme}' }, add: { 'x-tag': 'portico' }, remove: ['x-remove-me'] },
        response: { remove: ['x-powered-by', 'server'], set: { 'x-request-id': '{request.id}' }, add: { 'x-extra': 'one' } }
      }
    }, { host: 'd.test', upstream: [origin.url] }]
  })
  const r = await send(p.url, { headers: { host: 'h.test', 'x-user': 'admin', 'x-remove-me': '1', 'x-tag': 'client' } })
  const seen = JSON.parse(String(r.headers['x-seen'])) as Record<string, string>
  assert.deepEqual(seen, { user: 'anonymous', client: '127.0.0.1 via http', add: 'client, portico' }, 'x-remove-me removed')
  assert.equal(r.headers['x-powered-by'], undefined)
  assert.equal(r.headers.server, undefined)
  assert.match(String(r.headers['x-request-id']), /^[0-9a-z-]+$/)
  assert.equal(r.headers['x-extra'], 'one')
  assert.equal(r.headers['x-frame'], undefined, 'the route\'s headers.response replaces the top level\'s')
  const d = await send(p.url, { headers: { host: 'd.test' } })
  assert.equal(d.headers['x-frame'], 'top-level')
})

test('securityHeaders: the preset on responses that lack the fields, overridable; HSTS only over TLS', async (t) => {
  const origin = await startOrigin((req, res) => {
    if (req.url === '/own') res.setHeader('x-frame-options', 'DENY')
    res.end('ok')
  })
  t.after(() => origin.close())
  const p = await withProxy(t, {
    routes: [
      { host: 's.test', upstream: [origin.url], securityHeaders: true },
      { host: 'o.test', upstream: [origin.url], securityHeaders: { referrerPolicy: 'no-referrer', frameOptions: false, contentSecurityPolicy: "default-src 'self'" } }
    ]
  })
  const s = await send(p.url, { headers: { host: 's.test' } })
  assert.equal(s.headers['x-content-type-options'], 'nosniff')
  assert.equal(s.headers['referrer-policy'], 'strict-origin-when-cross-origin')
  assert.equal(s.headers['x-frame-options'], 'SAMEORIGIN')
  assert.equal(s.headers['strict-transport-security'], undefined, 'never over cleartext (RFC 6797 §7.2)')
  assert.equal((await send(p.url, { headers: { host: 's.test' }, path: '/own' })).headers['x-frame-options'], 'DENY', 'the node\'s own value stands')
  const o = await send(p.url, { headers: { host: 'o.test' } })
  assert.equal(o.headers['referrer-policy'], 'no-referrer')
  assert.equal(o.headers['x-frame-options'], undefined)
  assert.equal(o.headers['content-security-policy'], "default-src 'self'")
})

// --- CORS ---------------------------------------------------------------------------------------------------------

test('cors: preflights answered by Portico; only allowed origins echoed; Vary: Origin; the node\'s own fields replaced', async (t) => {
  const origin = await startOrigin((_req, res) => {
    res.setHeader('access-control-allow-origin', '*')
    res.end('ok')
  })
  t.after(() => origin.close())
  const p = await withProxy(t, {
    routes: [{
      host: 'api.test',
      upstream: [origin.url],
      cors: { origins: ['https://app.example.com', 'https://*.example.org'], credentials: true, maxAge: '10m', exposeHeaders: ['x-total'] }
    }]
  })
  const pre = await send(p.url, { method: 'OPTIONS', headers: { host: 'api.test', origin: 'https://app.example.com', 'access-control-request-method': 'PUT', 'access-control-request-headers': 'content-type, x-token' } })
  assert.equal(pre.status, 204)
  assert.equal(pre.headers['access-control-allow-origin'], 'https://app.example.com')
  assert.equal(pre.headers['access-control-allow-credentials'], 'true')
  assert.equal(pre.headers['access-control-allow-methods'], 'GET, HEAD, POST, PUT, PATCH, DELETE')
  assert.equal(pre.headers['access-control-allow-headers'], 'content-type, x-token')
  assert.equal(pre.headers['access-control-max-age'], '600')
  assert.match(String(pre.headers.vary), /Origin/)
  const sub = await send(p.url, { method: 'OPTIONS', headers: { host: 'api.test', origin: 'https://a.b.example.org', 'access-control-request-method': 'GET' } })
  assert.equal(sub.headers['access-control-allow-origin'], 'https://a.b.example.org')
  const evil = await send(p.url, { method: 'OPTIONS', headers: { host: 'api.test', origin: 'https://evil.example.com', 'access-control-request-method': 'GET' } })
  assert.equal(evil.status, 204)
  assert.equal(evil.headers['access-control-allow-origin'], undefined)
  assert.equal(origin.requests.length, 0, 'preflights never reach the node')

  const ok = await send(p.url, { headers: { host: 'api.test', origin: 'https://app.example.com' } })
  assert.equal(ok.headers['access-control-allow-origin'], 'https://app.example.com')
  assert.equal(ok.headers['access-control-expose-headers'], 'x-total')
  assert.equal(ok.headers.vary, 'Origin')
  const bad = await send(p.url, { headers: { host: 'api.test', origin: 'https://evil.example.com' } })
  assert.equal(bad.headers['access-control-allow-origin'], undefined, 'the node\'s "*" is not passed on')
  assert.equal(bad.headers.vary, 'Origin')
  const none = await send(p.url, { headers: { host: 'api.test' } })
  assert.equal(none.headers.vary, 'Origin')
})

// --- redirect and cookie rewriting ---------------------------------------------------------------------------------

test('rewriteRedirects and rewriteCookies: a node redirecting to its own absolute URL and to a root-relative path', async (t) => {
  let originUrl = ''
  const origin = await startOrigin((req, res) => {
    if (req.url === '/login') {
      res.writeHead(302, { location: `${originUrl}/dashboard?x=1`, 'set-cookie': ['sid=1; Path=/; HttpOnly', `pref=2; Path=/settings; Domain=127.0.0.1`] })
    } else if (req.url === '/moved') {
      res.writeHead(301, { location: '/new-home', 'content-location': '/moved' })
    } else if (req.url === '/elsewhere') {
      res.writeHead(302, { location: 'https://other.example.com/x' })
    } else {
      res.writeHead(200, { refresh: '5; url=/next' })
    }
    res.end()
  })
  originUrl = origin.url
  t.after(() => origin.close())
  const p = await withProxy(t, {
    routes: [
      { host: 'app.test', path: '/app', stripPrefix: true, preserveHost: false, upstream: [origin.url] },
      { host: 'plain.test', upstream: [origin.url], rewriteRedirects: false }
    ]
  })
  const login = await send(p.url, { headers: { host: 'app.test' }, path: '/app/login' })
  assert.equal(login.status, 302)
  assert.equal(login.headers.location, 'http://app.test/app/dashboard?x=1')
  assert.deepEqual(login.headers['set-cookie'], ['sid=1; Path=/app; HttpOnly', 'pref=2; Path=/app/settings; Domain=app.test'])
  const moved = await send(p.url, { headers: { host: 'app.test' }, path: '/app/moved' })
  assert.equal(moved.headers.location, '/app/new-home')
  assert.equal(moved.headers['content-location'], '/app/moved')
  assert.equal((await send(p.url, { headers: { host: 'app.test' }, path: '/app/elsewhere' })).headers.location, 'https://other.example.com/x', 'another host is left alone')
  assert.equal((await send(p.url, { headers: { host: 'app.test' }, path: '/app/page' })).headers.refresh, '5; url=/app/next')
  assert.equal((await send(p.url, { headers: { host: 'plain.test' }, path: '/moved' })).headers.location, '/new-home')
})

// --- error pages --------------------------------------------------------------------------------------------------

test('errorPages: Portico\'s own error bodies replaced, status, Proxy-Status and request id kept; intercept replaces the node\'s', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'portico-pages-'))
  writeFileSync(path.join(dir, '502.html'), '<h1>Bad gateway</h1>\n')
  writeFileSync(path.join(dir, 'error.html'), '<h1>Something went wrong</h1>\n')
  const origin = await startOrigin((req, res) => {
    if (req.url === '/boom') {
      res.writeHead(500, { 'content-type': 'text/plain', 'x-internal': 'stack trace here' })
      res.end('Error: at Object.<anonymous> (/srv/app.js:1:1)')
    } else if (req.url === '/auth') {
      res.writeHead(401, { 'www-authenticate': 'Bearer' })
      res.end('no')
    } else res.end('fine')
  })
  t.after(() => origin.close())
  const dead = await closedPort()
  const p = await withProxy(t, {
    routes: [
      { host: 'down.test', upstream: [`http://127.0.0.1:${dead}`], errorPages: { 502: './502.html', '5xx': './error.html' } },
      { host: 'app.test', upstream: [origin.url], errorPages: { '5xx': './error.html', '4xx': './error.html', intercept: true } },
      { host: 'pass.test', upstream: [origin.url], errorPages: { '5xx': './error.html' } }
    ]
  }, { baseDir: dir })
  const down = await send(p.url, { headers: { host: 'down.test' } })
  assert.equal(down.status, 502)
  assert.equal(down.body.toString(), '<h1>Bad gateway</h1>\n')
  assert.equal(down.headers['content-type'], 'text/html; charset=utf-8')
  assert.match(String(down.headers['proxy-status']), /PORTICO_ERR_UPSTREAM_REFUSED/)
  assert.match(String(down.headers['x-request-id']), /^[0-9a-z-]+$/)

  const boom = await send(p.url, { headers: { host: 'app.test' }, path: '/boom' })
  assert.equal(boom.status, 500)
  assert.equal(boom.body.toString(), '<h1>Something went wrong</h1>\n')
  assert.equal(boom.headers['x-internal'], undefined)
  assert.match(String(boom.headers['x-request-id']), /^[0-9a-z-]+$/)
  const auth = await send(p.url, { headers: { host: 'app.test' }, path: '/auth' })
  assert.deepEqual([auth.status, auth.headers['www-authenticate'], auth.body.toString()], [401, 'Bearer', '<h1>Something went wrong</h1>\n'])
  assert.equal((await send(p.url, { headers: { host: 'app.test' }, path: '/ok' })).body.toString(), 'fine')
  const kept = await send(p.url, { headers: { host: 'pass.test' }, path: '/boom' })
  assert.equal(kept.body.toString(), 'Error: at Object.<anonymous> (/srv/app.js:1:1)', 'without intercept the node\'s body stands')
})

// --- body limit ---------------------------------------------------------------------------------------------------

test('limits.maxRequestBody on a route: 413 on that route, the top-level limit elsewhere', async (t) => {
  const origin = await startOrigin((req, res) => { req.resume(); req.on('end', () => res.end('stored')) })
  t.after(() => origin.close())
  const p = await withProxy(t, {
    limits: { maxRequestBody: '1mb' },
    routes: [
      { host: 'small.test', upstream: [origin.url], limits: { maxRequestBody: '1kb' } },
      { host: 'big.test', upstream: [origin.url] }
    ]
  })
  const body = Buffer.alloc(4096, 'x')
  assert.equal((await send(p.url, { method: 'POST', headers: { host: 'small.test', 'content-length': String(body.length) }, body })).status, 413)
  assert.equal((await send(p.url, { method: 'POST', headers: { host: 'big.test', 'content-length': String(body.length) }, body })).status, 200)
})

// --- forwardAuth --------------------------------------------------------------------------------------------------

test('forwardAuth: a 2xx lets the request through with copied fields; other answers go to the client as they are', async (t) => {
  const asked: http.IncomingHttpHeaders[] = []
  const auth = await startOrigin((req, res) => {
    asked.push(req.headers)
    const token = req.headers.authorization
    if (token === 'Bearer good') {
      res.writeHead(200, { 'x-auth-user': 'alice', 'x-auth-groups': 'admin', 'x-not-copied': '1' })
      res.end()
    } else if (token === undefined) {
      res.writeHead(302, { location: 'https://login.example.com/?rd=' + encodeURIComponent(`${String(req.headers['x-forwarded-proto'])}://${String(req.headers['x-forwarded-host'])}${String(req.headers['x-forwarded-uri'])}`) })
      res.end()
    } else {
      res.writeHead(403, { 'content-type': 'text/plain' })
      res.end('forbidden by policy')
    }
  })
  const origin = await echoOrigin()
  t.after(() => Promise.all([auth.close(), origin.close()]).then(() => {}))
  const dead = await closedPort()
  const p = await withProxy(t, {
    routes: [
      { host: 'app.test', upstream: [origin.url], forwardAuth: { url: `${auth.url}/verify`, copyResponseHeaders: ['X-Auth-User', 'x-auth-groups'] } },
      { host: 'down.test', upstream: [origin.url], forwardAuth: { url: `http://127.0.0.1:${dead}/verify` } }
    ]
  })
  const ok = await send(p.url, { method: 'POST', headers: { host: 'app.test', authorization: 'Bearer good', 'x-auth-user': 'mallory', 'content-length': '2' }, path: '/items?x=1', body: 'hi' })
  assert.equal(ok.status, 200)
  const seen = json(ok.body)
  assert.equal(seen.headers['x-auth-user'], 'alice', 'the client cannot set the copied field itself')
  assert.equal(seen.headers['x-auth-groups'], 'admin')
  assert.equal(seen.headers['x-not-copied'], undefined)
  assert.equal(asked[0]['x-forwarded-method'], 'POST')
  assert.equal(asked[0]['x-forwarded-uri'], '/items?x=1')
  assert.equal(asked[0]['x-forwarded-host'], 'app.test')
  assert.equal(asked[0]['content-length'], undefined, 'the auth service gets no body')

  const login = await send(p.url, { headers: { host: 'app.test' }, path: '/secret' })
  assert.equal(login.status, 302)
  assert.equal(login.headers.location, 'https://login.example.com/?rd=' + encodeURIComponent('http://app.test/secret'))
  const denied = await send(p.url, { headers: { host: 'app.test', authorization: 'Bearer bad' } })
  assert.deepEqual([denied.status, denied.body.toString()], [403, 'forbidden by policy'])
  assert.equal(origin.requests.length, 1, 'only the authorised request reached the node')

  const down = await send(p.url, { headers: { host: 'down.test' } })
  assert.equal(down.status, 502)
  assert.match(String(down.headers['proxy-status']), /PORTICO_ERR_FORWARD_AUTH/)
  assert.equal(origin.requests.length, 1)
})

// --- config errors ------------------------------------------------------------------------------------------------

test('config errors for each rule name the key path', () => {
  const cases: [PorticoConfig, RegExp][] = [
    [{ routes: [{ host: 'a', upstream: ['http://127.0.0.1:1'], headers: { request: { set: { 'x-a': '{nope}' } } } }] }, /routes\.0\.headers\.request\.set\.x-a.*unknown placeholder \{nope\}/],
    [{ routes: [{ host: 'a', upstream: ['http://127.0.0.1:1'], rewrite: { match: '^(a+)+$', replace: '/' } }] }, /routes\.0\.rewrite\.match.*catastrophically/],
    [{ routes: [{ host: 'a', upstream: ['http://127.0.0.1:1'], rewrite: { match: '(', replace: '/' } }] }, /routes\.0\.rewrite\.match.*regular expression/],
    [{ routes: [{ host: 'a', upstream: ['http://127.0.0.1:1'], redirect: { match: '^/x', to: '/{2}' }, respond: { status: 200 } }] }, /./],
    [{ routes: [{ host: 'a', redirect: { to: '/y/{1}' } }] }, /routes\.0\.redirect\.to.*capture groups/],
    [{ routes: [{ host: 'a' }] }, /routes\.0\.upstream.*needs an upstream/],
    [{ routes: [{ host: 'a', upstream: ['http://127.0.0.1:1'], respond: { status: 200 } }] }, /routes\.0\.upstream.*never be used/],
    [{ routes: [{ host: 'a', upstream: ['http://127.0.0.1:1'], allow: ['10.0.0.0/33'] }] }, /routes\.0\.allow\.0/],
    [{ routes: [{ host: 'a', upstream: ['http://127.0.0.1:1'], errorPages: { 502: './missing.html' } }] }, /routes\.0\.errorPages\.502.*no such file/],
    [{ routes: [{ host: 'a', upstream: ['http://127.0.0.1:1'], errorPages: { 200: './x.html' } }] }, /routes\.0\.errorPages\.200/],
    [{ routes: [{ host: 'a', upstream: ['http://127.0.0.1:1'], cors: { origins: ['https://a.com/path'] } }] }, /routes\.0\.cors\.origins\.0/],
    [{ routes: [{ host: 'a', upstream: ['http://127.0.0.1:1'], headers: { response: { set: { 'x-e': '{env.PORTICO_SURELY_UNSET_VAR}' } } } }] }, /PORTICO_SURELY_UNSET_VAR is not set/],
    [{ routes: [{ host: 'a', upstream: ['http://127.0.0.1:1'], replacePath: '/a', rewrite: { match: 'a', replace: 'b' } }] }, /at most one of "replacePath" and "rewrite"/]
  ]
  for (const [config, message] of cases) {
    assert.throws(() => loadConfigObjectSync(config), (err: Error) => {
      assert.equal(err.name, 'ConfigError', err.message)
      assert.match(err.message, message)
      return true
    }, JSON.stringify(config))
  }
})

test('{env.NAME} is read when the config is loaded', async (t) => {
  process.env.PORTICO_TEST_TEAM = 'blue'
  t.after(() => { delete process.env.PORTICO_TEST_TEAM })
  const origin = await echoOrigin()
  t.after(() => origin.close())
  const p = await withProxy(t, { routes: [{ host: 'e.test', upstream: [origin.url], headers: { request: { set: { 'x-team': '{env.PORTICO_TEST_TEAM}' } } } }] })
  process.env.PORTICO_TEST_TEAM = 'red'
  assert.equal(json((await send(p.url, { headers: { host: 'e.test' } })).body).headers['x-team'], 'blue')
})

test('proxy() under a framework mount maps the node\'s redirects and cookies back under the mount', async (t) => {
  const { default: express } = await import('express')
  const { proxy } = await import('../../src/index.js')
  const origin = await startOrigin((req, res) => {
    if (req.url === '/login') res.writeHead(302, { location: '/home', 'set-cookie': 'sid=1; Path=/' })
    res.end()
  })
  t.after(() => origin.close())
  const app = express()
  app.use('/google', proxy({ upstream: [origin.url] }))
  const server = app.listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  t.after(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  const port = (server.address() as { port: number }).port
  const r = await send(`http://127.0.0.1:${port}/google/login`)
  assert.equal(r.status, 302)
  assert.equal(r.headers.location, '/google/home')
  assert.deepEqual(r.headers['set-cookie'], ['sid=1; Path=/google'])
  assert.equal(origin.requests[0].url, '/login')
})

// --- basicAuth ----------------------------------------------------------------------------------------------------

test('basicAuth: 401 with a challenge, 400 for a malformed Authorization, through with the right credentials', async (t) => {
  const { hashPassword } = await import('../../src/rules/basic-auth.js')
  const dir = mkdtempSync(path.join(tmpdir(), 'portico-users-'))
  writeFileSync(path.join(dir, 'users'), `# staff\nbob:${await hashPassword('hunter2 with spaces: and a colon')}\n`)
  const origin = await echoOrigin()
  t.after(() => origin.close())
  const p = await withProxy(t, {
    routes: [
      { host: 'list.test', upstream: [origin.url], basicAuth: { users: [`alice:${await hashPassword('wonderland')}`], realm: 'Staging "A"' } },
      { host: 'file.test', upstream: [origin.url], basicAuth: { users: './users' } }
    ]
  }, { baseDir: dir })
  const basic = (user: string, pass: string): string => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`
  const none = await send(p.url, { headers: { host: 'list.test' } })
  assert.equal(none.status, 401)
  assert.equal(none.headers['www-authenticate'], 'Basic realm="Staging \\"A\\"", charset="UTF-8"')
  assert.match(String(none.headers['proxy-status']), /PORTICO_ERR_UNAUTHORIZED/)
  assert.equal((await send(p.url, { headers: { host: 'list.test', authorization: basic('alice', 'wrong') } })).status, 401)
  assert.equal((await send(p.url, { headers: { host: 'list.test', authorization: basic('mallory', 'wonderland') } })).status, 401)
  assert.equal((await send(p.url, { headers: { host: 'list.test', authorization: 'Bearer abc' } })).status, 401)
  assert.equal((await send(p.url, { headers: { host: 'list.test', authorization: 'Basic !!!not-base64' } })).status, 400)
  assert.equal((await send(p.url, { headers: { host: 'list.test', authorization: `Basic ${Buffer.from('no-colon').toString('base64')}` } })).status, 400)
  assert.equal(origin.requests.length, 0, 'nothing reached the node')
  const ok = await send(p.url, { headers: { host: 'list.test', authorization: basic('alice', 'wonderland') } })
  assert.equal(ok.status, 200)
  assert.equal(json(ok.body).headers.authorization, basic('alice', 'wonderland'), 'forwarded as nginx does')
  assert.equal((await send(p.url, { headers: { host: 'list.test', authorization: basic('alice', 'wonderland') } })).status, 200)
  assert.equal((await send(p.url, { headers: { host: 'file.test', authorization: basic('bob', 'hunter2 with spaces: and a colon') } })).status, 200)
})

test('basicAuth config errors: a plain-text or MD5 entry, a missing file', () => {
  assert.throws(() => loadConfigObjectSync({ routes: [{ host: 'a', upstream: ['http://127.0.0.1:1'], basicAuth: { users: ['alice:secret'] } }] }), /routes\.0\.basicAuth\.users.*hash-password/s)
  assert.throws(() => loadConfigObjectSync({ routes: [{ host: 'a', upstream: ['http://127.0.0.1:1'], basicAuth: { users: ['alice:$apr1$abc$def'] } }] }), /routes\.0\.basicAuth\.users/)
  assert.throws(() => loadConfigObjectSync({ routes: [{ host: 'a', upstream: ['http://127.0.0.1:1'], basicAuth: { users: './nope.htpasswd' } }] }), /no such file: \.\/nope\.htpasswd/)
})
