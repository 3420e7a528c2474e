// Portico inside a plain node:http server, no framework: `proxy.handler(req, res, next)` forwards what its routes
// match (here /api, prefix stripped: /api/users?id=1 arrives as /users?id=1) and calls `next` for the rest, which
// the server's own code answers. `proxy.upgradeHandler` does the same for WebSocket handshakes.
//
//   npm run build && UPSTREAM=http://127.0.0.1:4000 node examples/node-http/server.mjs   # PORT=3000 by default
//   curl http://127.0.0.1:3000/api/anything?x=1     # proxied to $UPSTREAM/anything?x=1
//   curl http://127.0.0.1:3000/healthz              # the server's own route
import http from 'node:http'
import { fileURLToPath } from 'node:url'
import { createProxy } from 'portico'

/** The server's own routes: whatever the proxy did not take. */
function ownRoutes (req, res) {
  const path = req.url.split('?')[0]
  const body = path === '/healthz' ? 'ok\n' : path === '/' ? 'node:http server; /api/* is proxied by Portico\n' : null
  res.writeHead(body === null ? 404 : 200, { 'content-type': 'text/plain' })
  res.end(body ?? 'not found\n')
}

/** Builds the server and listens on `port` (0 = any free port). Returns { url, close }. */
export async function start ({ port = 3000, host = '127.0.0.1', upstream = 'http://127.0.0.1:4000' } = {}) {
  const proxy = createProxy({ routes: [{ host: '*', path: '/api', stripPrefix: true, upstream: [upstream] }] })
  const server = http.createServer((req, res) => proxy.handler(req, res, () => ownRoutes(req, res)))
  server.on('upgrade', (req, socket, head) => proxy.upgradeHandler(req, socket, head, () => socket.destroy()))
  await new Promise((resolve) => server.listen(port, host, resolve))
  const { port: bound } = server.address()
  return {
    url: `http://${host}:${bound}`,
    async close () {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
      await proxy.close()
    }
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const upstream = process.env.UPSTREAM ?? 'http://127.0.0.1:4000'
  const { url, close } = await start({ port: Number(process.env.PORT ?? 3000), upstream })
  console.log(`node:http server on ${url}; ${url}/api/* is proxied to ${upstream}`)
  for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => close().then(() => process.exit(0)))
}
