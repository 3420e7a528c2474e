// A Hono app with Portico mounted at /api through the fetch adapter: every request under /api goes to the
// upstream without the prefix (/api/users?id=1 arrives as /users?id=1, with X-Forwarded-Prefix: /api), bodies
// streamed both ways; the app's other routes answer everything else.
//
// On Node, Hono apps usually run under @hono/node-server (`serve({ fetch: app.fetch, port })`, which also hands
// the adapter the client's address). So that nothing beyond Portico is needed, Portico itself serves the app
// here: the Hono app is an in-process fetch handler behind a listening Portico.
//
//   npm run build && UPSTREAM=http://127.0.0.1:4000 node examples/hono/server.mjs   # PORT=0 (any free port) by default
//   curl http://127.0.0.1:<port>/api/anything?x=1     # proxied to $UPSTREAM/anything?x=1
//   curl http://127.0.0.1:<port>/healthz              # the app's own route
import { fileURLToPath } from 'node:url'
import { Hono } from 'hono'
import { createProxy } from 'portico'
import { toFetchHandler } from '../../dist/src/adapters/index.js'

/** Builds the app and listens on `port` (0 = any free port). Returns { url, close }. */
export async function start ({ port = Number(process.env.PORT ?? 0), host = '127.0.0.1', upstream = 'http://127.0.0.1:4000' } = {}) {
  const api = createProxy({ upstreams: { '*': [upstream] } })
  const toApi = toFetchHandler(api, { prefix: '/api' })

  const app = new Hono()
  app.get('/', (c) => c.text('Hono app; /api/* is proxied by Portico\n'))
  app.get('/healthz', (c) => c.text('ok\n'))
  app.all('/api/*', (c) => toApi(c.req.raw, c.env))

  const server = createProxy({ listen: [{ host, port }], upstreams: { '*': { handler: app } } })
  const [addr] = await server.listen()
  return {
    url: addr.url,
    async close () {
      await server.close({ drainTimeout: 1000 })
      await toApi.close()
      await api.close()
    }
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const upstream = process.env.UPSTREAM ?? 'http://127.0.0.1:4000'
  const { url, close } = await start({ upstream })
  console.log(`Hono app on ${url}; ${url}/api/* is proxied to ${upstream}`)
  for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => close().then(() => process.exit(0)))
}
