/**
 * Request framing, proven over raw sockets: for each malformed or ambiguous HTTP/1.1 input, what the client gets
 * (status, and whether the connection closes) AND what the node behind Portico receives (nothing, or exactly one
 * clean request: method, URL, headers, body).
 *
 * What this file shows:
 * - Node's parser (llhttp, strict) refuses every ambiguous framing before Portico's pipeline runs: Content-Length
 *   with Transfer-Encoding (RFC 9112 §6.1: Portico answers 400, it never lets Transfer-Encoding win), repeated or
 *   listed Content-Length, bad chunk sizes, oversized or broken chunk extensions, bare LF, obs-fold, NUL or CR in a
 *   value, whitespace before the colon, a Transfer-Encoding whose last coding is not chunked. Each gets one 400
 *   (registry code PORTICO_ERR_BAD_REQUEST) with Connection: close, the connection closes, and nothing reaches the
 *   node — neither the request nor a request smuggled behind it.
 * - Answers the pipeline makes (duplicate Host: 400; a foreign absolute-form target: 404) keep the connection in
 *   step: the next request on the same socket gets its own answer, and only that request reaches the node.
 * - A head over server.maxHeaderSize gets 431 and the connection closes; a body over limits.maxRequestBody gets 413
 *   and the connection closes: a declared one never reaches the node, a chunked one is cut off and the node sees an
 *   aborted request it never completes.
 * - A request after `Content-Length: 0` is a request of its own, and a request inside a body stays body bytes.
 *
 * Every wait is bounded; nothing measures time.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { gzipSync } from 'node:zlib'
import type { PorticoConfig } from '../../src/index.js'
import { startOrigin, startProxy, type Origin, type RunningProxy } from '../helpers/servers.js'
import { rawSession, type RawResponse, type RawSession } from '../helpers/raw.js'
import { eventually, sleep } from '../helpers/poll.js'

/** What the node did with each request's body, in the order of origin.requests. */
interface Seen {
  body: string
  /** The whole body arrived ('end'). */
  complete: boolean
  /** The connection went away before the body was complete. */
  aborted: boolean
}

interface Setup {
  proxy: RunningProxy
  origin: Origin
  seen: Seen[]
}

/** A recording origin (answers "METHOD URL [body]" once the body is complete) behind a proxy serving a.test. */
async function setup (t: TestContext, config: Partial<PorticoConfig> = {}): Promise<Setup> {
  const seen: Seen[] = []
  const origin = await startOrigin((req, res) => {
    const s: Seen = { body: '', complete: false, aborted: false }
    seen.push(s)
    req.setEncoding('latin1')
    req.on('data', (c: string) => { s.body += c })
    req.on('end', () => {
      s.complete = true
      res.end(`${req.method} ${req.url} [${s.body}]`)
    })
    req.on('close', () => { if (!req.complete) s.aborted = true })
    req.on('error', () => {})
  })
  const proxy = await startProxy({ routes: [{ host: 'a.test', upstream: [origin.url] }], ...config })
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  return { proxy, origin, seen }
}

const HOST = 'Host: a.test\r\n'
/** A valid request, pipelined after the input under test. */
const FOLLOW = `GET /follow HTTP/1.1\r\n${HOST}\r\n`
const SMUGGLED = `GET /smuggled HTTP/1.1\r\n${HOST}\r\n`

function show (s: RawSession): string {
  return JSON.stringify(s.raw.length > 600 ? `${s.raw.slice(0, 600)}…` : s.raw)
}

/** A Portico error answer: the status, its registry code in Proxy-Status and in the body. */
function assertAnswer (r: RawResponse, status: number, code: string): void {
  assert.equal(r.status, status)
  assert.match(r.headers['proxy-status'] ?? '', new RegExp(`^portico; error=\\w+; details="${code}"$`))
  assert.ok(r.body.includes(`\n${code}\n`), `the body names ${code}`)
}

