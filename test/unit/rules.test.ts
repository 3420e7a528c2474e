/**
 * The pure parts of the traffic rules: placeholders and the regex guard, header edits, CORS decisions, redirect and
 * cookie rewriting. The rules on real sockets are in test/integration/rules.test.ts.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { compileTemplate, unsafeRegex, type PlaceholderContext } from '../../src/rules/placeholders.js'
import { applyHeaderEdits } from '../../src/rules/header-edits.js'
import { allowedOrigin, corsResponse, preflightAnswer } from '../../src/rules/cors.js'
import { rewriteCookie, rewriteLocation, rewriteResponse, type Views } from '../../src/rules/location.js'
import { addVary } from '../../src/http/fields.js'
import { parseRate } from '../../src/config/resolve-rules.js'
import type { ResolvedCors } from '../../src/config/resolved.js'

const CTX: PlaceholderContext = {
  clientIp: '203.0.113.9',
  host: 'Example.com:8443',
  hostname: 'example.com',
  method: 'GET',
  uri: '/a/b?x=1&y=2',
  scheme: 'https',
  id: 'r1',
  sni: 'example.com',
  route: 'example.com/a',
  groups: null
}

test('templates: every placeholder, literals, escaped braces, capture groups', () => {
  const t = compileTemplate('{client.ip}|{request.host}|{request.hostname}|{request.method}|{request.uri}|{request.path}|{request.query}|{request.scheme}|{request.id}|{tls.sni}|{route}')
  assert.equal(t.literal, null)
  assert.equal(t.render(CTX), '203.0.113.9|Example.com:8443|example.com|GET|/a/b?x=1&y=2|/a/b|x=1&y=2|https|r1|example.com|example.com/a')
  const lit = compileTemplate('plain {{braces}} text')
  assert.equal(lit.literal, 'plain {braces} text')
  const g = compileTemplate('/v2/{1}/{2}', true)
  assert.equal(g.render({ ...CTX, groups: ['/v1/a/b', 'a', 'b'] }), '/v2/a/b')
  assert.equal(g.render({ ...CTX, groups: ['x', 'a'] }), '/v2/a/', 'a missing group renders empty')
  assert.equal(compileTemplate('{request.query}').render({ ...CTX, uri: '/' }), '')
})

test('templates: unknown placeholders, unclosed braces, captures without match and unset env vars are errors', () => {
  assert.throws(() => compileTemplate('{client.address}'), /unknown placeholder \{client\.address\}/)
  assert.throws(() => compileTemplate('x {request.host'), /unclosed/)
  assert.throws(() => compileTemplate('/{1}'), /capture groups/)
  assert.throws(() => compileTemplate('{env.PORTICO_DEFINITELY_UNSET}'), /not set/)
  process.env.PORTICO_UNIT_ENV = 'v'
  try {
    assert.equal(compileTemplate('a-{env.PORTICO_UNIT_ENV}').literal, 'a-v', 'env is read at compile time: a literal')
  } finally {
    delete process.env.PORTICO_UNIT_ENV
  }
})

test('templates: arbitrary text compiles or throws an Error, and a compiled one renders a string', () => {
  fc.assert(fc.property(fc.string({ maxLength: 60 }), (text) => {
    let t
    try {
      t = compileTemplate(text, true)
    } catch (err) {
      assert.ok(err instanceof Error)
      return
    }
    assert.equal(typeof t.render({ ...CTX, groups: ['a', 'b'] }), 'string')
  }), { numRuns: 2000 })
})

test('the regex guard refuses nested quantifiers and accepts ordinary patterns', () => {
  for (const bad of ['(a|aa)+$', '(foo|bar)*', '(a+)+', '(a*)*', '^(\\w+\\s?)*$', '(.*){2,}', '((ab)*)+', '(x+x+)+y']) {
    assert.notEqual(unsafeRegex(bad), null, bad)
  }
  for (const ok of ['^/users/([0-9]+)$', '^/old/(.*)$', '^/v1/', '\\.(png|jpe?g)$', '^/a+/b*/c?$', '[(+)]+', '^/(api|v2)/([^/]+)/?$']) {
    assert.equal(unsafeRegex(ok), null, ok)
  }
})

