/**
 * Path safety (SECURITY.md#paths): routing is done on the normalised path, so no route prefix can be escaped with
 * dot segments, encodings, `;` parameters, repeated or back slashes; a fragment, a raw backslash or a path above `/`
 * is 400. Raw sockets send the targets byte for byte. Property-based: normalisation is idempotent, never climbs above
 * `/`, and agrees with a naive reference matcher on which route a path belongs to.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { rawExchange, startOrigin, startProxy, type Origin } from '../helpers/servers.js'
import { routingTarget } from '../../src/routing/path.js'
import { Router } from '../../src/routing/router.js'

const DEFAULT = { normalize: 'route-only' as const, rejectEncodedSlash: false, mergeSlashes: true }

/** Status and body of a raw request for `target`. */
async function get (port: number, target: string): Promise<{ status: number, body: string }> {
  const reply = await rawExchange(port, `GET ${target} HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n`)
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(reply)?.[1] ?? 0)
  return { status, body: reply.slice(reply.indexOf('\r\n\r\n') + 4) }
}

async function named (name: string): Promise<Origin> {
  return await startOrigin((req, res) => res.end(`${name} ${req.url}`))
}

test('no escape from /public: dot segments, encodings, parameters, slashes and backslashes route by what they mean', async (t) => {
  const pub = await named('public')
  const admin = await named('admin')
  const proxy = await startProxy({
    routes: [
      { host: 'site.test', path: '/public', upstream: [pub.url] },
      { host: 'site.test', path: '/admin', upstream: [admin.url] }
    ]
  })
  t.after(() => Promise.all([proxy.close(), pub.close(), admin.close()]))
  const cases: [string, number, string | null][] = [
    ['/public/a', 200, 'public /public/a'],
    ['/public/../admin/x', 200, 'admin /public/../admin/x'],
    ['/public/%2e%2e/admin', 200, 'admin /public/%2e%2e/admin'],
    ['/public/%2E%2e/%61dmin', 200, 'admin /public/%2E%2e/%61dmin'],
    ['/public/..;/admin', 200, 'admin /public/..;/admin'],
    ['/admin;jsessionid=1', 200, 'admin /admin;jsessionid=1'],
    ['//admin', 200, 'admin //admin'],
    ['/public/./x', 200, 'public /public/./x'],
    // %2F is no separator: one segment "..%2Fadmin" under /public (nodes that decode it first: rejectEncodedSlash).
    ['/public/..%2Fadmin', 200, 'public /public/..%2Fadmin'],
    ['/public/../../etc/passwd', 400, null],
    ['/..', 400, null],
    ['/public\\..\\admin', 400, null],
    ['/public/a#frag', 400, null],
    ['/public/%zz', 400, null]
  ]
  for (const [target, status, body] of cases) {
    const r = await get(proxy.port, target)
    assert.equal(r.status, status, target)
    if (body !== null) assert.equal(r.body, body, `${target}: the route by meaning, the bytes as sent`)
  }
  assert.ok(!pub.requests.some((r) => r.url.includes('admin') && !r.url.includes('%2F')), 'the public node never saw a path meaning /admin')
})

test('paths.normalize: forward sends the normalised path; off routes on the raw path; rejectEncodedSlash refuses %2F', async (t) => {
  const o = await startOrigin((req, res) => res.end(req.url))
  const fwd = await startProxy({ upstreams: { 'site.test': [o.url] }, paths: { normalize: 'forward' } })
  const off = await startProxy({ upstreams: { 'site.test': [o.url] }, paths: { normalize: 'off' } })
  const strict = await startProxy({ upstreams: { 'site.test': [o.url] }, paths: { rejectEncodedSlash: true, mergeSlashes: false } })
  t.after(() => Promise.all([fwd.close(), off.close(), strict.close(), o.close()]))
  assert.equal((await get(fwd.port, '/a/./b/../%63?x=%2e')).body, '/a/c?x=%2e', 'the query is never touched')
  assert.equal((await get(off.port, '/a/../b')).body, '/a/../b')
  assert.equal((await get(off.port, '/a#b')).status, 400, 'a fragment is refused in every mode')
  assert.equal((await get(strict.port, '/a%2Fb')).status, 400)
  assert.equal((await get(strict.port, '/a%5cb')).status, 400)
  assert.equal((await get(strict.port, '//a')).body, '//a')
})

