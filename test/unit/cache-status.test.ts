/**
 * The Cache-Status builder (src/cache/cache-status.ts, RFC 9211).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { CacheStatus } from '../../src/cache/cache-status.js'

test('a hit names the cache and the remaining freshness in whole seconds (§2.1, §2.5)', () => {
  assert.equal(CacheStatus.hit('Portico', 42.9).text, 'Portico; hit; ttl=42')
  assert.equal(CacheStatus.hit('edge', -3.2).detail('stale-while-revalidate').text, 'edge; hit; ttl=-4; detail=stale-while-revalidate')
})

test('a forward says why, then what came back, in the order the parameters were added (§2.2–§2.8)', () => {
  const miss = CacheStatus.forward('Portico', 'uri-miss')
  assert.equal(miss.fwdStatus(200).stored(60).text, 'Portico; fwd=uri-miss; fwd-status=200; stored; ttl=60')
  assert.equal(miss.collapsed().fwdStatus(200).text, 'Portico; fwd=uri-miss; collapsed; fwd-status=200')
  assert.equal(miss.detail('collapse-timeout').fwdStatus(200).text, 'Portico; fwd=uri-miss; detail=collapse-timeout; fwd-status=200')
  assert.equal(CacheStatus.forward('Portico', 'miss').detail('only-if-cached').text, 'Portico; fwd=miss; detail=only-if-cached')
})

test('values are immutable: deriving one leaves the original as it was', () => {
  const base = CacheStatus.forward('Portico', 'stale')
  const derived = base.fwdStatus(304)
  assert.equal(base.text, 'Portico; fwd=stale')
  assert.equal(derived.text, 'Portico; fwd=stale; fwd-status=304')
  assert.equal(String(derived), derived.text)
})
