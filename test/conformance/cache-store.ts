/**
 * The CacheStore conformance suite: every store (memory, Redis) runs these same cases. `make` returns a fresh,
 * empty store; `makePeer` (optional) a second store sharing the same backing storage (a second Portico
 * instance on the same Redis), for the cases that check what one instance sees of another's writes and purges.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import type { CacheStore, StoredMeta, StoredResponse } from '../../src/cache/store.js'
import { sleep } from '../helpers/poll.js'

export interface StoreFactory {
  make (): Promise<CacheStore>
  makePeer? (): Promise<CacheStore>
  /** Largest object the stores are configured to take (both factories use the same). */
  maxObjectSize: number
}

let seq = 0

export function meta (key: string, over: Partial<StoredMeta> = {}): StoredMeta {
  const url = new URL(key.replace(/^GET /, ''))
  return {
    key,
    variant: '',
    host: url.host,
    path: url.pathname + url.search,
    status: 200,
    headers: ['content-type', 'text/plain', 'etag', `"${++seq}"`],
    policy: { v: 1 },
    tags: [],
    size: 0,
    bodyId: randomBytes(8).toString('hex'),
    expires: Date.now() + 60_000,
    ...over
  }
}

export async function readBody (store: CacheStore, r: StoredResponse): Promise<Buffer> {
  if (r.chunks !== null) return Buffer.concat(r.chunks)
  const parts: Buffer[] = []
  for await (const c of store.body(r.meta)) parts.push(c)
  return Buffer.concat(parts)
}

export async function put (store: CacheStore, m: StoredMeta, chunks: Buffer[]): Promise<void> {
  const size = chunks.reduce((n, c) => n + c.length, 0)
  const w = store.open(m.key, size)
  assert.ok(w, 'store declined the entry')
  for (const c of chunks) w.write(c)
  await w.commit({ ...m, size })
}

export function storeConformance (name: string, factory: StoreFactory): void {
  const key = (p: string): string => `GET http://conf-${name}.test${p}`

  test(`${name} store: a committed response reads back byte-exact, head and body`, async () => {
    const store = await factory.make()
    try {
      const chunks = [randomBytes(1000), randomBytes(70_000), randomBytes(3)]
      const m = meta(key('/a?x=1'), { tags: ['t1'] })
      await put(store, m, chunks)
      const got = await store.get(m.key)
      assert.equal(got.length, 1)
      assert.deepEqual(got[0].meta.headers, m.headers)
      assert.equal(got[0].meta.status, 200)
      assert.equal(got[0].meta.size, 71_003)
      assert.equal(got[0].meta.bodyId, m.bodyId)
      assert.deepEqual(await readBody(store, got[0]), Buffer.concat(chunks))
    } finally { await store.close() }
  })

  test(`${name} store: nothing is visible before commit, and an aborted write leaves nothing`, async () => {
    const store = await factory.make()
    try {
      const m = meta(key('/pending'))
      const w = store.open(m.key, 10)
      assert.ok(w)
      w.write(Buffer.from('0123456789'))
      assert.deepEqual(await store.get(m.key), [])
      w.abort()
      assert.deepEqual(await store.get(m.key), [])
    } finally { await store.close() }
  })

  test(`${name} store: variants of one key are kept side by side; same variant replaces`, async () => {
    const store = await factory.make()
    try {
      const k = key('/vary')
      await put(store, meta(k, { variant: 'gzip' }), [Buffer.from('zipped')])
      await put(store, meta(k, { variant: 'identity' }), [Buffer.from('plain')])
      await put(store, meta(k, { variant: 'gzip' }), [Buffer.from('zipped-2')])
      const got = await store.get(k)
      assert.equal(got.length, 2)
      const byVariant = new Map<string, string>()
      for (const r of got) byVariant.set(r.meta.variant, (await readBody(store, r)).toString())
      assert.equal(byVariant.get('gzip'), 'zipped-2')
      assert.equal(byVariant.get('identity'), 'plain')
    } finally { await store.close() }
  })

  test(`${name} store: update replaces the head and keeps the body`, async () => {
    const store = await factory.make()
    try {
      const m = meta(key('/update'))
      await put(store, m, [Buffer.from('body')])
      const [first] = await store.get(m.key)
      await store.update({ ...first.meta, headers: ['etag', '"new"'] })
      const [got] = await store.get(m.key)
      assert.deepEqual(got.meta.headers, ['etag', '"new"'])
      assert.equal((await readBody(store, got)).toString(), 'body')
    } finally { await store.close() }
  })

  test(`${name} store: entries expire at their own expiry`, async () => {
    const store = await factory.make()
    try {
      const m = meta(key('/short'), { expires: Date.now() + 1_000 })
      await put(store, m, [Buffer.from('x')])
      assert.equal((await store.get(m.key)).length, 1)
      await sleep(1_300)
      assert.deepEqual(await store.get(m.key), [])
    } finally { await store.close() }
  })

  test(`${name} store: objects over the size limit are declined or never committed`, async () => {
    const store = await factory.make()
    try {
      assert.equal(store.open(key('/big'), factory.maxObjectSize + 1), null)
      // Unknown length that turns out too large: committed as nothing.
      const m = meta(key('/big-chunked'))
      const w = store.open(m.key, null)
      assert.ok(w)
      w.write(Buffer.alloc(factory.maxObjectSize))
      w.write(Buffer.alloc(1))
      await w.commit({ ...m })
      assert.deepEqual(await store.get(m.key), [])
    } finally { await store.close() }
  })

  test(`${name} store: delete and purge by key, host + path prefix, and tag`, async () => {
    const store = await factory.make()
    try {
      await put(store, meta(key('/docs/a'), { tags: ['docs', 'red'] }), [Buffer.from('a')])
      await put(store, meta(key('/docs/b?q=1'), { tags: ['docs'] }), [Buffer.from('b')])
      await put(store, meta(key('/docsx')), [Buffer.from('c')])
      await put(store, meta(key('/other'), { tags: ['red'] }), [Buffer.from('d')])
      await put(store, meta(key('/gone')), [Buffer.from('e')])

      assert.equal(await store.delete(key('/gone')), 1)
      assert.deepEqual(await store.get(key('/gone')), [])

      assert.equal(await store.purge({ tag: 'red' }), 2)
      assert.deepEqual(await store.get(key('/docs/a')), [])
      assert.deepEqual(await store.get(key('/other')), [])
      assert.equal((await store.get(key('/docs/b?q=1'))).length, 1)

      const host = `conf-${name}.test`
      assert.equal(await store.purge({ host, pathPrefix: '/docs/' }), 1)
      assert.deepEqual(await store.get(key('/docs/b?q=1')), [])
      assert.equal((await store.get(key('/docsx'))).length, 1)

      assert.equal(await store.purge({ key: key('/docsx') }), 1)
      assert.deepEqual(await store.get(key('/docsx')), [])
    } finally { await store.close() }
  })

  if (factory.makePeer !== undefined) {
    const makePeer = factory.makePeer
    test(`${name} store: a second instance sees the first one's entries and purges`, async () => {
      const a = await factory.make()
      const b = await makePeer()
      try {
        const m = meta(key('/shared'), { tags: ['both'] })
        await put(a, m, [Buffer.from('from a')])
        const seen = await b.get(m.key)
        assert.equal(seen.length, 1)
        assert.equal((await readBody(b, seen[0])).toString(), 'from a')
        assert.equal(await b.purge({ tag: 'both' }), 1)
        assert.deepEqual(await a.get(m.key), [])
      } finally {
        await a.close()
        await b.close()
      }
    })
  }
}
