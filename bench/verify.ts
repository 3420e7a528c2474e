/**
 * The check every target passes before it is measured: `GET /1k` through it returns 200 with the origin's exact
 * 1 KiB body and the origin's marker header, and a 1 MiB `POST /upload` arrives at the origin whole. A target
 * that answers anything else is not proxying, and the run stops. The same check runs over cleartext HTTP/1.1,
 * over HTTPS (HTTP/1.1, certificate verified against the bench's own for `bench.test`) or over HTTP/2 (ALPN h2,
 * likewise verified) for the scenario about to be measured; for the TLS ones it also says what was negotiated.
 * The cache scenarios add their own check (`verifyCaching`): a caching target must store a cacheable object on
 * the first GET and answer the second from its cache, saying so in `Cache-Status` (Portico) or `X-Cache-Status`
 * (nginx); a forwarding target must not answer from a cache. After a cache-hit window, `verifyHit` checks that
 * the object is still served as a hit. The GET 100 KiB scenario adds `verifyLargeGet`: the origin's 100 KiB body
 * must arrive through the target byte for byte.
 */
import { gunzipSync } from 'node:zlib'
import http from 'node:http'
import http2 from 'node:http2'
import https from 'node:https'
import type { TLSSocket } from 'node:tls'
import { GET_PATH, HUNDRED_KIB, LARGE_GET_PATH, NGINX_CACHE_HEADER, ONE_KIB, ORIGIN_HEADER, UPLOAD_BYTES, UPLOAD_PATH, uploadAnswer } from './fixture.js'
import { TLS_HOST } from './tls.js'

/** How the verifier talks to a target: cleartext HTTP/1.1, HTTP/1.1 over TLS, or HTTP/2 over TLS. */
export type Transport = 'http' | 'https' | 'h2'

interface Answer {
  status: number
  headers: http.IncomingHttpHeaders
  body: Buffer
}

/** What a request needs besides its method, path and body. */
interface Via {
  port: number
  transport: 'http' | 'https'
  /** The certificate to trust (PEM), for https. */
  ca?: string
  /** Called with the TLS socket of every answer as it arrives (it is closed once read), for https. */
  onSocket?: (socket: TLSSocket) => void
}

function request (via: Via, method: string, target: string, body?: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const options: https.RequestOptions = {
      host: '127.0.0.1',
      port: via.port,
      method,
      path: target,
      agent: false,
      timeout: 10_000,
      headers: body === undefined ? {} : { 'content-type': 'application/octet-stream', 'content-length': body.length }
    }
    const onAnswer = (res: http.IncomingMessage): void => {
      if (via.transport === 'https' && via.onSocket !== undefined) via.onSocket(res.socket as TLSSocket)
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    }
    const req = via.transport === 'https'
      ? https.request({ ...options, ca: via.ca, servername: TLS_HOST }, onAnswer)
      : http.request(options, onAnswer)
    req.on('timeout', () => req.destroy(new Error(`${method} ${target}: no answer within 10 s`)))
    req.on('error', reject)
    req.end(body)
  })
}

/** One request on an HTTP/2 session, answered in the shape of `request`'s. */
function h2Request (session: http2.ClientHttp2Session, method: string, target: string, body?: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request({
      ':method': method,
      ':path': target,
      ...(body === undefined ? {} : { 'content-type': 'application/octet-stream', 'content-length': body.length })
    }, { endStream: body === undefined })
    let status = 0
    let headers: http.IncomingHttpHeaders = {}
    const chunks: Buffer[] = []
    stream.setTimeout(10_000, () => stream.close(http2.constants.NGHTTP2_CANCEL))
    stream.on('response', (h) => {
      status = Number(h[':status'])
      headers = h as http.IncomingHttpHeaders
    })
    stream.on('data', (chunk: Buffer) => chunks.push(chunk))
    stream.on('end', () => resolve({ status, headers, body: Buffer.concat(chunks) }))
    stream.on('close', () => { if (status === 0) reject(new Error(`${method} ${target} over HTTP/2: stream closed without an answer (code ${stream.rstCode})`)) })
    stream.on('error', reject)
    if (body !== undefined) stream.end(body)
  })
}

