/**
 * The error registry: every failure Portico can answer with has a stable `PORTICO_ERR_*` code, an HTTP
 * status, a source and a retry rule. `ProxyError` carries one of these codes plus the foreign error as
 * `cause`. Mapping Node/undici errors onto codes is `classify.ts`'s job; rendering an error as a response is
 * `error-response.ts`'s; deciding a retry from the rule is the pool's.
 *
 * Status rule: 503 when no upstream was tried, 502 when one was tried and failed, 504 when it was too
 * slow, 499 (log only) when the client went away.
 */

/** Where a failure came from. */
export type ErrorSource = 'downstream' | 'upstream' | 'internal' | 'config'

/**
 * Whether a failed attempt may be made again on another node, and for which requests:
 * - `any`: nothing of the request reached the node (the connection never formed). Any request whose body was not
 *   read yet may go elsewhere, and the node is skipped for a while (passive health).
 * - `idempotent`: the node may have seen the request. Only a request with an idempotent method (RFC 9110 §9.2.2)
 *   and no body may be sent again.
 * - `never`: another attempt would not help, or could repeat a side effect.
 */
export type RetryRule = 'any' | 'idempotent' | 'never'

/** The name a pool's `retry.on` (and passive health) gives a retryable failure (docs/balancing.md). */
export type RetryCondition = 'connect-failure' | 'reset' | 'timeout'

/** One registry entry. */
export interface ErrorSpec {
  /** HTTP status sent downstream (499 is never sent: the client is gone). */
  readonly status: number
  readonly source: ErrorSource
  /** When another attempt, on another node, may be made (see RetryRule). */
  readonly retry: RetryRule
  /** Which `retry.on` condition this failure is, for a retryable one. */
  readonly condition?: RetryCondition
  /** RFC 9209 §2.3 error type for the `Proxy-Status` header. */
  readonly proxyStatus: string
  /** One line for docs/errors.md. */
  readonly description: string
}