/** Exactly one error answer with Connection: close, nothing after it, and the server closed the connection. */
function assertRefusedAndClosed (s: RawSession, status: number, code: string): void {
  assert.equal(s.responses.length, 1, `exactly one response: ${show(s)}`)
  assertAnswer(s.responses[0], status, code)
  assert.equal(s.responses[0].headers.connection, 'close')
  assert.equal(s.rest, '', 'nothing after the response')
  assert.equal(s.closedByServer, true, 'the server closed the connection')
}

/** The origin's answer to the pipelined FOLLOW: its own response, with its own body. */
function assertFollowAnswered (r: RawResponse | undefined): void {
  assert.ok(r !== undefined, 'the request after it is answered')
  assert.equal(r.status, 200)
  assert.equal(r.body, 'GET /follow []')
}

/** The one request the node received is FOLLOW, and it is clean. */
function assertOnlyFollowForwarded (o: Setup): void {
  assert.deepEqual(o.origin.requests.map((r) => `${r.method} ${r.url}`), ['GET /follow'])
  assert.deepEqual(o.seen, [{ body: '', complete: true, aborted: false }])
  const h = o.origin.requests[0].headers
  assert.equal(h.host, 'a.test')
  assert.equal(h['content-length'], undefined)
  assert.equal(h['transfer-encoding'], undefined)
}

// --- refused by the parser: 400, closed, nothing forwarded ------------------------------------------------------

/**
 * Inputs Node's parser rejects. Each is followed on the wire by a valid request: the connection must close after
 * the 400 without answering it or forwarding it.
 */
