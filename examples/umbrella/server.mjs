// The umbrella example: three apps behind one port, chosen by host, with no network hop between Portico and
// them: an Express app (shop.localhost), a Fastify app (api.localhost) and a fetch-style Hono app
// (edge.localhost). Anything else gets Portico's 404.
//
//   npm run build && node examples/umbrella/server.mjs          # PORT=8080 by default
//   curl -H 'Host: shop.localhost' http://127.0.0.1:8080/
//   curl -H 'Host: api.localhost' http://127.0.0.1:8080/items
//   curl -H 'Host: edge.localhost' http://127.0.0.1:8080/hello
import { fileURLToPath } from 'node:url'
import express from 'express'
import Fastify from 'fastify'
import { Hono } from 'hono'
import { createProxy } from 'portico'

/** Builds the three apps and the proxy; listens on `port` (0 = any free port). Returns { url, close }. */
export async function start ({ port = Number(process.env.PORT ?? 8080), host = '127.0.0.1' } = {}) {
  const shop = express()
  shop.get('/', (req, res) => res.send(`shop home (via ${req.headers['x-forwarded-host']})`))
  shop.post('/cart', express.json(), (req, res) => res.json({ added: req.body }))

  const api = Fastify()
  api.get('/items', async () => ({ items: ['a', 'b'] }))
  api.post('/echo', async (request) => request.body)

  const edge = new Hono()
  edge.get('/hello', (c) => c.text(`hello from the edge, ${c.req.header('x-forwarded-for')}`))

  const proxy = createProxy({
    listen: [{ host, port }],
    upstreams: {
      'shop.localhost': { handler: shop },
      'api.localhost': { handler: api },
      'edge.localhost': { handler: edge }
    }
  })
  const [addr] = await proxy.listen()
  return {
    url: addr.url,
    async close () {
      await proxy.close({ drainTimeout: 1000 })
      await api.close()
    }
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { url } = await start()
  console.log(`umbrella listening on ${url} (hosts: shop.localhost, api.localhost, edge.localhost)`)
}
