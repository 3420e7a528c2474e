import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseDuration, parseSize } from '../../src/config/units.js'

test('durations', () => {
  assert.equal(parseDuration('5s'), 5000)
  assert.equal(parseDuration('250ms'), 250)
  assert.equal(parseDuration('1.5m'), 90_000)
  assert.equal(parseDuration('2h'), 7_200_000)
  assert.equal(parseDuration(42), 42)
  assert.equal(parseDuration('42'), 42)
  assert.equal(parseDuration('soon'), undefined)
  assert.equal(parseDuration(-1), undefined)
})

test('sizes', () => {
  assert.equal(parseSize('16kb'), 16384)
  assert.equal(parseSize('256MB'), 256 * 1024 * 1024)
  assert.equal(parseSize('1gib'), 1024 ** 3)
  assert.equal(parseSize(100), 100)
  assert.equal(parseSize('lots'), undefined)
})