const REFUSED: { name: string, bytes: string, status?: number, code?: string }[] = [
  {
    // CL.TE: a front end honouring Content-Length reads "0\r\n\r\n" as the body; one honouring chunked ends the
    // body at the last chunk. Either way "GET /smuggled" follows — it must never reach the node.
    name: 'Content-Length and Transfer-Encoding: chunked (CL first), with a request smuggled behind',
    bytes: `POST /x HTTP/1.1\r\n${HOST}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`
  },
  {
    // TE.CL: with Content-Length 4 the body is the chunk-size line "28\r\n", and the chunk would be the next request.
    name: 'Transfer-Encoding: chunked and Content-Length (TE first), with a request smuggled in the chunk',
    bytes: `POST /x HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n${(SMUGGLED.length).toString(16)}\r\n${SMUGGLED}\r\n0\r\n\r\n`
  },
  {
    name: 'two Content-Length fields with different values',
    bytes: `POST /x HTTP/1.1\r\n${HOST}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!`
  },
  {
    // RFC 9112 §6.3 allows accepting identical values; Node refuses any repetition, which is stricter and safe.
    name: 'two Content-Length fields with the same value',
    bytes: `POST /x HTTP/1.1\r\n${HOST}Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello`
  },
  { name: 'Content-Length as a list "5, 5"', bytes: `POST /x HTTP/1.1\r\n${HOST}Content-Length: 5, 5\r\n\r\nhello` },
  { name: 'Content-Length with a sign "+5"', bytes: `POST /x HTTP/1.1\r\n${HOST}Content-Length: +5\r\n\r\nhello` },
  { name: 'chunk size "zz"', bytes: `POST /x HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n` },
  { name: 'negative chunk size "-5"', bytes: `POST /x HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n` },
  {
    name: 'chunk size overflowing 64 bits "ffffffffffffffffff"',
    bytes: `POST /x HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nhello\r\n0\r\n\r\n`
  },
  {
    name: 'a 20 KiB chunk extension',
    bytes: `POST /x HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked\r\n\r\n5;${'a'.repeat(20 * 1024)}\r\nhello\r\n0\r\n\r\n`
  },
  {
    name: 'a chunk extension with an unterminated quoted string',
    bytes: `POST /x HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked\r\n\r\n5;a="b\r\nhello\r\n0\r\n\r\n`
  },
  {
    // A parser that ends the extension at a bare LF would read the next line as chunk data.
    name: 'a bare LF inside a chunk extension',
    bytes: `POST /x HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked\r\n\r\n5;a\n${SMUGGLED}hello\r\n0\r\n\r\n`
  },
  { name: 'bare LF line endings throughout', bytes: 'GET /x HTTP/1.1\nHost: a.test\n\n' },
  { name: 'a bare LF ending one header line', bytes: `GET /x HTTP/1.1\r\nHost: a.test\nX-A: 1\r\n\r\n` },
  { name: 'obs-fold (a header continuation line)', bytes: `GET /x HTTP/1.1\r\n${HOST}X-A: 1\r\n b\r\n\r\n` },
  { name: 'NUL in a header value', bytes: `GET /x HTTP/1.1\r\n${HOST}X-A: a\0b\r\n\r\n` },
  { name: 'a bare CR in a header value', bytes: `GET /x HTTP/1.1\r\n${HOST}X-A: a\rb\r\n\r\n` },
  { name: 'whitespace before the colon: "Host : a.test"', bytes: 'GET /x HTTP/1.1\r\nHost : a.test\r\n\r\n' },
  {
    name: 'whitespace before the colon: "Transfer-Encoding : chunked"',
    bytes: `POST /x HTTP/1.1\r\n${HOST}Transfer-Encoding : chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`
  },
  {
    // RFC 9112 §6.3: in a request, chunked must be the final coding; otherwise the length cannot be known.
    name: 'Transfer-Encoding: chunked, identity',
    bytes: `POST /x HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked, identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n`
  },
  // Node takes "xchunked" for an unknown coding with no framing it knows; Portico refuses the coding (501).
  { name: 'Transfer-Encoding: xchunked', bytes: `POST /x HTTP/1.1\r\n${HOST}Transfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, status: 501, code: 'PORTICO_ERR_UNSUPPORTED_TRANSFER_CODING' },
  {
    name: 'Transfer-Encoding: xchunked with Content-Length',
    bytes: `POST /x HTTP/1.1\r\n${HOST}Transfer-Encoding: xchunked\r\nContent-Length: 5\r\n\r\nhello`
  },
  {
    name: 'Transfer-Encoding: chunked twice',
    bytes: `POST /x HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`
  }
]

for (const input of REFUSED) {
  test(`${input.name}: ${input.status ?? 400}, the connection closes, nothing reaches the node`, async (t) => {
    const o = await setup(t)
    const s = await rawSession(o.proxy.port, input.bytes + FOLLOW)
    assertRefusedAndClosed(s, input.status ?? 400, input.code ?? 'PORTICO_ERR_BAD_REQUEST')
    // Give a forwarded request every chance to show up before saying none did.
    await sleep(50)
    assert.deepEqual(o.origin.requests, [], 'the node received nothing: not the request, not what followed it')
  })
}

test('a head over server.maxHeaderSize: 431, the connection closes, nothing reaches the node', async (t) => {
  const o = await setup(t, { server: { maxHeaderSize: '4kb' } })
  const s = await rawSession(o.proxy.port, `GET /x HTTP/1.1\r\n${HOST}X-Big: ${'a'.repeat(5000)}\r\n\r\n${FOLLOW}`)
  assertRefusedAndClosed(s, 431, 'PORTICO_ERR_HEADERS_TOO_LARGE')
  await sleep(50)
  assert.deepEqual(o.origin.requests, [])
})

// --- answered by the pipeline: the connection stays in step ---------------------------------------------------

test('two Host fields: 400, the connection closes, and the request pipelined behind it is not forwarded', async (t) => {
  const o = await setup(t)
  const s = await rawSession(o.proxy.port, `GET /x HTTP/1.1\r\n${HOST}Host: b.test\r\n\r\n${FOLLOW}`)
  assertRefusedAndClosed(s, 400, 'PORTICO_ERR_BAD_REQUEST')
  await sleep(100)
  assert.deepEqual(o.origin.requests, [])
})

test('a request line without a version (HTTP/0.9 to Node) or with a fragment: 400, closed, nothing forwarded', async (t) => {
  const o = await setup(t)
  for (const line of ['GET /x', 'GET /a#b HTTP/1.1']) {
    const s = await rawSession(o.proxy.port, `${line}\r\n${HOST}\r\n${FOLLOW}`)
    assertRefusedAndClosed(s, 400, 'PORTICO_ERR_BAD_REQUEST')
  }
  await sleep(100)
  assert.deepEqual(o.origin.requests, [])
})

test('an absolute-form target for a host no route serves: 404, never forwarded, the next request answered', async (t) => {
  const o = await setup(t)
  // Host names the served host; the target's authority wins (RFC 9112 §3.2.2) and is not served.
  const s = await rawSession(o.proxy.port, `GET http://evil.test/secret HTTP/1.1\r\n${HOST}\r\n${FOLLOW}`, { responses: 2 })
  assert.equal(s.responses.length, 2, show(s))
  assertAnswer(s.responses[0], 404, 'PORTICO_ERR_NO_ROUTE')
  assertFollowAnswered(s.responses[1])
  assert.equal(s.rest, '')
  assertOnlyFollowForwarded(o)
})

