// A Connect app with Portico mounted at /api: every request under /api goes to the upstream without the prefix
// (/api/users?id=1 arrives as /users?id=1, with X-Forwarded-Prefix: /api), and so do WebSocket handshakes; the
// app's own middleware answers everything else.
//
//   npm run build && UPSTREAM=http://127.0.0.1:4000 node examples/connect/server.mjs   # PORT=3000 by default
//   curl http://127.0.0.1:3000/api/anything?x=1     # proxied to $UPSTREAM/anything?x=1
//   curl http://127.0.0.1:3000/healthz              # the app's own route
import http from 'node:http'
import { fileURLToPath } from 'node:url'
import connect from 'connect'
import { proxy } from 'portico'

/** Builds the app and listens on `port` (0 = any free port). Returns { url, close }. */
export async function start ({ port = 3000, host = '127.0.0.1', upstream = 'http://127.0.0.1:4000' } = {}) {
  const app = connect()
  const api = proxy({ upstream: [upstream], mount: '/api' })
  app.use('/api', api)
  app.use('/healthz', (req, res) => res.end('ok\n'))
  app.use((req, res, next) => {
    if (req.url !== '/') return next()
    res.setHeader('content-type', 'text/plain')
    res.end('Connect app; /api/* is proxied by Portico\n')
  })

  const server = http.createServer(app)
  // WebSocket handshakes never reach Connect: the server hands them over. `mount` says which ones are the proxy's.
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
  console.log(`Connect app on ${url}; ${url}/api/* is proxied to ${upstream}`)
  for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => close().then(() => process.exit(0)))
}
