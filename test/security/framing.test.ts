/**
 * Request framing defences (RFC 9112), proven over raw sockets: for each ambiguous or malformed input, what the client
 * gets (status, and the connection closed so nothing after it is read as a request) and what the node receives
 * (nothing, or exactly the clean requests the client sent). Portico never forwards a request whose framing it did not
 * regenerate, so a node can never be made to see a different request boundary than Portico did.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { rawExchange, startOrigin, startProxy, type Origin, type RunningProxy } from '../helpers/servers.js'

const H = 'Host: app.test\r\n'

async function setup (): Promise<{ origin: Origin, proxy: RunningProxy }> {
  const origin = await startOrigin((req, res) => {
    let n = 0
    req.on('data', (c: Buffer) => { n += c.length })
    req.on('end', () => res.end(`got ${req.method} ${req.url} ${n}`))
  })
  // One exact host and no catch-all: an absolute-form target for another host finds no route.
  const proxy = await startProxy({ upstreams: { 'app.test': [origin.url] }, limits: { maxRequestBody: '1kb' } })
  return { origin, proxy }
}

const REFUSED: [string, string, number][] = [
  ['Content-Length with Transfer-Encoding (request smuggling, RFC 9112 §6.1)', `POST / HTTP/1.1\r\n${H}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n${H}\r\n`, 400],
  ['two Content-Length values', `POST / HTTP/1.1\r\n${H}Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd`, 400],
  ['a Content-Length list', `POST / HTTP/1.1\r\n${H}Content-Length: 5, 5\r\n\r\nhello`, 400],
  ['a chunk size that is not hex', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n`, 400],
  ['a negative chunk size', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n-1\r\nabc\r\n0\r\n\r\n`, 400],
  ['a chunk size that overflows', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nabc\r\n0\r\n\r\n`, 400],
  ['a 20 KB chunk extension', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3;${'x'.repeat(20000)}\r\nabc\r\n0\r\n\r\n`, 400],
  ['bare LF line endings', `GET / HTTP/1.1\n${H.replace('\r\n', '\n')}\n`, 400],
  ['obs-fold', `GET / HTTP/1.1\r\n${H}X-A: a\r\n b\r\n\r\n`, 400],
  ['NUL in a field value', `GET / HTTP/1.1\r\n${H}X-A: a\0b\r\n\r\n`, 400],
  ['whitespace before the colon', 'GET / HTTP/1.1\r\nHost : app.test\r\n\r\n', 400],
  ['two Host fields', `GET / HTTP/1.1\r\n${H}Host: other.test\r\n\r\n`, 400],
  ['Transfer-Encoding: chunked, identity', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n`, 400],
  ['Transfer-Encoding: xchunked', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n`, 400],
  ['a request line without a version (HTTP/0.9)', `GET /x\r\n${H}\r\n`, 400],
  ['an absolute-form target for a host no route serves', 'GET http://evil.test/ HTTP/1.1\r\nHost: evil.test\r\n\r\n', 404],
  ['a head over server.maxHeaderSize', `GET / HTTP/1.1\r\n${H}X-Big: ${'a'.repeat(20000)}\r\n\r\n`, 431],
  ['a declared body over limits.maxRequestBody', `POST / HTTP/1.1\r\n${H}Content-Length: 5000\r\n\r\n${'a'.repeat(5000)}`, 413],
  ['a fragment in the target', `GET /a#b HTTP/1.1\r\n${H}\r\n`, 400]
]

for (const [what, input, status] of REFUSED) {
  test(`refused: ${what} → ${status}, nothing reaches the node, nothing after it is read`, async (t) => {
    const { origin, proxy } = await setup()
    t.after(() => Promise.all([proxy.close(), origin.close()]))
    // A valid request follows on the same connection: it must not be answered as if the framing had been understood.
    const reply = await rawExchange(proxy.port, `${input}GET /after HTTP/1.1\r\n${H}\r\n`, { endAfterMs: 500 })
    assert.match(reply, new RegExp(`^HTTP/1\\.1 ${status} `), reply.slice(0, 80))
    const answers = (reply.match(/HTTP\/1\.1 (\d{3}) /g) ?? []).map((l) => Number(l.slice(9, 12)))
    if (status === 404) assert.deepEqual(answers, [404, 200], 'a routing miss, then the next request as sent')
    // Nothing after a refusal is served: the connection ends with it (Node's parser may refuse the rest once more).
    else assert.ok(answers.every((a) => a >= 400), `only refusals: ${answers.join(' ')}`)
    if (status !== 404) assert.match(reply, /connection: close/i)
    assert.deepEqual(origin.requests.map((r) => `${r.method} ${r.url}`), status === 404 ? ['GET /after'] : [])
  })
}

test('a second request after a zero-length body is an ordinary pipelined request: both answered, in order, each clean', async (t) => {
  const { origin, proxy } = await setup()
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  const reply = await rawExchange(proxy.port, `POST /first HTTP/1.1\r\n${H}Content-Length: 0\r\n\r\nGET /second HTTP/1.1\r\n${H}Connection: close\r\n\r\n`)
  assert.deepEqual(reply.match(/got [A-Z]+ \/\w+ \d+/g), ['got POST /first 0', 'got GET /second 0'])
  assert.deepEqual(origin.requests.map((r) => `${r.method} ${r.url}`).sort(), ['GET /second', 'POST /first'])
  for (const r of origin.requests) {
    assert.match(String(r.headers.via), /portico/, 'each re-framed by Portico')
    assert.equal(r.headers['transfer-encoding'], undefined)
  }
})

test('a chunked body is re-framed: the node gets the same bytes, never the client\'s chunk extensions or trailers verbatim', async (t) => {
  const { origin, proxy } = await setup()
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  const reply = await rawExchange(proxy.port, `POST /c HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\n\r\n`)
  assert.match(reply, /got POST \/c 5$/)
  assert.equal(origin.requests.length, 1)
})