/** The registry. Codes are never renamed once shipped; docs/errors.md is checked against this by a test. */
export const ERRORS = {
  PORTICO_ERR_NO_ROUTE: {
    status: 404, source: 'downstream', retry: 'never', proxyStatus: 'destination_not_found',
    description: 'No route matches the request host and path; nothing was forwarded.'
  },
  PORTICO_ERR_BAD_REQUEST: {
    status: 400, source: 'downstream', retry: 'never', proxyStatus: 'http_request_error',
    description: 'The request is malformed (bad request line, duplicate Host, invalid target).'
  },
  PORTICO_ERR_METHOD_NOT_ALLOWED: {
    status: 405, source: 'downstream', retry: 'never', proxyStatus: 'http_request_denied',
    description: 'CONNECT and other forward-proxy uses are refused: Portico is never an open proxy.'
  },
  PORTICO_ERR_HEADERS_TOO_LARGE: {
    status: 431, source: 'downstream', retry: 'never', proxyStatus: 'http_request_error',
    description: 'The request header section exceeds server.maxHeaderSize.'
  },
  PORTICO_ERR_BODY_TOO_LARGE: {
    status: 413, source: 'downstream', retry: 'never', proxyStatus: 'http_request_denied',
    description: 'The request body exceeds limits.maxRequestBody.'
  },
  PORTICO_ERR_UNSUPPORTED_TRANSFER_CODING: {
    status: 501, source: 'downstream', retry: 'never', proxyStatus: 'http_request_error',
    description: 'The request uses a transfer coding other than chunked (RFC 9112 §6.1); it is refused, never forwarded with the coding dropped.'
  },
  PORTICO_ERR_FORBIDDEN: {
    status: 403, source: 'downstream', retry: 'never', proxyStatus: 'http_request_denied',
    description: 'The client address is refused by the route\'s deny or not in its allow list.'
  },
  PORTICO_ERR_UNAUTHORIZED: {
    status: 401, source: 'downstream', retry: 'never', proxyStatus: 'http_request_denied',
    description: 'The route needs basicAuth credentials and the request has none or wrong ones; answered with WWW-Authenticate.'
  },
  PORTICO_ERR_RATE_LIMITED: {
    status: 429, source: 'downstream', retry: 'never', proxyStatus: 'http_request_denied',
    description: 'The client is over the route\'s rateLimit (or maxInFlight); answered with Retry-After and the RateLimit fields.'
  },
  PORTICO_ERR_FORWARD_AUTH: {
    status: 502, source: 'upstream', retry: 'never', proxyStatus: 'destination_unavailable',
    description: 'The forwardAuth service could not be asked (refused, reset, timed out); nothing was forwarded to the node.'
  },
  PORTICO_ERR_REQUEST_TIMEOUT: {
    status: 408, source: 'downstream', retry: 'never', proxyStatus: 'http_request_error',
    description: 'The client did not send the whole request within server.requestTimeout, or paused its body for longer than server.bodyTimeout.'
  },
  PORTICO_ERR_CLIENT_ABORTED: {
    status: 499, source: 'downstream', retry: 'never', proxyStatus: 'http_request_error',
    description: 'The client closed the connection before the response was complete (logged, never sent).'
  },
  PORTICO_ERR_UPSTREAM_REFUSED: {
    status: 502, source: 'upstream', retry: 'any', condition: 'connect-failure', proxyStatus: 'connection_refused',
    description: 'The node refused the connection.'
  },
  PORTICO_ERR_UPSTREAM_DNS: {
    status: 502, source: 'upstream', retry: 'any', condition: 'connect-failure', proxyStatus: 'dns_error',
    description: 'The node name could not be resolved.'
  },
  PORTICO_ERR_UPSTREAM_UNREACHABLE: {
    status: 502, source: 'upstream', retry: 'any', condition: 'connect-failure', proxyStatus: 'destination_unavailable',
    description: 'The node address is unreachable (no route to host, network down).'
  },
  PORTICO_ERR_UPSTREAM_CONNECT_TIMEOUT: {
    status: 504, source: 'upstream', retry: 'any', condition: 'connect-failure', proxyStatus: 'connection_timeout',
    description: 'Connecting to the node took longer than timeouts.connect.'
  },
  PORTICO_ERR_UPSTREAM_TLS: {
    status: 502, source: 'upstream', retry: 'any', condition: 'connect-failure', proxyStatus: 'tls_protocol_error',
    description: 'The TLS handshake with the node failed.'
  },
  PORTICO_ERR_UPSTREAM_RESET: {
    status: 502, source: 'upstream', retry: 'idempotent', condition: 'reset', proxyStatus: 'connection_terminated',
    description: 'The node closed or reset the connection before a complete response.'
  },
  PORTICO_ERR_UPSTREAM_PROTOCOL: {
    status: 502, source: 'upstream', retry: 'never', proxyStatus: 'http_protocol_error',
    description: 'The node sent a response that is not valid HTTP.'
  },
  PORTICO_ERR_UPSTREAM_TIMEOUT: {
    status: 504, source: 'upstream', retry: 'idempotent', condition: 'timeout', proxyStatus: 'http_response_timeout',
    description: 'The node did not send a response head within timeouts.response.'
  },
  PORTICO_ERR_UPSTREAM_IDLE_TIMEOUT: {
    status: 504, source: 'upstream', retry: 'never', proxyStatus: 'connection_read_timeout',
    description: 'The node stopped sending the response body for longer than timeouts.idle.'
  },
  PORTICO_ERR_UPSTREAM_UNAVAILABLE: {
    status: 503, source: 'upstream', retry: 'never', proxyStatus: 'destination_unavailable',
    description: 'The route has no node that can take the request.'
  },
  PORTICO_ERR_NO_HEALTHY_UPSTREAM: {
    status: 503, source: 'upstream', retry: 'never', proxyStatus: 'destination_unavailable',
    description: 'Every node of the pool is unhealthy or ejected (and panicThreshold is off); answered with Retry-After, no node was tried.'
  },
  PORTICO_ERR_UPSTREAM_OVERLOADED: {
    status: 503, source: 'upstream', retry: 'never', proxyStatus: 'connection_limit_reached',
    description: 'The pool is at maxRequests (or every node at its own limit) and its queue is full or the wait timed out; answered with Retry-After, no node was tried.'
  },
  PORTICO_ERR_HANDLER_FAILED: {
    status: 502, source: 'upstream', retry: 'never', proxyStatus: 'proxy_internal_error',
    description: 'An in-process handler threw or failed before completing its response.'
  },
  PORTICO_ERR_BODY_CONSUMED: {
    status: 500, source: 'internal', retry: 'never', proxyStatus: 'proxy_configuration_error',
    description: 'Embedded after a body parser that consumed the request body and kept neither req.rawBody nor a re-serialisable req.body; mount the proxy before the parser.'
  },
  PORTICO_ERR_NOT_CACHED: {
    status: 504, source: 'downstream', retry: 'never', proxyStatus: 'proxy_internal_response',
    description: 'The request said Cache-Control: only-if-cached and the cache holds no response it may use (RFC 9111 §5.2.1.7).'
  },
  PORTICO_ERR_SHUTTING_DOWN: {
    status: 503, source: 'internal', retry: 'never', proxyStatus: 'proxy_internal_response',
    description: 'The proxy is closing and no longer forwards new requests.'
  },
  PORTICO_ERR_INTERNAL: {
    status: 500, source: 'internal', retry: 'never', proxyStatus: 'proxy_internal_error',
    description: 'A bug in Portico. The response carries the exchange id to find the log line.'
  },
  PORTICO_ERR_CONFIG_INVALID: {
    status: 500, source: 'config', retry: 'never', proxyStatus: 'proxy_configuration_error',
    description: 'The configuration failed validation; the proxy does not start (CLI exit status 2).'
  }
} as const satisfies Record<string, ErrorSpec>

