/**
 * node-http-proxy as a benchmark peer, run as its own process:
 * `node dist/bench/peers/http-proxy.js PORT TARGET [--tls CERT_FILE KEY_FILE]`.
 * The setup its README recommends for a reverse proxy: a keep-alive agent (256 sockets, as many as Portico's
 * default pool), `xfwd` so it adds X-Forwarded-* as Portico does, and a 502 on upstream errors. With `--tls` its
 * front is an `https.Server` with Node's TLS defaults (HTTP/1.1 only: node-http-proxy does not serve HTTP/2);
 * it still speaks cleartext HTTP/1.1 to TARGET.
 */
import { readFileSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import httpProxy from 'http-proxy'

const [portArg, target, tlsFlag, certFile, keyFile] = process.argv.slice(2)
const port = Number(portArg)
const tls = tlsFlag === '--tls'
if (!Number.isInteger(port) || port <= 0 || target === undefined || (tlsFlag !== undefined && (!tls || certFile === undefined || keyFile === undefined))) {
  process.stderr.write('usage: http-proxy.js PORT TARGET [--tls CERT_FILE KEY_FILE]\n')
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

const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => proxy.web(req, res)
const server = tls
  ? https.createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) }, handler)
  : http.createServer(handler)
server.on('clientError', (_err, socket) => socket.destroy())
if (tls) server.on('tlsClientError', (_err, socket) => socket.destroy())
server.listen(port, '127.0.0.1')
process.on('SIGTERM', () => process.exit(0))