// --- accepted: exactly one clean request per request --------------------------------------------------------------

test('Content-Length: 0 then "GET /smuggled": two requests, each forwarded on its own and answered in order', async (t) => {
  const o = await setup(t)
  const s = await rawSession(o.proxy.port, `POST /x HTTP/1.1\r\n${HOST}Content-Length: 0\r\n\r\n${SMUGGLED}`, { responses: 2 })
  assert.equal(s.responses.length, 2, show(s))
  assert.deepEqual(s.responses.map((r) => [r.status, r.body]), [[200, 'POST /x []'], [200, 'GET /smuggled []']])
  assert.equal(s.rest, '')
  // The node sees the second request as a request of its own, never as bytes of the first one's body.
  assert.deepEqual(o.origin.requests.map((r) => `${r.method} ${r.url}`).sort(), ['GET /smuggled', 'POST /x'])
  const post = o.origin.requests.findIndex((r) => r.method === 'POST')
  assert.equal(o.origin.requests[post].headers['content-length'], '0')
  assert.equal(o.origin.requests[post].headers['transfer-encoding'], undefined)
  assert.deepEqual(o.seen[post], { body: '', complete: true, aborted: false })
})

test('a request inside a Content-Length body stays body bytes: one request reaches the node', async (t) => {
  const o = await setup(t)
  const s = await rawSession(o.proxy.port, `GET /x HTTP/1.1\r\n${HOST}Content-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}${FOLLOW}`, { responses: 2 })
  assert.equal(s.responses.length, 2, show(s))
  assert.deepEqual(s.responses.map((r) => [r.status, r.body]), [[200, `GET /x [${SMUGGLED}]`], [200, 'GET /follow []']])
  assert.deepEqual(o.origin.requests.map((r) => `${r.method} ${r.url}`).sort(), ['GET /follow', 'GET /x'])
  const x = o.origin.requests.findIndex((r) => r.url === '/x')
  assert.equal(o.origin.requests[x].headers['content-length'], String(SMUGGLED.length))
  assert.deepEqual(o.seen[x], { body: SMUGGLED, complete: true, aborted: false })
})

test('valid chunk extensions end at the proxy: the node gets the body alone, the next request its answer', async (t) => {
  const o = await setup(t)
  // Twenty chunks of one byte, each with a 1000-byte extension: under Node's per-chunk extension limit.
  const chunks = Array.from({ length: 20 }, (_v, i) => `1;ext${i}="${'e'.repeat(990)}"\r\nx\r\n`).join('')
  const s = await rawSession(o.proxy.port, `POST /x HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n${chunks}0\r\n\r\n${FOLLOW}`, { responses: 2 })
  assert.equal(s.responses.length, 2, show(s))
  const body = `hello${'x'.repeat(20)}`
  assert.deepEqual(s.responses.map((r) => [r.status, r.body]), [[200, `POST /x [${body}]`], [200, 'GET /follow []']])
  assert.deepEqual(o.origin.requests.map((r) => `${r.method} ${r.url}`).sort(), ['GET /follow', 'POST /x'])
  const post = o.origin.requests.findIndex((r) => r.method === 'POST')
  assert.deepEqual(o.seen[post], { body, complete: true, aborted: false })
  // The client's framing is not the node's: one framing header, set by Portico's upstream client.
  const h = o.origin.requests[post].headers
  assert.equal((h['content-length'] === undefined) !== (h['transfer-encoding'] === undefined), true, 'exactly one of Content-Length and Transfer-Encoding')
})