test('header edits: remove, then set (replacing), then add; empty and CR/LF values are not written', () => {
  const h = ['Server', 'node', 'X-A', '1', 'x-a', '2', 'X-Keep', 'k', 'X-Drop', 'd']
  applyHeaderEdits(h, {
    remove: ['server', 'x-drop'],
    set: [['x-a', compileTemplate('{client.ip}')], ['x-empty', compileTemplate('{request.query}')], ['x-bad', compileTemplate('a\r\nb')]],
    add: [['x-keep', compileTemplate('k2')]]
  }, () => ({ ...CTX, uri: '/' }))
  assert.deepEqual(h, ['X-Keep', 'k', 'x-a', '203.0.113.9', 'x-keep', 'k2'])
})

const cors = (over: Partial<ResolvedCors> = {}): ResolvedCors => ({
  origins: new Set(['https://app.example.com']),
  patterns: [/^https:\/\/[a-z0-9-]+(\.[a-z0-9-]+)*\.example\.org$/],
  any: false,
  methods: 'GET, POST',
  headers: null,
  exposeHeaders: null,
  credentials: false,
  maxAge: null,
  ...over
})

test('cors: only allowed origins are echoed; "*" only for any origin without credentials', () => {
  assert.equal(allowedOrigin(cors(), 'https://app.example.com'), 'https://app.example.com')
  assert.equal(allowedOrigin(cors(), 'https://APP.example.com'), 'https://APP.example.com')
  assert.equal(allowedOrigin(cors(), 'https://x.y.example.org'), 'https://x.y.example.org')
  assert.equal(allowedOrigin(cors(), 'https://example.org'), null, 'the wildcard needs a label')
  assert.equal(allowedOrigin(cors(), 'https://app.example.com.evil.net'), null)
  assert.equal(allowedOrigin(cors(), 'http://app.example.com'), null, 'scheme matters')
  assert.equal(allowedOrigin(cors(), undefined), null)
  assert.equal(allowedOrigin(cors({ any: true }), 'https://a.net'), '*')
  assert.equal(allowedOrigin(cors({ any: true, credentials: true }), 'https://a.net'), 'https://a.net')
  const pre = preflightAnswer(cors({ headers: 'content-type' }), { origin: 'https://app.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-evil' })
  assert.equal(pre.headers['access-control-allow-headers'], 'content-type', 'a configured list is sent as it is')
  const star = preflightAnswer(cors({ any: true }), { origin: 'https://a.net', 'access-control-request-method': 'GET' })
  assert.equal(star.headers.vary, undefined, 'a "*" answer does not vary')
  const h = ['Access-Control-Allow-Origin', '*', 'Access-Control-Allow-Credentials', 'true', 'Vary', 'Accept-Encoding']
  corsResponse(cors(), 'https://evil.net', h)
  assert.deepEqual(h, ['Vary', 'Accept-Encoding, Origin'])
})

test('addVary merges into the first Vary, never twice, and leaves "*" alone', () => {
  const a = ['vary', 'Accept-Encoding']
  addVary(a, 'Origin')
  addVary(a, 'origin')
  assert.deepEqual(a, ['vary', 'Accept-Encoding, Origin'])
  const b = ['Vary', '*']
  addVary(b, 'Origin')
  assert.deepEqual(b, ['Vary', '*'])
  const c = ['Vary', 'Cookie', 'Vary', 'Origin']
  addVary(c, 'Origin')
  assert.deepEqual(c, ['Vary', 'Cookie', 'Vary', 'Origin'])
  const d: string[] = []
  addVary(d, 'Accept-Encoding')
  assert.deepEqual(d, ['vary', 'Accept-Encoding'])
})

