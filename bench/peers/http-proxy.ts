/**
 * node-http-proxy as a benchmark peer, run as its own process: `node dist/bench/peers/http-proxy.js PORT TARGET`.
 * The setup its README recommends for a reverse proxy: a keep-alive agent (256 sockets, as many as Portico's
 * default pool), `xfwd` so it adds X-Forwarded-* as Portico does, and a 502 on upstream errors.
 */
import http from 'node:http'
import httpProxy from 'http-proxy'

const port = Number(process.argv[2])
const target = process.argv[3]
if (!Number.isInteger(port) || port <= 0 || target === undefined) {
  process.stderr.write('usage: http-proxy.js PORT TARGET\n')
  process.exit(2)
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 })
const proxy = httpProxy.createProxyServer({ target, agent, xfwd: true })
proxy.on('error', (_err, _req, res) => {
  if (res instanceof http.ServerResponse && !res.headersSent) {
    res.writeHead(502, { 'content-length': '0' })
    res.end()
  } else {
    res.destroy()
  }
})

const server = http.createServer((req, res) => proxy.web(req, res))
server.on('clientError', (_err, socket) => socket.destroy())
server.listen(port, '127.0.0.1')
process.on('SIGTERM', () => process.exit(0))
