import { test } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { ROOT, send } from '../helpers/servers.js'

test('umbrella example: Express, Fastify and a fetch handler by host on one port, in-process', async (t) => {
  const mod = await import(pathToFileURL(path.join(ROOT, 'examples/umbrella/server.mjs')).href) as {
    start: (o: { port: number }) => Promise<{ url: string, close: () => Promise<void> }>
  }
  const app = await mod.start({ port: 0 })
  t.after(() => app.close())
  const shop = await send(`${app.url}/`, { headers: { host: 'shop.localhost' } })
  assert.equal(shop.body.toString(), 'shop home (via shop.localhost)')
  const cart = await send(`${app.url}/cart`, { method: 'POST', headers: { host: 'shop.localhost', 'content-type': 'application/json' }, body: '{"sku":7}' })
  assert.deepEqual(JSON.parse(cart.body.toString()), { added: { sku: 7 } })
  const items = await send(`${app.url}/items`, { headers: { host: 'api.localhost' } })
  assert.deepEqual(JSON.parse(items.body.toString()), { items: ['a', 'b'] })
  const echo = await send(`${app.url}/echo`, { method: 'POST', headers: { host: 'api.localhost', 'content-type': 'application/json' }, body: '{"x":[1,2]}' })
  assert.deepEqual(JSON.parse(echo.body.toString()), { x: [1, 2] })
  const edge = await send(`${app.url}/hello`, { headers: { host: 'edge.localhost' } })
  assert.equal(edge.body.toString(), 'hello from the edge, 127.0.0.1')
  const none = await send(`${app.url}/`, { headers: { host: 'other.localhost' } })
  assert.equal(none.status, 404)
})
