import { test } from 'node:test'
import assert from 'node:assert/strict'
import { closedPort, send, startOrigin, startProxy } from '../helpers/servers.js'
import type { AccessRecord, ProxyHooks } from '../../src/index.js'

test('hooks run in order on the way in and in reverse on the way out, and may edit both heads', async (t) => {
  const origin = await startOrigin((req, res) => {
    res.setHeader('x-origin', 'yes')
    res.end(`${req.url} ${req.headers['x-added'] ?? ''}`)
  })
  const order: string[] = []
  const records: AccessRecord[] = []
  const hook = (name: string): ProxyHooks => ({
    onRequest: () => { order.push(`${name}.onRequest`) },
    onUpstreamRequest: (_ctx, r) => {
      order.push(`${name}.onUpstreamRequest`)
      r.headers.append('x-added', name)
      if (name === 'a') r.path = `/rewritten${r.path}`
    },
    onUpstreamResponse: (_ctx, r) => {
      order.push(`${name}.onUpstreamResponse`)
      r.headers.set('x-seen-by', `${r.headers.get('x-seen-by') ?? ''}${name}`)
      r.headers.delete('x-origin')
      if (name === 'a') r.status = 203
    },
    onResponse: (_ctx, record) => { order.push(`${name}.onResponse`); records.push(record) }
  })
  const proxy = await startProxy({ upstreams: { '*': [origin.url] }, hooks: [hook('a'), hook('b')] })
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  const r = await send(`${proxy.url}/p?q=1`)
  assert.equal(r.status, 203)
  assert.equal(r.body.toString(), '/rewritten/p?q=1 a, b')
  assert.equal(r.headers['x-seen-by'], 'ba')
  assert.equal(r.headers['x-origin'], undefined)
  assert.deepEqual(order, [
    'a.onRequest', 'b.onRequest', 'a.onUpstreamRequest', 'b.onUpstreamRequest',
    'b.onUpstreamResponse', 'a.onUpstreamResponse', 'b.onResponse', 'a.onResponse'
  ])
  assert.equal(records[0].status, 203)
})

test('onRequest may answer (sync or async); nothing is forwarded', async (t) => {
  const origin = await startOrigin()
  const proxy = await startProxy({
    upstreams: { '*': [origin.url] },
    hooks: {
      onRequest: async (ctx) => {
        if (ctx.req.headers.authorization !== 'Bearer ok') return { status: 401, headers: { 'www-authenticate': 'Bearer' }, body: 'no' }
        return undefined
      }
    }
  })
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  const denied = await send(`${proxy.url}/`)
  assert.equal(denied.status, 401)
  assert.equal(denied.body.toString(), 'no')
  assert.equal(origin.requests.length, 0)
  const allowed = await send(`${proxy.url}/`, { headers: { authorization: 'Bearer ok' } })
  assert.equal(allowed.status, 200)
  assert.equal(origin.requests.length, 1)
})

test('onError may replace the error response; onResponse sees the error code', async (t) => {
  const port = await closedPort()
  const seen: string[] = []
  const proxy = await startProxy({
    upstreams: { '*': [`http://127.0.0.1:${port}`] },
    hooks: {
      onError: (_ctx, err) => ({ status: 503, headers: { 'content-type': 'text/html' }, body: `<h1>down (${err.code})</h1>` }),
      onResponse: (_ctx, rec) => { seen.push(`${rec.status} ${rec.error}`) }
    }
  })
  t.after(() => proxy.close())
  const r = await send(`${proxy.url}/`)
  assert.equal(r.status, 503)
  assert.equal(r.body.toString(), '<h1>down (PORTICO_ERR_UPSTREAM_REFUSED)</h1>')
  assert.deepEqual(seen, ['503 PORTICO_ERR_UPSTREAM_REFUSED'])
})
