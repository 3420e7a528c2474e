/**
 * How a failure looks to the client (src/error-response.ts): one rendering, written on a ServerResponse or as raw
 * bytes on a socket.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ALLOWED_METHODS, errorAnswer, rawErrorResponse, rawHead } from '../../src/error-response.js'
import { ProxyError } from '../../src/errors.js'

const field = (flat: string[], name: string): string | undefined => {
  for (let i = 0; i < flat.length; i += 2) if (flat[i] === name) return flat[i + 1]
  return undefined
}

test('an error answer: short text naming status, code and request id, with RFC 9209 Proxy-Status', () => {
  const a = errorAnswer(new ProxyError('PORTICO_ERR_UPSTREAM_REFUSED'), 'abc-1')
  assert.equal(a.status, 502)
  assert.equal(a.body, '502 Bad Gateway\nPORTICO_ERR_UPSTREAM_REFUSED\nrequest id: abc-1\n')
  assert.equal(field(a.headers, 'proxy-status'), 'portico; error=connection_refused; details="PORTICO_ERR_UPSTREAM_REFUSED"')
  assert.equal(field(a.headers, 'x-request-id'), 'abc-1')
  assert.equal(field(a.headers, 'cache-control'), 'no-store')
  assert.equal(field(a.headers, 'content-type'), 'text/plain; charset=utf-8')
  assert.equal(field(a.headers, 'content-length'), String(Buffer.byteLength(a.body)))
  assert.equal(field(a.headers, 'allow'), undefined)
  assert.equal(field(a.headers, 'cache-status'), undefined)
})

test('499 (client gone) is never sent: rendered as 400; 405 carries Allow (RFC 9110 §15.5.6); Cache-Status when given', () => {
  assert.equal(errorAnswer(new ProxyError('PORTICO_ERR_CLIENT_ABORTED'), 'x').status, 400)
  assert.equal(field(errorAnswer(new ProxyError('PORTICO_ERR_METHOD_NOT_ALLOWED'), 'x').headers, 'allow'), ALLOWED_METHODS)
  assert.equal(field(errorAnswer(new ProxyError('PORTICO_ERR_NOT_CACHED'), 'x', 'Portico; fwd=miss').headers, 'cache-status'), 'Portico; fwd=miss')
})

test('the raw form is a whole HTTP/1.1 response that closes the connection', () => {
  const raw = rawErrorResponse(new ProxyError('PORTICO_ERR_HEADERS_TOO_LARGE'), 'r-2')
  const [head, body] = raw.split('\r\n\r\n')
  const lines = head.split('\r\n')
  assert.equal(lines[0], 'HTTP/1.1 431 Request Header Fields Too Large')
  const fields = Object.fromEntries(lines.slice(1).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]))
  assert.equal(fields.connection, 'close')
  assert.equal(Number(fields['content-length']), Buffer.byteLength(body))
  assert.match(body, /PORTICO_ERR_HEADERS_TOO_LARGE/)
})

test('rawHead: a status line (reason from the status when none is given) and field lines, unterminated', () => {
  assert.equal(rawHead(404, '', ['a', '1', 'b', '2']), 'HTTP/1.1 404 Not Found\r\na: 1\r\nb: 2\r\n')
  assert.equal(rawHead(200, 'Fine', []), 'HTTP/1.1 200 Fine\r\n')
})
