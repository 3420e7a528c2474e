/**
 * The benchmark origin, run as its own process: `node dist/bench/origin.js PORT`. A plain `node:http` server on
 * 127.0.0.1 that answers `GET /1k` with `ONE_KIB`, `GET /100k` with `HUNDRED_KIB` and `GET /1g` with 1 GiB
 * (written in 64 KiB chunks of one reused buffer, as fast as the connection drains), and reads and discards
 * `POST /upload` bodies of any size, answering with the byte count. For the cache
 * scenarios it answers `GET /cache/1k` and `GET /obj/<anything>` with `ONE_KIB` and
 * `Cache-Control: max-age=3600` (and the `Date` node:http adds to every answer). Idle keep-alive
 * connections are kept for 65 s, longer than any proxy under test keeps its upstream connections, so no proxy
 * meets a connection the origin is closing. Its accept queue is deeper than Node's default, for the proxies
 * that open many upstream connections at once.
 */
import http from 'node:http'
import {
  CACHE_MAX_AGE, CACHE_PATH, DOWNLOAD_PATH, GET_PATH, HUNDRED_KIB, LARGE_GET_PATH, OBJECT_PREFIX, ONE_KIB, ORIGIN_HEADER, TRANSFER_BYTES,
  TRANSFER_CHUNK_BYTES, UPLOAD_PATH, uploadAnswer, writeTransfer
} from './fixture.js'

const port = Number(process.argv[2])
if (!Number.isInteger(port) || port <= 0) {
  process.stderr.write('usage: origin.js PORT\n')
  process.exit(2)
}

const getHeaders = {
  'content-type': 'application/octet-stream',
  'content-length': String(ONE_KIB.length),
  [ORIGIN_HEADER]: '1'
}

const cacheableHeaders = { ...getHeaders, 'cache-control': `max-age=${CACHE_MAX_AGE}` }

const largeHeaders = { ...getHeaders, 'content-length': String(HUNDRED_KIB.length) }

/** The one buffer every chunk of `GET /1g` is written from. */
const chunk = Buffer.alloc(TRANSFER_CHUNK_BYTES, 'portico-bench 0123456789abcdef\n')

/** Writes `TRANSFER_BYTES` to `res` in chunks of `chunk`, waiting for 'drain' when the socket is full. */
function streamDownload (res: http.ServerResponse): void {
  res.writeHead(200, { ...getHeaders, 'content-length': String(TRANSFER_BYTES) })
  writeTransfer(res, chunk)
}

const server = http.createServer((req, res) => {
  req.on('error', () => res.destroy())
  if (req.method === 'GET' && req.url === GET_PATH) {
    res.writeHead(200, getHeaders)
    res.end(ONE_KIB)
    return
  }
  if (req.method === 'GET' && req.url === LARGE_GET_PATH) {
    res.writeHead(200, largeHeaders)
    res.end(HUNDRED_KIB)
    return
  }
  if (req.method === 'GET' && req.url === DOWNLOAD_PATH) {
    streamDownload(res)
    return
  }
  if (req.method === 'GET' && req.url !== undefined && (req.url === CACHE_PATH || req.url.startsWith(OBJECT_PREFIX))) {
    res.writeHead(200, cacheableHeaders)
    res.end(ONE_KIB)
    return
  }
  if (req.method === 'POST' && req.url === UPLOAD_PATH) {
    let bytes = 0
    req.on('data', (chunk: Buffer) => { bytes += chunk.length })
    req.on('end', () => {
      const body = uploadAnswer(bytes)
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length), [ORIGIN_HEADER]: '1' })
      res.end(body)
    })
    return
  }
  res.writeHead(404, { 'content-length': '0' })
  res.end()
})
server.keepAliveTimeout = 65_000
server.headersTimeout = 66_000
server.on('clientError', (_err, socket) => socket.destroy())
server.on('connection', (socket) => socket.on('error', () => socket.destroy()))
// A deep accept queue: in the busy scenario nginx and HAProxy open an upstream connection per busy client
// connection, up to 1,000 at once, and Node's default backlog (511) would drop handshakes, making the origin
// the bottleneck of their figures. The kernel caps it at net.core.somaxconn.
server.listen({ port, host: '127.0.0.1', backlog: 4096 })
process.on('SIGTERM', () => process.exit(0))
