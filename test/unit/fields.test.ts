/**
 * Flat field lists (src/http/fields.ts) and hop-by-hop fields (src/http/hop-by-hop.ts).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { HeaderList, fieldRecord, fieldValue, fieldValues, hasField, latin1, lowerAscii, replaceField, withoutFields } from '../../src/http/fields.js'
import { HOP_BY_HOP, addConnectionTokens, connectionTokens } from '../../src/http/hop-by-hop.js'

const FLAT = ['Content-Type', 'text/plain', 'Set-Cookie', 'a=1', 'set-cookie', 'b=2', 'X-Y', 'z']

test('lookups are case-insensitive on names and keep values as they are', () => {
  assert.equal(fieldValue(FLAT, 'content-type'), 'text/plain')
  assert.deepEqual(fieldValues(FLAT, 'set-cookie'), ['a=1', 'b=2'])
  assert.equal(hasField(FLAT, 'x-y'), true)
  assert.equal(hasField(FLAT, 'x-z'), false)
  assert.equal(fieldValue(FLAT, 'missing'), undefined)
})

test('withoutFields copies; replaceField edits in place, removing every spelling', () => {
  assert.deepEqual(withoutFields(FLAT, ['set-cookie']), ['Content-Type', 'text/plain', 'X-Y', 'z'])
  assert.deepEqual(withoutFields(FLAT, []), FLAT)
  assert.notEqual(withoutFields(FLAT, []), FLAT, 'always a copy')
  const f = [...FLAT]
  replaceField(f, 'set-cookie', 'c=3')
  assert.deepEqual(f, ['Content-Type', 'text/plain', 'X-Y', 'z', 'set-cookie', 'c=3'])
  replaceField(f, 'x-y', null)
  assert.deepEqual(f, ['Content-Type', 'text/plain', 'set-cookie', 'c=3'])
})

test('fieldRecord: lower-case names, repeats joined with ", " (RFC 9110 §5.3), raw bytes read as latin1', () => {
  assert.deepEqual(fieldRecord(FLAT), { 'content-type': 'text/plain', 'set-cookie': 'a=1, b=2', 'x-y': 'z' })
  const raw = [Buffer.from('X-Bytes'), Buffer.from([0xe9, 0x41])]
  assert.deepEqual(fieldRecord(raw), { 'x-bytes': '\u00e9A' })
  assert.equal(latin1(Buffer.from([0xff])), '\u00ff')
  assert.equal(lowerAscii('already'), 'already')
  assert.equal(lowerAscii('MiXed'), 'mixed')
})

test('HeaderList edits the raw array it wraps', () => {
  const raw = ['Host', 'a', 'X-One', '1', 'x-one', '2']
  const h = new HeaderList(raw)
  assert.equal(h.get('x-ONE'), '1')
  assert.deepEqual(h.getAll('X-One'), ['1', '2'])
  h.set('X-One', '3')
  h.append('x-two', '4')
  h.delete('HOST')
  assert.deepEqual(raw, ['X-One', '3', 'x-two', '4'])
  assert.equal(h.raw, raw)
})

test('hop-by-hop: the fixed list and the fields a Connection header names (RFC 9110 §7.6.1)', () => {
  for (const n of ['connection', 'keep-alive', 'proxy-connection', 'te', 'transfer-encoding', 'upgrade']) assert.ok(HOP_BY_HOP.has(n), n)
  assert.deepEqual([...(addConnectionTokens(null, 'close, X-Private , keep-alive,,Upgrade') ?? [])], ['x-private', 'upgrade'], 'close and keep-alive are options')
  assert.equal(addConnectionTokens(null, 'keep-alive'), null, 'no field named')
  assert.equal(addConnectionTokens(null, 'Keep-Alive, close'), null)
  assert.deepEqual([...(connectionTokens(['Connection', 'x-a', 'connection', 'X-B', 'x-c', 'd']) ?? [])], ['x-a', 'x-b'])
  assert.equal(connectionTokens(['x', 'y']), null)
})