/** Protocol, cipher and ALPN of a TLS socket, e.g. `TLSv1.3 TLS_AES_256_GCM_SHA384, ALPN h2`. */
function describeTls (socket: TLSSocket | undefined, alpn: string | false | null | undefined): string {
  if (socket === undefined) return 'TLS (not seen)'
  return `${socket.getProtocol() ?? '?'} ${socket.getCipher()?.name ?? '?'}, ALPN ${typeof alpn === 'string' ? alpn : 'none'}`
}

/**
 * Throws, naming what differed, unless the target on `port` proxies both requests to the origin over
 * `transport`; `ca` is the bench certificate (PEM) the TLS transports trust. Resolves with what TLS negotiated
 * (null over cleartext).
 */
export async function verifyTarget (name: string, port: number, transport: Transport = 'http', ca?: string): Promise<string | null> {
  if (transport === 'h2') {
    const session = http2.connect(`https://127.0.0.1:${port}`, { ca, servername: TLS_HOST })
    session.on('error', () => {})
    try {
      await new Promise<void>((resolve, reject) => {
        session.once('connect', () => resolve())
        session.once('error', reject)
      })
      if (session.alpnProtocol !== 'h2') throw new Error(`${name} did not negotiate h2 by ALPN (got ${String(session.alpnProtocol)})`)
      const tls = describeTls(session.socket as TLSSocket, session.alpnProtocol)
      checkAnswers(name, await h2Request(session, 'GET', GET_PATH), await h2Request(session, 'POST', UPLOAD_PATH, Buffer.alloc(UPLOAD_BYTES, 'x')))
      return tls
    } finally {
      session.close()
    }
  }
  let tls: string | null = null
  const via: Via = { port, transport, ca, onSocket: (s) => { tls ??= describeTls(s, s.alpnProtocol) } }
  checkAnswers(name, await request(via, 'GET', GET_PATH), await request(via, 'POST', UPLOAD_PATH, Buffer.alloc(UPLOAD_BYTES, 'x')))
  return tls
}

function checkAnswers (name: string, get: Answer, post: Answer): void {
  if (get.status !== 200 || get.headers[ORIGIN_HEADER] !== '1' || !get.body.equals(ONE_KIB)) {
    throw new Error(`${name} does not proxy GET ${GET_PATH}: status ${get.status}, ${ORIGIN_HEADER}: ` +
      `${String(get.headers[ORIGIN_HEADER])}, ${get.body.length} body bytes (want 200, 1, the origin's ${ONE_KIB.length} bytes); ` +
      `body starts ${JSON.stringify(get.body.subarray(0, 120).toString('latin1'))}`)
  }
  const want = uploadAnswer(UPLOAD_BYTES)
  if (post.status !== 200 || post.body.toString('latin1') !== want) {
    throw new Error(`${name} does not proxy POST ${UPLOAD_PATH}: status ${post.status}, body ` +
      `${JSON.stringify(post.body.subarray(0, 120).toString('latin1'))} (want 200, ${want})`)
  }
}

/**
 * Throws unless `GET /100k` through the target on `port` (cleartext HTTP/1.1) returns 200 with the origin's marker
 * header and its exact 100 KiB body.
 */
export async function verifyLargeGet (name: string, port: number): Promise<void> {
  const answer = await request({ port, transport: 'http' }, 'GET', LARGE_GET_PATH)
  if (answer.status !== 200 || answer.headers[ORIGIN_HEADER] !== '1' || !answer.body.equals(HUNDRED_KIB)) {
    throw new Error(`${name} does not proxy GET ${LARGE_GET_PATH}: status ${answer.status}, ${ORIGIN_HEADER}: ` +
      `${String(answer.headers[ORIGIN_HEADER])}, ${answer.body.length} body bytes (want 200, 1, the origin's ${HUNDRED_KIB.length} bytes)`)
  }
}

/** Which cache a target has, if any: Portico's (Cache-Status) or nginx's proxy_cache (X-Cache-Status). */
export type CacheKind = 'portico' | 'nginx' | null

