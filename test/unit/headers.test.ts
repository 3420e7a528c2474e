import { test } from 'node:test'
import assert from 'node:assert/strict'
import { buildUpstreamHeaders, filterResponseHeaders, INVALID_HOST } from '../../src/upstream/headers.js'
import { fieldRecord } from '../../src/http/fields.js'

const facts = { peer: '10.1.2.3', clientAddress: '10.1.2.3', trusted: false, proto: 'http', host: 'Example.com:8080', httpVersion: '1.1' }
const opts = { preserveHost: true, xForwarded: true, forwarded: false, via: 'portico' as const }

function pairs (flat: string[] | typeof INVALID_HOST): [string, string][] {
  assert.notEqual(flat, INVALID_HOST)
  const out: [string, string][] = []
  const f = flat as string[]
  for (let i = 0; i < f.length; i += 2) out.push([f[i], f[i + 1]])
  return out
}

test('request: hop-by-hop and Connection-listed fields are removed (RFC 9110 §7.6.1)', () => {
  const out = pairs(buildUpstreamHeaders([
    'Host', 'Example.com:8080', 'Connection', 'keep-alive, X-Secret', 'Keep-Alive', 'timeout=5', 'Proxy-Connection', 'keep-alive',
    'TE', 'trailers', 'Transfer-Encoding', 'chunked', 'Upgrade', 'h2c', 'X-Secret', 'drop me', 'X-Kept', 'yes', 'Expect', '100-continue'
  ], facts, opts))
  const names = out.map(([n]) => n.toLowerCase())
  for (const gone of ['connection', 'keep-alive', 'proxy-connection', 'te', 'transfer-encoding', 'upgrade', 'x-secret', 'expect']) {
    assert.ok(!names.includes(gone), `${gone} must be removed`)
  }
  assert.deepEqual(out[0], ['Host', 'Example.com:8080'])
  assert.ok(out.some(([n, v]) => n === 'X-Kept' && v === 'yes'))
})

test('request from an untrusted peer: the client\'s forwarding fields are replaced by Portico\'s own; Via appended', () => {
  const out = pairs(buildUpstreamHeaders([
    'Host', 'Example.com:8080', 'X-Forwarded-For', '1.1.1.1', 'x-forwarded-for', '2.2.2.2', 'X-Forwarded-Proto', 'https',
    'X-Forwarded-Host', 'evil.test', 'X-Forwarded-Prefix', '/admin', 'X-Forwarded-Port', '443', 'X-Real-IP', '203.0.113.9',
    'Forwarded', 'for=6.6.6.6', 'Via', '1.0 fred'
  ], facts, opts))
  const get = (n: string): string[] => out.filter(([k]) => k.toLowerCase() === n).map(([, v]) => v)
  assert.deepEqual(get('x-forwarded-for'), ['10.1.2.3'])
  assert.deepEqual(get('x-forwarded-proto'), ['http'])
  assert.deepEqual(get('x-forwarded-host'), ['Example.com:8080'])
  assert.deepEqual(get('x-real-ip'), ['10.1.2.3'])
  assert.deepEqual(get('x-forwarded-prefix'), [])
  assert.deepEqual(get('x-forwarded-port'), [])
  assert.deepEqual(get('forwarded'), [], 'dropped, and none added while `forwarded` is off')
  assert.deepEqual(get('via'), ['1.0 fred, 1.1 portico'])
})

test('request from a trusted proxy: the chain is kept and appended to; its proto, host and prefix stand', () => {
  const trusted = { ...facts, peer: '10.0.0.2', clientAddress: '198.51.100.7', trusted: true }
  const out = pairs(buildUpstreamHeaders([
    'Host', 'h', 'X-Forwarded-For', '198.51.100.7', 'X-Forwarded-Proto', 'https', 'X-Forwarded-Host', 'shop.example',
    'X-Forwarded-Prefix', '/shop', 'X-Real-IP', '1.2.3.4', 'Forwarded', 'for=198.51.100.7;proto=https'
  ], trusted, { ...opts, forwarded: true }))
  const get = (n: string): string[] => out.filter(([k]) => k.toLowerCase() === n).map(([, v]) => v)
  assert.deepEqual(get('x-forwarded-for'), ['198.51.100.7, 10.0.0.2'])
  assert.deepEqual(get('x-forwarded-proto'), ['https'])
  assert.deepEqual(get('x-forwarded-host'), ['shop.example'])
  assert.deepEqual(get('x-forwarded-prefix'), ['/shop'])
  assert.deepEqual(get('x-real-ip'), ['198.51.100.7'], 'the client found in the chain')
  assert.deepEqual(get('forwarded'), ['for=198.51.100.7;proto=https, for=10.0.0.2;proto=http;host="Example.com:8080"'])
})