// --- limits.maxRequestBody ------------------------------------------------------------------------------------

test('a declared Content-Length over limits.maxRequestBody: 413, the connection closes, the node receives nothing', async (t) => {
  const o = await setup(t, { limits: { maxRequestBody: 10 } })
  const s = await rawSession(o.proxy.port, `POST /x HTTP/1.1\r\n${HOST}Content-Length: 20\r\n\r\n${'b'.repeat(20)}`)
  assertRefusedAndClosed(s, 413, 'PORTICO_ERR_BODY_TOO_LARGE')
  await sleep(50)
  assert.deepEqual(o.origin.requests, [])
})

test('a chunked body passing limits.maxRequestBody mid-stream: 413, closed, the node sees an aborted request it never completes', async (t) => {
  const o = await setup(t, { limits: { maxRequestBody: 10 } })
  const s = await rawSession(o.proxy.port, [
    `POST /x HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n`,
    // The first 5 bytes (under the limit) stream to the node before the rest is sent.
    () => eventually('the node receives the first chunk', () => o.seen[0]?.body === 'hello'),
    `a\r\n${'b'.repeat(10)}\r\n0\r\n\r\n`
  ], { ms: 8000 })
  assertRefusedAndClosed(s, 413, 'PORTICO_ERR_BODY_TOO_LARGE')
  await eventually('the node sees the request aborted', () => o.seen[0]?.aborted === true)
  assert.equal(o.origin.requests.length, 1)
  assert.equal(o.origin.requests[0].url, '/x')
  // Only the bytes under the limit ever reached the node, and its request never completed.
  assert.deepEqual(o.seen, [{ body: 'hello', complete: false, aborted: true }])
})

// --- found by these tests, closed since ---------------------------------------------------------------------------

test('a request pipelined behind a body refused with 413 (Connection: close) is never forwarded (RFC 9112 §9.6)', async (t) => {
  const o = await setup(t, { limits: { maxRequestBody: 10 } })
  // A pooled upstream connection is ready, as on any busy proxy.
  const warm = await rawSession(o.proxy.port, `GET /warm HTTP/1.1\r\n${HOST}Connection: close\r\n\r\n`)
  assert.equal(warm.responses[0]?.status, 200)
  const s = await rawSession(o.proxy.port, `POST /x HTTP/1.1\r\n${HOST}Content-Length: 20\r\n\r\n${'b'.repeat(20)}${FOLLOW}`)
  assertRefusedAndClosed(s, 413, 'PORTICO_ERR_BODY_TOO_LARGE')
  await sleep(100)
  assert.deepEqual(o.origin.requests.map((r) => r.url), ['/warm'], 'nothing after the 413 reaches the node')
})

test('Transfer-Encoding: gzip, chunked is refused (501, RFC 9112 §6.1) rather than forwarded with the gzip coding dropped', async (t) => {
  const o = await setup(t)
  const gz = gzipSync('hello').toString('latin1')
  const s = await rawSession(o.proxy.port, `POST /x HTTP/1.1\r\n${HOST}Transfer-Encoding: gzip, chunked\r\n\r\n${gz.length.toString(16)}\r\n${gz}\r\n0\r\n\r\n`, { responses: 1 })
  assert.equal(s.responses.length, 1, show(s))
  assert.equal(s.responses[0].status, 501, show(s))
  assert.match(s.responses[0].body, /PORTICO_ERR_UNSUPPORTED_TRANSFER_CODING/)
  await sleep(50)
  assert.deepEqual(o.origin.requests, [])
})