test('stripPrefix with a path that normalising changed strips from the normalised form', async (t) => {
  const o = await startOrigin((req, res) => res.end(req.url))
  const proxy = await startProxy({ routes: [{ host: 'site.test', path: '/api', stripPrefix: true, upstream: [o.url] }] })
  t.after(() => Promise.all([proxy.close(), o.close()]))
  assert.equal((await get(proxy.port, '/api/v1/x?q')).body, '/v1/x?q', 'unchanged paths keep their bytes')
  assert.equal((await get(proxy.port, '/x/../api/v1')).body, '/v1')
  assert.equal((await get(proxy.port, '//api//v1')).body, '/v1')
})

const segment = fc.oneof(
  fc.constantFrom('..', '.', '', 'admin', 'public', 'a', '%2e%2e', '%2E', '%2f', ';x', '..;', '%61', 'b;c=d', '%7e'),
  fc.stringMatching(/^[a-z0-9._~-]{1,6}$/)
)
const rawPath = fc.array(segment, { maxLength: 8 }).map((s) => `/${s.join('/')}`)

test('property: normalisation is idempotent, starts with "/", never contains a dot segment or climbs above "/"', () => {
  fc.assert(fc.property(rawPath, (p) => {
    const n = routingTarget(p, DEFAULT)
    if (n === 'above-root') return
    assert.equal(typeof n, 'string', p)
    const s = n as string
    assert.equal(s[0], '/')
    assert.equal(routingTarget(s, DEFAULT), s, `idempotent: ${p} → ${s}`)
    for (const seg of s.split('/')) assert.ok(seg !== '..' && seg !== '.', `${p} → ${s}`)
    assert.ok(!s.includes('//'), `${p} → ${s}`)
  }), { numRuns: 2000 })
})

/** A naive reference: resolve the path as a browser would (URL), drop ;params, and match prefixes on segments. */
function reference (p: string, prefixes: string[]): string | null {
  const decoded = p.split('/').map((seg) => seg.split(';')[0].replace(/%([0-9a-f]{2})/gi, (m, h: string) => {
    const c = String.fromCharCode(parseInt(h, 16))
    return /[A-Za-z0-9._~-]/.test(c) ? c : m.toUpperCase()
  }))
  const out: string[] = []
  for (let i = 1; i < decoded.length; i++) {
    const seg = decoded[i]
    const last = i === decoded.length - 1
    if (seg === '..') { if (out.length === 0) return 'above'; out.pop(); if (last) out.push(''); continue }
    if (seg === '.') { if (last) out.push(''); continue }
    if (seg === '' && !last) continue
    out.push(seg)
  }
  const path = `/${out.join('/')}`
  let best: string | null = null
  for (const pre of prefixes) {
    if ((path === pre || path.startsWith(pre === '/' ? '/' : `${pre}/`)) && (best === null || pre.length > best.length)) best = pre
  }
  return best
}

test('property: the router on normalised paths picks the route a naive reference picks; no prefix is escaped', () => {
  const prefixes = ['/', '/public', '/admin', '/public/a', '/%7e']
  const router = new Router(prefixes.map((p) => ({ name: p, hosts: ['*'], path: p })))
  fc.assert(fc.property(rawPath, (p) => {
    const n = routingTarget(p, DEFAULT)
    const expected = reference(p, prefixes)
    if (n === 'above-root') {
      assert.equal(expected, 'above', p)
      return
    }
    const got = router.match('any.test', n as string)?.route.path ?? null
    assert.equal(got, expected, `${p} → ${String(n)}`)
  }), { numRuns: 3000 })
})
