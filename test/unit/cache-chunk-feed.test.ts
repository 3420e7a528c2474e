/**
 * A body shared by several readers at their own pace (src/cache/chunk-feed.ts), delivered through `Delivery`
 * (src/cache/deliver.ts) into the ResponseHandler interface the cache writes into.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ChunkFeed, type FeedReader } from '../../src/cache/chunk-feed.js'
import { Delivery } from '../../src/cache/deliver.js'
import type { ResponseHandler } from '../../src/upstream/types.js'

/** A client as the cache sees it: records what it is sent; `full` makes onData ask for a pause. */
class Client implements ResponseHandler {
  chunks: string[] = []
  ended = false
  error: Error | null = null
  full = false
  resume: () => void = () => {}
  onConnect (_abort: (reason?: Error) => void): void {}
  onHeaders (_s: number, _h: Buffer[] | string[], resume: () => void): boolean { this.resume = resume; return true }
  onData (chunk: Buffer): boolean { this.chunks.push(chunk.toString()); return !this.full }
  onComplete (): void { this.ended = true }
  onError (err: Error): void { this.error = err }
}

function reader (client: Client): FeedReader {
  const d = new Delivery(client)
  assert.equal(d.start(200, []), true)
  return { pos: 0, delivery: d, done: false }
}

test('every reader gets every chunk in order; completion ends each once it has everything', () => {
  const feed = new ChunkFeed()
  const a = new Client()
  const b = new Client()
  const ra = reader(a)
  const rb = reader(b)
  for (const c of ['one', 'two']) {
    feed.push(Buffer.from(c))
    feed.pump(ra)
    feed.pump(rb)
  }
  feed.complete()
  feed.pump(ra)
  feed.pump(rb)
  assert.deepEqual([a.chunks, b.chunks], [['one', 'two'], ['one', 'two']])
  assert.deepEqual([a.ended, b.ended, ra.done, rb.done], [true, true, true, true])
  assert.equal(feed.bytes, 6)
})

test('a paused reader holds only itself back, and resumes where it stopped', () => {
  const feed = new ChunkFeed()
  const slow = new Client()
  const fast = new Client()
  const rs = reader(slow)
  const rf = reader(fast)
  slow.full = true
  feed.push(Buffer.from('1'))
  feed.push(Buffer.from('2'))
  feed.complete()
  feed.pump(rs)
  feed.pump(rf)
  assert.deepEqual(slow.chunks, ['1'], 'paused after its first chunk')
  assert.deepEqual([fast.chunks, fast.ended], [['1', '2'], true])
  slow.full = false
  slow.resume()
  assert.deepEqual([slow.chunks, slow.ended], [['1', '2'], true])
})

test('a reader joining late starts from the first chunk still held', () => {
  const feed = new ChunkFeed()
  feed.push(Buffer.from('a'))
  feed.push(Buffer.from('b'))
  const late = new Client()
  const r = reader(late)
  feed.pump(r)
  assert.deepEqual(late.chunks, ['a', 'b'])
  assert.equal(late.ended, false, 'the body is still open')
})

test('trim drops only what every active reader has had', () => {
  const feed = new ChunkFeed()
  const a = new Client()
  const b = new Client()
  const ra = reader(a)
  const rb = reader(b)
  b.full = true
  for (const c of ['x', 'y', 'z']) feed.push(Buffer.from(c))
  feed.pump(ra)
  feed.pump(rb)
  feed.trim([ra, rb])
  const late = new Client()
  const rl = reader(late)
  rl.pos = 1
  feed.pump(rl)
  assert.deepEqual(late.chunks, ['y', 'z'], 'chunk 0 was dropped; 1 and 2 were kept for the paused reader')
  rb.done = true
  feed.trim([ra, rb, rl])
  feed.push(Buffer.from('w'))
  feed.pump(ra)
  assert.deepEqual(a.chunks, ['x', 'y', 'z', 'w'])
})

test('a failed body fails each reader once it has had what arrived', () => {
  const feed = new ChunkFeed()
  const c = new Client()
  const r = reader(c)
  feed.push(Buffer.from('part'))
  const err = new Error('reset')
  feed.fail(err)
  feed.pump(r)
  assert.deepEqual([c.chunks, c.error, c.ended, r.done], [['part'], err, false, true])
})

test('a reader whose client left is done and gets nothing more', () => {
  const feed = new ChunkFeed()
  let abort: ((e?: Error) => void) | null = null
  const c = new Client()
  c.onConnect = (a) => { abort = a }
  const r = reader(c)
  ;(abort as unknown as (e?: Error) => void)()
  assert.ok(c.error !== null, 'the abort is reported to the client handler, as an upstream would')
  feed.push(Buffer.from('late'))
  feed.pump(r)
  assert.deepEqual(c.chunks, [])
})
