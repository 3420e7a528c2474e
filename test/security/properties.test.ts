/**
 * Property-based defences (fast-check): hop-by-hop fields (and those a Connection field names) are never forwarded
 * in either direction, whatever the mix and case; host routing agrees with a naive reference; and config parsing,
 * on arbitrary YAML, JSON and objects, never throws anything but a ConfigError (and never starts half-configured).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { buildUpstreamHeaders, filterResponseHeaders } from '../../src/upstream/headers.js'
import { ConfigError, loadConfigObjectSync, loadConfigText } from '../../src/config/load.js'
import { Router } from '../../src/routing/router.js'
import { normalizeHostKey } from '../../src/routing/host.js'

const HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'transfer-encoding', 'upgrade']
const token = fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/)
const caseOf = (s: string, flips: boolean[]): string => [...s].map((c, i) => flips[i % flips.length] ? c.toUpperCase() : c).join('')

test('property: hop-by-hop and Connection-named fields never cross the proxy, either way', () => {
  const field = fc.tuple(fc.oneof(fc.constantFrom(...HOP), token), fc.stringMatching(/^[ -~]{0,20}$/), fc.array(fc.boolean(), { minLength: 1, maxLength: 4 }))
  fc.assert(fc.property(fc.array(field, { maxLength: 12 }), fc.array(token, { maxLength: 3 }), (fields, named) => {
    const raw = ['Host', 'h']
    for (const [n, v, flips] of fields) raw.push(caseOf(n, flips), v)
    if (named.length > 0) raw.push('Connection', named.join(', '))
    const listed = new Set<string>(named)
    for (let i = 0; i < raw.length; i += 2) if (raw[i].toLowerCase() === 'connection') for (const t of raw[i + 1].split(',')) listed.add(t.trim().toLowerCase())
    const request = buildUpstreamHeaders(raw, { peer: '192.0.2.1', clientAddress: '192.0.2.1', trusted: false, proto: 'http', host: 'h', httpVersion: '1.1' },
      { preserveHost: true, xForwarded: true, forwarded: false, via: 'portico' }) as string[]
    const response = filterResponseHeaders(raw.slice(2).map((x) => Buffer.from(x, 'latin1')))
    for (const out of [request, response]) {
      for (let i = 0; i < out.length; i += 2) {
        const n = out[i].toLowerCase()
        assert.ok(!HOP.includes(n), `${n} forwarded`)
        assert.ok(!listed.has(n) || ['close', 'keep-alive'].includes(n), `${n} was named by Connection`)
      }
    }
  }), { numRuns: 1000 })
})

/** A naive host matcher: exact, then the longest prefix key or wildcard ("*.a.b" counts as ".a.b"; a prefix key wins a tie), then "*". */
function referenceHost (host: string, keys: string[]): string | null {
  if (keys.includes(host)) return host
  let best: string | null = null
  let bestLength = 0
  for (const k of keys) {
    const wild = k.startsWith('*.')
    const ok = wild
      ? host.endsWith(k.slice(1)) && host.length > k.length - 1
      : k.endsWith('.') && k !== '*' && host.startsWith(k) && host.length > k.length
    const length = wild ? k.length - 1 : k.length
    if (ok && (best === null || length > bestLength || (length === bestLength && !wild))) { best = k; bestLength = length }
  }
  if (best !== null) return best
  return keys.includes('*') ? '*' : null
}

test('property: host routing picks what a naive reference picks (exact, longest prefix key or wildcard, catch-all)', () => {
  const label = fc.constantFrom('api', 'www', 'a', 'shop', 'eu', 'example', 'test')
  const name = fc.array(label, { minLength: 1, maxLength: 4 }).map((l) => l.join('.'))
  const key = fc.oneof(name, name.map((n) => `*.${n}`), label.map((l) => `${l}.`), fc.constant('*'))
  fc.assert(fc.property(fc.uniqueArray(key, { minLength: 1, maxLength: 6 }), name, (keys, host) => {
    const normalized = keys.map((k) => normalizeHostKey(k)).filter((r): r is { key: string } => 'key' in r).map((r) => r.key)
    const unique = [...new Set(normalized)]
    const router = new Router(unique.map((k) => ({ name: k, hosts: [k], path: '/' })))
    assert.equal(router.match(host, '/')?.route.name ?? null, referenceHost(host, unique), `${host} among ${unique.join(' ')}`)
  }), { numRuns: 2000 })
})

test('property: config parsing on arbitrary input throws only ConfigError', async () => {
  const yamlish = fc.oneof(
    fc.string({ maxLength: 200 }),
    fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
    fc.constantFrom('upstreams:\n  "*": [', 'routes:\n  - upstream: { pool: x }', 'listen: [{ port: -1 }]', 'a: &x [*x]', 'cache: {maxSize: lots}', '\u0000', '--- !!binary AAA', '*!', 'a: *undefined',
      // An alias bomb ("billion laughs"): refused by the alias limit, not expanded.
      'a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d,*d]')
  )
  await fc.assert(fc.asyncProperty(yamlish, async (text) => {
    try {
      await loadConfigText(text, { file: 'fuzz.yaml', baseDir: '/nonexistent' })
    } catch (err) {
      assert.ok(err instanceof ConfigError, `${JSON.stringify(text)} → ${String(err)}`)
    }
  }), { numRuns: 400 })
  const shapes = fc.dictionary(fc.constantFrom('upstreams', 'routes', 'pools', 'listen', 'cache', 'paths', 'trustedProxies', 'server', 'x'),
    fc.anything({ maxDepth: 3 }), { maxKeys: 4 })
  fc.assert(fc.property(shapes, (obj) => {
    try {
      loadConfigObjectSync(obj)
    } catch (err) {
      assert.ok(err instanceof ConfigError, `${String(err)}`)
    }
  }), { numRuns: 400 })
})
