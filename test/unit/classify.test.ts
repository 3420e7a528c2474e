/**
 * Foreign errors onto registry codes (src/classify.ts), and the registry itself (src/errors.ts): the one table that
 * statuses, Proxy-Status and retries are read from.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { classifyClientError, classifyUpstreamError, isRenegotiationAttempt } from '../../src/classify.js'
import { ERRORS, ProxyError, isProxyError, type ErrorCode } from '../../src/errors.js'

const coded = (code: string, extra: object = {}): Error => Object.assign(new Error(`failed: ${code}`), { code }, extra)

test('Node and undici error codes map onto registry codes, keeping the foreign error as cause', () => {
  const table: [string, ErrorCode][] = [
    ['ECONNREFUSED', 'PORTICO_ERR_UPSTREAM_REFUSED'], ['ENOTFOUND', 'PORTICO_ERR_UPSTREAM_DNS'], ['EAI_AGAIN', 'PORTICO_ERR_UPSTREAM_DNS'],
    ['EHOSTUNREACH', 'PORTICO_ERR_UPSTREAM_UNREACHABLE'], ['ENETUNREACH', 'PORTICO_ERR_UPSTREAM_UNREACHABLE'],
    ['UND_ERR_CONNECT_TIMEOUT', 'PORTICO_ERR_UPSTREAM_CONNECT_TIMEOUT'], ['ETIMEDOUT', 'PORTICO_ERR_UPSTREAM_CONNECT_TIMEOUT'],
    ['UND_ERR_HEADERS_TIMEOUT', 'PORTICO_ERR_UPSTREAM_TIMEOUT'], ['UND_ERR_BODY_TIMEOUT', 'PORTICO_ERR_UPSTREAM_IDLE_TIMEOUT'],
    ['ECONNRESET', 'PORTICO_ERR_UPSTREAM_RESET'], ['EPIPE', 'PORTICO_ERR_UPSTREAM_RESET'], ['UND_ERR_SOCKET', 'PORTICO_ERR_UPSTREAM_RESET'],
    ['UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'PORTICO_ERR_UPSTREAM_PROTOCOL'], ['HPE_INVALID_CHUNK_SIZE', 'PORTICO_ERR_UPSTREAM_PROTOCOL'],
    ['ERR_TLS_CERT_ALTNAME_INVALID', 'PORTICO_ERR_UPSTREAM_TLS'], ['ERR_SSL_WRONG_VERSION_NUMBER', 'PORTICO_ERR_UPSTREAM_TLS'],
    ['CERT_HAS_EXPIRED', 'PORTICO_ERR_UPSTREAM_TLS'], ['DEPTH_ZERO_SELF_SIGNED_CERT', 'PORTICO_ERR_UPSTREAM_TLS'], ['HOSTNAME_MISMATCH', 'PORTICO_ERR_UPSTREAM_TLS']
  ]
  for (const [code, expected] of table) {
    const foreign = coded(code)
    const e = classifyUpstreamError(foreign)
    assert.equal(e.code, expected, code)
    assert.equal(e.cause, foreign, code)
    assert.equal(e.status, ERRORS[expected].status, code)
  }
})

test('an undici HTTPParserError by name is a protocol error; a code hidden in `cause` is found', () => {
  assert.equal(classifyUpstreamError(Object.assign(new Error('bad'), { name: 'HTTPParserError' })).code, 'PORTICO_ERR_UPSTREAM_PROTOCOL')
  assert.equal(classifyUpstreamError(new Error('fetch failed', { cause: coded('ECONNREFUSED') })).code, 'PORTICO_ERR_UPSTREAM_REFUSED')
})

test('a ProxyError passes through as it is; anything unknown is INTERNAL', () => {
  const p = new ProxyError('PORTICO_ERR_HANDLER_FAILED')
  assert.equal(classifyUpstreamError(p), p)
  assert.equal(classifyUpstreamError(coded('EWHATEVER')).code, 'PORTICO_ERR_INTERNAL')
  assert.equal(classifyUpstreamError('a string').code, 'PORTICO_ERR_INTERNAL')
  assert.equal(classifyUpstreamError(null).code, 'PORTICO_ERR_INTERNAL')
})

test('client errors: 431 for a head too large, 408 too slow, 400 otherwise, nothing for a reset', () => {
  assert.equal(classifyClientError(coded('HPE_HEADER_OVERFLOW'))?.code, 'PORTICO_ERR_HEADERS_TOO_LARGE')
  assert.equal(classifyClientError(coded('HPE_HEADER_OVERFLOW'))?.status, 431)
  assert.equal(classifyClientError(coded('ERR_HTTP_REQUEST_TIMEOUT'))?.status, 408)
  assert.equal(classifyClientError(coded('HPE_INVALID_METHOD'))?.code, 'PORTICO_ERR_BAD_REQUEST')
  assert.equal(classifyClientError(new Error('no code'))?.status, 400)
  assert.equal(classifyClientError(coded('ECONNRESET')), null)
  assert.equal(isRenegotiationAttempt(coded('ERR_TLS_RENEGOTIATION_DISABLED')), true)
  assert.equal(isRenegotiationAttempt(coded('ECONNRESET')), false)
})

test('the registry: codes, statuses, Proxy-Status types and retry rules are consistent', () => {
  for (const [code, spec] of Object.entries(ERRORS)) {
    assert.match(code, /^PORTICO_ERR_[A-Z_]+$/)
    assert.ok((spec.status >= 400 && spec.status < 600) || spec.status === 499, code)
    assert.ok(['any', 'idempotent', 'never'].includes(spec.retry), code)
    if (spec.retry !== 'never') assert.equal(spec.source, 'upstream', `${code}: only upstream failures are retried`)
    assert.match(spec.proxyStatus, /^[a-z_]+$/, code)
  }
  for (const code of ['REFUSED', 'DNS', 'UNREACHABLE', 'CONNECT_TIMEOUT', 'TLS'] as const) {
    assert.equal(ERRORS[`PORTICO_ERR_UPSTREAM_${code}`].retry, 'any', `${code}: the connection never formed`)
  }
  assert.equal(ERRORS.PORTICO_ERR_UPSTREAM_RESET.retry, 'idempotent', 'the node may have seen the request')
  assert.equal(ERRORS.PORTICO_ERR_UPSTREAM_TIMEOUT.retry, 'idempotent', 'a slow node may have seen it too (retried only when retry.on names timeout)')
  assert.equal(ERRORS.PORTICO_ERR_UPSTREAM_IDLE_TIMEOUT.retry, 'never', 'the response had started')
  // Every retryable failure names the retry.on condition that lets a pool retry it.
  for (const [code, spec] of Object.entries(ERRORS) as [string, { retry: string, condition?: string }][]) {
    assert.equal(spec.retry !== 'never', spec.condition !== undefined, code)
  }
  assert.equal(ERRORS.PORTICO_ERR_UPSTREAM_REFUSED.condition, 'connect-failure')
  assert.equal(ERRORS.PORTICO_ERR_UPSTREAM_RESET.condition, 'reset')
  assert.equal(ERRORS.PORTICO_ERR_UPSTREAM_TIMEOUT.condition, 'timeout')
})

test('ProxyError carries its registry entry; isProxyError recognises a copy from another realm', () => {
  const cause = new Error('x')
  const e = new ProxyError('PORTICO_ERR_UPSTREAM_RESET', undefined, { cause })
  assert.deepEqual([e.status, e.source, e.retry, e.retryable, e.proxyStatus, e.cause], [502, 'upstream', 'idempotent', true, 'connection_terminated', cause])
  assert.equal(e.message, ERRORS.PORTICO_ERR_UPSTREAM_RESET.description)
  assert.equal(new ProxyError('PORTICO_ERR_NO_ROUTE').retryable, false)
  assert.equal(isProxyError({ name: 'ProxyError', code: 'PORTICO_ERR_NO_ROUTE' }), true)
  assert.equal(isProxyError({ name: 'ProxyError', code: 'NOPE' }), false)
  assert.equal(isProxyError(new Error('x')), false)
})