test('request: Forwarded (RFC 7239) is set when enabled, IPv6 quoted', () => {
  const out = pairs(buildUpstreamHeaders(['Host', 'h', 'Forwarded', 'for=192.0.2.60'], { ...facts, peer: '::1', clientAddress: '::1', host: 'h' }, { ...opts, forwarded: true }))
  assert.deepEqual(out.filter(([k]) => k === 'forwarded').map(([, v]) => v), ['for="[::1]";proto=http;host=h'], 'the untrusted client\'s element is dropped')
  const off = pairs(buildUpstreamHeaders(['Host', 'h', 'Forwarded', 'for=x'], { ...facts, trusted: true }, opts))
  assert.deepEqual(off.filter(([k]) => k.toLowerCase() === 'forwarded').map(([, v]) => v), ['for=x'], 'a trusted proxy\'s passes untouched when off')
})

test('request: preserveHost false drops Host (the node name is used); duplicate Host is invalid', () => {
  const out = pairs(buildUpstreamHeaders(['Host', 'a'], facts, { ...opts, preserveHost: false }))
  assert.ok(!out.some(([n]) => n.toLowerCase() === 'host'))
  assert.equal(buildUpstreamHeaders(['Host', 'a', 'host', 'b'], facts, opts), INVALID_HOST)
})

test('request: options off add nothing; an untrusted client\'s forwarding fields are still dropped, a trusted one\'s kept', () => {
  const off = { ...opts, xForwarded: false, via: false as const }
  assert.deepEqual(pairs(buildUpstreamHeaders(['Host', 'a', 'X-Forwarded-For', '9.9.9.9'], facts, off)), [['Host', 'a']])
  assert.deepEqual(pairs(buildUpstreamHeaders(['Host', 'a', 'X-Forwarded-For', '9.9.9.9'], { ...facts, trusted: true }, off)), [['Host', 'a'], ['X-Forwarded-For', '9.9.9.9']])
})

test('response: hop-by-hop removed, repeated Set-Cookie kept in order, bytes exact', () => {
  const raw = ['Connection', 'close, X-Internal', 'Set-Cookie', 'a=1', 'Keep-Alive', 'timeout=1', 'X-Internal', 'x',
    'Set-Cookie', 'b=2', 'Transfer-Encoding', 'chunked', 'X-Latin', 'caf\xe9'].map((s) => Buffer.from(s, 'latin1'))
  assert.deepEqual(filterResponseHeaders(raw), ['Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'X-Latin', 'caf\xe9'])
})

test('trailers: repeated names joined', () => {
  assert.deepEqual(fieldRecord(['X-A', '1', 'x-a', '2', 'X-B', '3']), { 'x-a': '1, 2', 'x-b': '3' })
})

test('request from HTTP/2: pseudo-headers dropped, :authority becomes Host (RFC 9113 §8.3.1)', () => {
  const out = pairs(buildUpstreamHeaders([':method', 'GET', ':path', '/x', ':scheme', 'https', ':authority', 'h2.test', 'accept', '*/*'],
    { ...facts, host: 'h2.test', httpVersion: '2.0' }, opts))
  assert.deepEqual(out.slice(0, 2), [['host', 'h2.test'], ['accept', '*/*']])
  assert.ok(!out.some(([n]) => n.startsWith(':')))
  assert.deepEqual(out.filter(([n]) => n === 'via'), [['via', '2 portico']])
})
