/**
 * Answers Portico makes before a request reaches the pipeline go through the error registry like every other failure:
 * a malformed head (400), a head too large (431), CONNECT (405, with Allow), and a redirect listener's request
 * without a valid Host (400) — each with its PORTICO_ERR_* code, Proxy-Status and X-Request-Id. (A request too slow
 * takes the same path with 408; which Node error maps to it is unit-tested in classify.test.ts, because Node checks
 * its request timeouts only every 30 s.)
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import http2 from 'node:http2'
import { createProxy } from '../../src/index.js'
import { rawExchange, startProxy } from '../helpers/servers.js'
import { testCert } from '../helpers/tls.js'

function field (response: string, name: string): string | undefined {
  const head = response.split('\r\n\r\n')[0]
  for (const line of head.split('\r\n').slice(1)) {
    const colon = line.indexOf(':')
    if (line.slice(0, colon).toLowerCase() === name) return line.slice(colon + 1).trim()
  }
  return undefined
}

function assertRegistryAnswer (response: string, status: number, code: string, proxyStatus: string): void {
  assert.match(response, new RegExp(`^HTTP/1\\.1 ${status} `))
  assert.equal(field(response, 'proxy-status'), `portico; error=${proxyStatus}; details="${code}"`)
  assert.match(field(response, 'x-request-id') ?? '', /^[0-9a-f]{8}-[0-9a-z]+$/)
  assert.equal(field(response, 'connection'), 'close')
  assert.ok(response.includes(`\n${code}\n`), `the body names ${code}`)
}

test('a head larger than server.maxHeaderSize: 431 PORTICO_ERR_HEADERS_TOO_LARGE', async (t) => {
  const proxy = await startProxy({ upstreams: { '*': ['http://127.0.0.1:1'] }, server: { maxHeaderSize: '4kb' } })
  t.after(() => proxy.close())
  const r = await rawExchange(proxy.port, `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(8000)}\r\n\r\n`)
  assertRegistryAnswer(r, 431, 'PORTICO_ERR_HEADERS_TOO_LARGE', 'http_request_error')
})

test('a malformed request line: 400 PORTICO_ERR_BAD_REQUEST', async (t) => {
  const proxy = await startProxy({ upstreams: { '*': ['http://127.0.0.1:1'] } })
  t.after(() => proxy.close())
  const r = await rawExchange(proxy.port, 'GET / HTTP/1.1 extra\r\nHost: a\r\n\r\n')
  assertRegistryAnswer(r, 400, 'PORTICO_ERR_BAD_REQUEST', 'http_request_error')
})

test('CONNECT over HTTP/1.1: 405 PORTICO_ERR_METHOD_NOT_ALLOWED with Allow (RFC 9110 §15.5.6)', async (t) => {
  const proxy = await startProxy({ upstreams: { '*': ['http://127.0.0.1:1'] } })
  t.after(() => proxy.close())
  const r = await rawExchange(proxy.port, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n')
  assertRegistryAnswer(r, 405, 'PORTICO_ERR_METHOD_NOT_ALLOWED', 'http_request_denied')
  assert.equal(field(r, 'allow'), 'GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH')
})

test('CONNECT over HTTP/2: the same 405 from the same registry entry', async (t) => {
  const cert = await testCert(['h2.test'])
  const proxy = createProxy({
    listen: [{ host: '127.0.0.1', port: 0, tls: true }],
    tls: { certificates: [{ hosts: ['h2.test'], cert: cert.certFile, key: cert.keyFile }] },
    upstreams: { '*': ['http://127.0.0.1:1'] },
    log: { access: false }
  })
  const [addr] = await proxy.listen()
  t.after(() => proxy.close({ drainTimeout: 500 }))
  const session = http2.connect(addr.url, { ca: cert.cert, servername: 'h2.test' })
  t.after(() => session.close())
  const stream = session.request({ ':method': 'CONNECT', ':authority': 'example.com:443' })
  const [headers] = await new Promise<[http2.IncomingHttpHeaders]>((resolve, reject) => {
    stream.once('response', (h) => resolve([h]))
    stream.once('error', reject)
  })
  stream.resume()
  assert.equal(headers[':status'], 405)
  assert.equal(headers['proxy-status'], 'portico; error=http_request_denied; details="PORTICO_ERR_METHOD_NOT_ALLOWED"')
  assert.equal(headers.allow, 'GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH')
})

test('a redirect listener asked without a valid Host: 400 PORTICO_ERR_BAD_REQUEST', async (t) => {
  const proxy = createProxy({ listen: [{ host: '127.0.0.1', port: 0, redirectToHttps: true }], upstreams: { '*': ['http://127.0.0.1:1'] } })
  const [addr] = await proxy.listen()
  t.after(() => proxy.close({ drainTimeout: 500 }))
  const r = await rawExchange(addr.port, 'GET /x HTTP/1.0\r\n\r\n')
  assert.match(r, /^HTTP\/1\.1 400 /)
  assert.equal(field(r, 'proxy-status'), 'portico; error=http_request_error; details="PORTICO_ERR_BAD_REQUEST"')
  const ok = await rawExchange(addr.port, 'GET /x?y HTTP/1.1\r\nHost: Example.COM:8080\r\n\r\n', { endAfterMs: 500 })
  assert.match(ok, /^HTTP\/1\.1 308 /)
  assert.equal(field(ok, 'location'), 'https://example.com/x?y')
})
