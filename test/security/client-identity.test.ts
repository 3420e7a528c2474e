/**
 * Client identity (SECURITY.md#client-identity): a client cannot choose the address, scheme, host or prefix a node
 * is told about, nor the one the access log and the hash policy use; behind a trusted proxy the chain is kept and the
 * client is its right-most untrusted address. Property-based: whatever forwarding fields an untrusted client sends,
 * the node sees only Portico's.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { send, startOrigin, startProxy } from '../helpers/servers.js'
import { buildUpstreamHeaders } from '../../src/upstream/headers.js'
import { forwardedClient } from '../../src/http/client-identity.js'
import { AddressSet, isAddressEntry, plainAddress } from '../../src/http/address-set.js'

const FORGED = {
  'x-forwarded-for': '203.0.113.9',
  'x-forwarded-proto': 'https',
  'x-forwarded-host': 'admin.internal',
  'x-forwarded-prefix': '/admin',
  'x-forwarded-port': '443',
  'x-real-ip': '203.0.113.9',
  forwarded: 'for=203.0.113.9;proto=https'
}

test('from an untrusted peer, every forwarding field the client sent is replaced by Portico\'s own', async (t) => {
  const origin = await startOrigin()
  const proxy = await startProxy({ upstreams: { '*': [origin.url] }, headers: { forwarded: true } })
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  await send(`${proxy.url}/`, { headers: { host: 'shop.test', ...FORGED } })
  const h = origin.requests[0].headers
  assert.equal(h['x-forwarded-for'], '127.0.0.1')
  assert.equal(h['x-forwarded-proto'], 'http')
  assert.equal(h['x-forwarded-host'], 'shop.test')
  assert.equal(h['x-real-ip'], '127.0.0.1')
  assert.equal(h['x-forwarded-prefix'], undefined)
  assert.equal(h['x-forwarded-port'], undefined)
  assert.equal(h.forwarded, 'for=127.0.0.1;proto=http;host=shop.test')
  assert.equal(proxy.logs.find((l) => l.reqId !== undefined)?.remoteAddr, '127.0.0.1', 'the access log names the peer')
})

test('from a trusted proxy, the chain is kept and appended to; the client is the right-most untrusted hop', async (t) => {
  const origin = await startOrigin()
  const proxy = await startProxy({ upstreams: { '*': [origin.url] }, trustedProxies: ['loopback', '10.0.0.0/8'] })
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  // A client spoofed 1.1.1.1; the edge proxy (10.0.0.5) appended the real client 198.51.100.7; then loopback.
  await send(`${proxy.url}/`, {
    headers: { 'x-forwarded-for': '1.1.1.1, 198.51.100.7, 10.0.0.5', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'shop.example', 'x-real-ip': '9.9.9.9' }
  })
  const h = origin.requests[0].headers
  assert.equal(h['x-forwarded-for'], '1.1.1.1, 198.51.100.7, 10.0.0.5, 127.0.0.1')
  assert.equal(h['x-forwarded-proto'], 'https', 'the trusted proxy saw TLS')
  assert.equal(h['x-forwarded-host'], 'shop.example')
  assert.equal(h['x-real-ip'], '198.51.100.7')
  const line = proxy.logs.find((l) => l.reqId !== undefined)!
  assert.equal(line.remoteAddr, '198.51.100.7')
  assert.equal(line.peerAddr, '127.0.0.1')
})

test('the hash policy hashes the trusted client address, not the peer, and never a spoofed one', async (t) => {
  const origins = await Promise.all(['a', 'b', 'c', 'd'].map((n) => startOrigin((_req, res) => res.end(n))))
  const nodes = origins.map((o) => o.url)
  const proxy = await startProxy({
    routes: [
      { path: '/trusted', upstream: { nodes, policy: 'hash', hashKey: 'client-ip' } },
      { path: '/', upstream: { nodes, policy: 'hash', hashKey: 'client-ip' } }
    ],
    trustedProxies: ['127.0.0.1']
  })
  t.after(() => Promise.all([proxy.close(), ...origins.map((o) => o.close())]))
  const owners = new Set<string>()
  for (let i = 0; i < 24; i++) owners.add((await send(`${proxy.url}/trusted`, { headers: { 'x-forwarded-for': `198.51.100.${i}` } })).body.toString())
  assert.ok(owners.size > 1, 'clients behind the trusted proxy spread by their own address')
  const untrusted = await startProxy({ upstreams: { '*': { nodes, policy: 'hash', hashKey: 'client-ip' } } })
  t.after(() => untrusted.close())
  const seen = new Set<string>()
  for (let i = 0; i < 24; i++) seen.add((await send(`${untrusted.url}/`, { headers: { 'x-forwarded-for': `198.51.100.${i}` } })).body.toString())
  assert.equal(seen.size, 1, 'without trust, a forged X-Forwarded-For does not move the client')
})

test('trustedProxies: entries are checked; shorthands, IPv4-mapped IPv6 and bracketed forms are understood', () => {
  for (const ok of ['10.0.0.0/8', '192.168.1.1', 'fd00::/8', '::1', 'private', 'loopback']) assert.ok(isAddressEntry(ok), ok)
  for (const bad of ['10.0.0.0/33', 'example.com', '10.0.0/8', '', 'any']) assert.ok(!isAddressEntry(bad), bad)
  const trust = new AddressSet(['private'])
  assert.ok(trust.has('10.1.2.3'))
  assert.ok(trust.has('::ffff:192.168.0.1'))
  assert.ok(trust.has('::1'))
  assert.ok(!trust.has('8.8.8.8'))
  assert.ok(!trust.has(undefined))
  assert.equal(plainAddress('[2001:db8::1]:443'), '2001:db8::1')
  assert.equal(plainAddress('"[2001:db8::1]"'), '2001:db8::1')
  assert.equal(plainAddress('192.0.2.1:8080'), '192.0.2.1')
  assert.deepEqual(forwardedClient(['Forwarded', 'for=192.0.2.60;proto=https, for=10.0.0.1'], trust), { address: '192.0.2.60' })
  assert.deepEqual(forwardedClient(['X-Forwarded-For', '10.0.0.1, 10.0.0.2'], trust), { address: '10.0.0.1' }, 'all trusted: the left-most')
  assert.equal(forwardedClient(['Host', 'x'], trust), null)
})

test('property: whatever forwarding fields an untrusted client sends, the node is told only Portico\'s values', () => {
  const names = fc.constantFrom('X-Forwarded-For', 'x-forwarded-proto', 'X-Forwarded-Host', 'x-forwarded-prefix', 'X-Forwarded-Port',
    'x-forwarded-server', 'X-Real-IP', 'Forwarded', 'x-real-ip', 'X-FORWARDED-FOR')
  const value = fc.string({ maxLength: 40 })
  fc.assert(fc.property(fc.array(fc.tuple(names, value), { maxLength: 12 }), fc.boolean(), (fields, forwarded) => {
    const raw = ['Host', 'h.test', ...fields.flat()]
    const out = buildUpstreamHeaders(raw, { peer: '192.0.2.1', clientAddress: '192.0.2.1', trusted: false, proto: 'http', host: 'h.test', httpVersion: '1.1' },
      { preserveHost: true, xForwarded: true, forwarded, via: 'portico' }) as string[]
    const values = (n: string): string[] => out.flatMap((x, i) => i % 2 === 0 && x.toLowerCase() === n ? [out[i + 1]] : [])
    assert.deepEqual(values('x-forwarded-for'), ['192.0.2.1'])
    assert.deepEqual(values('x-forwarded-proto'), ['http'])
    assert.deepEqual(values('x-forwarded-host'), ['h.test'])
    assert.deepEqual(values('x-real-ip'), ['192.0.2.1'])
    assert.deepEqual(values('x-forwarded-prefix'), [])
    assert.deepEqual(values('x-forwarded-port'), [])
    assert.deepEqual(values('x-forwarded-server'), [])
    assert.deepEqual(values('forwarded'), forwarded ? ['for=192.0.2.1;proto=http;host=h.test'] : [])
  }), { numRuns: 500 })
})
