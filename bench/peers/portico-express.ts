/**
 * Portico embedded in an Express 5 app as a benchmark target, run as its own process:
 * `node dist/bench/peers/portico-express.js PORT TARGET`. The one-liner `app.use(proxy({ upstream: [TARGET] }))`
 * with the standalone target's settings (access log off, no Via; X-Forwarded-* on), on a plain `http.Server` and
 * Express's defaults, so the row shows what the framework around the proxy costs.
 */
import http from 'node:http'
import express from 'express'
import { proxy } from '../../src/index.js'

const port = Number(process.argv[2])
const target = process.argv[3]
if (!Number.isInteger(port) || port <= 0 || target === undefined) {
  process.stderr.write('usage: portico-express.js PORT TARGET\n')
  process.exit(2)
}

const app = express()
app.use(proxy({ upstream: [target], log: { access: false }, headers: { via: false } }))

const server = http.createServer(app)
server.on('clientError', (_err, socket) => socket.destroy())
server.listen(port, '127.0.0.1')
process.on('SIGTERM', () => process.exit(0))
