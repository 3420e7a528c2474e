/**
 * Maps foreign errors (Node system errors, undici errors, TLS errors) onto registry codes. This is the only
 * module that looks at `err.code` strings from Node or undici; everything else sees `ProxyError` and reads what a
 * code means (status, retry rule) from the registry.
 */
import { ProxyError, isProxyError, type ErrorCode } from './errors.js'

const BY_CODE: Record<string, ErrorCode> = {
  ECONNREFUSED: 'PORTICO_ERR_UPSTREAM_REFUSED',
  ENOTFOUND: 'PORTICO_ERR_UPSTREAM_DNS',
  EAI_AGAIN: 'PORTICO_ERR_UPSTREAM_DNS',
  EHOSTUNREACH: 'PORTICO_ERR_UPSTREAM_UNREACHABLE',
  ENETUNREACH: 'PORTICO_ERR_UPSTREAM_UNREACHABLE',
  EADDRNOTAVAIL: 'PORTICO_ERR_UPSTREAM_UNREACHABLE',
  UND_ERR_CONNECT_TIMEOUT: 'PORTICO_ERR_UPSTREAM_CONNECT_TIMEOUT',
  ETIMEDOUT: 'PORTICO_ERR_UPSTREAM_CONNECT_TIMEOUT',
  UND_ERR_HEADERS_TIMEOUT: 'PORTICO_ERR_UPSTREAM_TIMEOUT',
  UND_ERR_BODY_TIMEOUT: 'PORTICO_ERR_UPSTREAM_IDLE_TIMEOUT',
  ECONNRESET: 'PORTICO_ERR_UPSTREAM_RESET',
  EPIPE: 'PORTICO_ERR_UPSTREAM_RESET',
  UND_ERR_SOCKET: 'PORTICO_ERR_UPSTREAM_RESET',
  UND_ERR_CLOSED: 'PORTICO_ERR_UPSTREAM_RESET',
  UND_ERR_DESTROYED: 'PORTICO_ERR_UPSTREAM_RESET',
  UND_ERR_INFO: 'PORTICO_ERR_UPSTREAM_PROTOCOL',
  UND_ERR_RES_CONTENT_LENGTH_MISMATCH: 'PORTICO_ERR_UPSTREAM_PROTOCOL',
  UND_ERR_HEADERS_OVERFLOW: 'PORTICO_ERR_UPSTREAM_PROTOCOL',
  UND_ERR_RESPONSE_EXCEEDED_MAX_SIZE: 'PORTICO_ERR_UPSTREAM_PROTOCOL',
  HPE_INVALID_CONSTANT: 'PORTICO_ERR_UPSTREAM_PROTOCOL'
}

/** OpenSSL certificate verification results as Node reports them in `err.code` (tls.connect). */
const TLS_VERIFY_CODES = new Set([
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_CRL', 'UNABLE_TO_DECRYPT_CERT_SIGNATURE', 'UNABLE_TO_DECRYPT_CRL_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY', 'CERT_SIGNATURE_FAILURE', 'CRL_SIGNATURE_FAILURE', 'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED', 'CRL_NOT_YET_VALID', 'CRL_HAS_EXPIRED', 'ERROR_IN_CERT_NOT_BEFORE_FIELD', 'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'ERROR_IN_CRL_LAST_UPDATE_FIELD', 'ERROR_IN_CRL_NEXT_UPDATE_FIELD', 'OUT_OF_MEM', 'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED', 'INVALID_CA', 'PATH_LENGTH_EXCEEDED', 'INVALID_PURPOSE', 'CERT_UNTRUSTED', 'CERT_REJECTED', 'HOSTNAME_MISMATCH'
])

/**
 * Returns a ProxyError for any thrown value. ProxyErrors pass through unchanged; everything else keeps the
 * original as `cause`. Unknown errors become PORTICO_ERR_INTERNAL.
 */
export function classifyUpstreamError (err: unknown): ProxyError {
  if (isProxyError(err)) return err
  const e = err as { code?: unknown, message?: string, cause?: unknown } | null
  const code = typeof e?.code === 'string' ? e.code : ''
  let mapped: ErrorCode | undefined = BY_CODE[code]
  if (mapped === undefined) {
    if (code.startsWith('HPE_') || (e as { name?: string })?.name === 'HTTPParserError') mapped = 'PORTICO_ERR_UPSTREAM_PROTOCOL'
    else if (code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_') || TLS_VERIFY_CODES.has(code)) mapped = 'PORTICO_ERR_UPSTREAM_TLS'
    else if (e?.cause !== undefined && e.cause !== err) return classifyUpstreamError(e.cause)
    else mapped = 'PORTICO_ERR_INTERNAL'
  }
  return new ProxyError(mapped, e?.message || undefined, { cause: err })
}


/**
 * A request Node's HTTP server rejected before it reached the pipeline, as a registry error: 431 for a head over
 * `server.maxHeaderSize`, 408 for a request slower than the server timeouts, 400 for anything malformed. Null for a
 * connection the client reset: there is nobody to answer.
 */
export function classifyClientError (err: unknown): ProxyError | null {
  const code = (err as { code?: unknown } | null)?.code
  if (code === 'ECONNRESET') return null
  const mapped: ErrorCode = code === 'HPE_HEADER_OVERFLOW'
    ? 'PORTICO_ERR_HEADERS_TOO_LARGE'
    : code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'PORTICO_ERR_REQUEST_TIMEOUT' : 'PORTICO_ERR_BAD_REQUEST'
  return new ProxyError(mapped, undefined, { cause: err })
}

/** A TLS client tried to renegotiate (RFC 9325 §3.5: refused; the connection is then closed). */
export function isRenegotiationAttempt (err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 'ERR_TLS_RENEGOTIATION_DISABLED'
}