/** The header a cache of `kind` reports itself in. */
function statusHeader (kind: 'portico' | 'nginx'): string {
  return kind === 'portico' ? 'cache-status' : NGINX_CACHE_HEADER
}

/** The cache status an answer carries, or `(none)`. */
function statusOf (answer: Answer, header: string): string {
  const v = answer.headers[header]
  return v === undefined ? '(none)' : Array.isArray(v) ? v.join(', ') : v
}

/** GETs `target` over cleartext HTTP/1.1 and throws unless it is 200 with the origin's 1 KiB and marker header. */
async function getObject (name: string, port: number, target: string): Promise<Answer> {
  const answer = await request({ port, transport: 'http' }, 'GET', target)
  if (answer.status !== 200 || answer.headers[ORIGIN_HEADER] !== '1' || !answer.body.equals(ONE_KIB)) {
    throw new Error(`${name} does not serve GET ${target}: status ${answer.status}, ${ORIGIN_HEADER}: ` +
      `${String(answer.headers[ORIGIN_HEADER])}, ${answer.body.length} body bytes (want 200, 1, the origin's ${ONE_KIB.length} bytes)`)
  }
  return answer
}

const STORED: Record<'portico' | 'nginx', RegExp> = { portico: /^Portico; fwd=uri-miss;.*\bstored\b/, nginx: /^MISS$/ }
const HIT: Record<'portico' | 'nginx', RegExp> = { portico: /^Portico; hit\b/, nginx: /^HIT$/ }

/**
 * The cache scenarios' check before a window. A caching target (`kind`) must answer a first GET of `target` as a
 * stored miss and a second as a hit; resolves with both statuses for the progress line. A forwarding target
 * (`kind` null) must answer without Cache-Status or X-Cache-Status. Throws, naming what it saw, otherwise.
 */
export async function verifyCaching (name: string, port: number, target: string, kind: CacheKind): Promise<string> {
  const first = await getObject(name, port, target)
  if (kind === null) {
    for (const h of ['cache-status', NGINX_CACHE_HEADER]) {
      if (first.headers[h] !== undefined) throw new Error(`${name} should forward GET ${target} uncached, but answered ${h}: ${statusOf(first, h)}`)
    }
    return 'forwards (no cache status)'
  }
  const header = statusHeader(kind)
  const miss = statusOf(first, header)
  if (!STORED[kind].test(miss)) throw new Error(`${name}: first GET ${target} should be a stored miss, but ${header}: ${miss}`)
  const second = await getObject(name, port, target)
  const hit = statusOf(second, header)
  if (!HIT[kind].test(hit)) throw new Error(`${name}: second GET ${target} should be a cache hit, but ${header}: ${hit} (first: ${miss})`)
  return `${header}: ${miss} | then ${hit}`
}

/** One GET of `target` through a caching target must be a hit (after a window). Resolves with its status. */
export async function verifyHit (name: string, port: number, target: string, kind: 'portico' | 'nginx'): Promise<string> {
  const answer = await getObject(name, port, target)
  const header = statusHeader(kind)
  const status = statusOf(answer, header)
  if (!HIT[kind].test(status)) throw new Error(`${name}: GET ${target} after the window should be a cache hit, but ${header}: ${status}`)
  return status
}

/**
 * Throws unless the target on `port` answers GET 1 KiB with `Accept-Encoding: gzip` gzip-compressed, decoding to the
 * origin's bytes: the rules target `portico-gzip` must really compress what the bench measures.
 */
export async function verifyCompression (name: string, port: number): Promise<void> {
  const answer = await new Promise<{ encoding: string | undefined, body: Buffer }>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: GET_PATH, headers: { 'accept-encoding': 'gzip' }, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ encoding: res.headers['content-encoding'], body: Buffer.concat(chunks) }))
      res.on('error', reject)
    }).on('error', reject)
  })
  if (answer.encoding !== 'gzip' || !gunzipSync(answer.body).equals(ONE_KIB)) {
    throw new Error(`${name} does not compress GET ${GET_PATH}: Content-Encoding ${String(answer.encoding)}, ${answer.body.length} bytes`)
  }
}