const VIEWS: Views = {
  clientOrigin: 'https://example.com',
  clientHost: 'example.com',
  clientPrefix: '/app',
  nodePrefix: '/internal',
  nodeOrigins: ['http://10.0.0.7:8080'],
  nodeHosts: ['10.0.0.7']
}

test('redirect rewriting: node origin and node prefix map to the client\'s; anything else is left alone', () => {
  assert.equal(rewriteLocation('http://10.0.0.7:8080/internal/login?next=/x', VIEWS), 'https://example.com/app/login?next=/x')
  assert.equal(rewriteLocation('HTTP://10.0.0.7:8080/internal', VIEWS), 'https://example.com/app')
  assert.equal(rewriteLocation('http://10.0.0.7:8080', VIEWS), 'https://example.com/')
  assert.equal(rewriteLocation('http://10.0.0.7:8080/elsewhere', VIEWS), 'https://example.com/elsewhere', 'origin mapped, path outside the prefix kept')
  assert.equal(rewriteLocation('/internal/a', VIEWS), '/app/a')
  assert.equal(rewriteLocation('/internal', VIEWS), '/app')
  assert.equal(rewriteLocation('/internalx', VIEWS), '/internalx', 'segment boundary')
  assert.equal(rewriteLocation('//10.0.0.7:8080/internal', VIEWS), '//10.0.0.7:8080/internal', 'network-path reference untouched')
  assert.equal(rewriteLocation('http://10.0.0.7:80800/internal', VIEWS), 'http://10.0.0.7:80800/internal', 'another port')
  assert.equal(rewriteLocation('relative/path', VIEWS), 'relative/path')
  const strip: Views = { ...VIEWS, nodePrefix: '' }
  assert.equal(rewriteLocation('/', strip), '/app/')
  assert.equal(rewriteLocation('/?a=1', strip), '/app/?a=1')
})

test('redirect rewriting never touches a URL on another host', () => {
  fc.assert(fc.property(fc.webUrl(), (url) => {
    fc.pre(!url.toLowerCase().startsWith('http://10.0.0.7:8080'))
    assert.equal(rewriteLocation(url, VIEWS), url)
  }), { numRuns: 1000 })
})

test('cookie rewriting: Path under the node prefix and a node Domain map to the client\'s', () => {
  assert.equal(rewriteCookie('a=1; Path=/internal/x; HttpOnly', VIEWS), 'a=1; Path=/app/x; HttpOnly')
  assert.equal(rewriteCookie('a=1; path=/internal; Domain=10.0.0.7', VIEWS), 'a=1; Path=/app; Domain=example.com')
  assert.equal(rewriteCookie('a=1; Path=/other; Domain=.other.net', VIEWS), 'a=1; Path=/other; Domain=.other.net')
  assert.equal(rewriteCookie('a=1', VIEWS), 'a=1')
  assert.equal(rewriteCookie('a=1; Path=/', { ...VIEWS, nodePrefix: '' }), 'a=1; Path=/app')
  const h = ['Location', '/internal/a', 'Set-Cookie', 's=1; Path=/internal', 'Refresh', '0;URL="/internal/b"']
  rewriteResponse(h, VIEWS, true, false)
  assert.deepEqual(h, ['Location', '/app/a', 'Set-Cookie', 's=1; Path=/internal', 'Refresh', '0;URL="/app/b"'])
})

test('rates: "100/s", "20/m", "5/10s"', () => {
  assert.deepEqual(parseRate('100/s'), { count: 100, period: 1000 })
  assert.deepEqual(parseRate('20/m'), { count: 20, period: 60_000 })
  assert.deepEqual(parseRate('5/10s'), { count: 5, period: 10_000 })
  assert.deepEqual(parseRate(' 3 / 1h '), { count: 3, period: 3_600_000 })
})