/** A registry code. */
export type ErrorCode = keyof typeof ERRORS

/**
 * The one error type Portico throws and answers with. `code` selects the registry entry; `cause` keeps the
 * foreign error (a Node system error, an undici error) for logs.
 */
export class ProxyError extends Error {
  readonly code: ErrorCode
  readonly status: number
  readonly source: ErrorSource
  /** The registry's retry rule for this code. */
  readonly retry: RetryRule
  /** Whether another node may ever be tried after this failure (`retry` is not "never"). */
  readonly retryable: boolean
  readonly proxyStatus: string
  /** The `retry.on` condition of a retryable failure. */
  readonly condition: RetryCondition | undefined
  /** Seconds for a Retry-After field on the answer (RFC 9110 §10.2.3), when the failure has one. */
  retryAfter: number | undefined
  /** Further fields of the answer (flat [name, value, ...]): WWW-Authenticate on 401, the RateLimit fields on 429. */
  fields: string[] | undefined

  constructor (code: ErrorCode, message?: string, options?: { cause?: unknown }) {
    const spec: ErrorSpec = ERRORS[code]
    super(message ?? spec.description, options)
    this.name = 'ProxyError'
    this.code = code
    this.status = spec.status
    this.source = spec.source
    this.retry = spec.retry
    this.retryable = spec.retry !== 'never'
    this.proxyStatus = spec.proxyStatus
    this.condition = spec.condition
    this.retryAfter = undefined
    this.fields = undefined
  }
}

/** True when `err` is a ProxyError (also across realms/copies of the module). */
export function isProxyError (err: unknown): err is ProxyError {
  return err instanceof ProxyError ||
    (typeof err === 'object' && err !== null && (err as { name?: unknown }).name === 'ProxyError' &&
      typeof (err as { code?: unknown }).code === 'string' && (err as { code: string }).code in ERRORS)
}
