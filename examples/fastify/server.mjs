// A Fastify app with Portico mounted at /api as a plugin: every request under /api goes to the upstream without
// the prefix (/api/users?id=1 arrives as /users?id=1, with X-Forwarded-Prefix: /api), bodies untouched by
// Fastify's parsers, and so do WebSocket handshakes; the app's own routes (and hooks) still apply.
//
//   npm run build && UPSTREAM=http://127.0.0.1:4000 node examples/fastify/server.mjs   # PORT=0 (any free port) by default
//   curl http://127.0.0.1:<port>/api/anything?x=1     # proxied to $UPSTREAM/anything?x=1
//   curl http://127.0.0.1:<port>/healthz              # the app's own route
import { fileURLToPath } from 'node:url'
import Fastify from 'fastify'
import { porticoFastify } from '../../dist/src/adapters/index.js'

/** Builds the app and listens on `port` (0 = any free port). Returns { url, close }. */
export async function start ({ port = Number(process.env.PORT ?? 0), host = '127.0.0.1', upstream = 'http://127.0.0.1:4000' } = {}) {
  const app = Fastify()
  app.get('/', async () => 'Fastify app; /api/* is proxied by Portico\n')
  app.get('/healthz', async () => 'ok\n')
  // The plugin creates the Proxy and closes it with the app; `{ proxy }` mounts one of yours (host routing) instead.
  await app.register(porticoFastify, { prefix: '/api', upstream: [upstream] })
  await app.listen({ port, host })
  const { port: bound } = app.server.address()
  return { url: `http://${host}:${bound}`, close: () => app.close() }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const upstream = process.env.UPSTREAM ?? 'http://127.0.0.1:4000'
  const { url, close } = await start({ upstream })
  console.log(`Fastify app on ${url}; ${url}/api/* is proxied to ${upstream}`)
  for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => close().then(() => process.exit(0)))
}
