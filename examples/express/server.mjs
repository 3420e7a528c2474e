// An Express app with Portico mounted at /api, the README's one-liner: every request under /api goes to the
// upstream without the prefix (/api/users?id=1 arrives as /users?id=1, with X-Forwarded-Prefix: /api), and so
// do WebSocket handshakes; the app's own routes answer everything else. Body parsers mounted before the proxy
// are fine: Portico forwards what they kept.
//
//   npm run build && UPSTREAM=http://127.0.0.1:4000 node examples/express/server.mjs   # PORT=3000 by default
//   curl http://127.0.0.1:3000/api/anything?x=1     # proxied to $UPSTREAM/anything?x=1
//   curl http://127.0.0.1:3000/healthz              # the app's own route
import http from 'node:http'
import { fileURLToPath } from 'node:url'
import express from 'express'
import { proxy } from 'portico'

/** Builds the app and listens on `port` (0 = any free port). Returns { url, close }. */
export async function start ({ port = 3000, host = '127.0.0.1', upstream = 'http://127.0.0.1:4000' } = {}) {
  const app = express()
  const api = proxy({ upstream: [upstream], mount: '/api' })
  app.use('/api', api)
  app.get('/', (req, res) => res.send('Express app; /api/* is proxied by Portico\n'))
  app.get('/healthz', (req, res) => res.send('ok\n'))

  const server = http.createServer(app)
  // WebSocket handshakes never reach Express: the server hands them over. `mount` says which ones are the proxy's.
  server.on('upgrade', api.upgrade)
  await new Promise((resolve) => server.listen(port, host, resolve))
  const { port: bound } = server.address()
  return {
    url: `http://${host}:${bound}`,
    async close () {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
      await api.proxy.close()
    }
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const upstream = process.env.UPSTREAM ?? 'http://127.0.0.1:4000'
  const { url, close } = await start({ port: Number(process.env.PORT ?? 3000), upstream })
  console.log(`Express app on ${url}; ${url}/api/* is proxied to ${upstream}`)
  for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => close().then(() => process.exit(0)))
}
