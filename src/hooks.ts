/**
 * Hooks for embedders: typed callbacks at the pipeline's phases, for requests and upgrade handshakes alike. On the
 * way in (`onRequest`, `onUpstreamRequest`) they run in registration order; on the way out (`onUpstreamResponse`,
 * `onError`, `onResponse`) in reverse, as Envoy filters do. This module compiles them and runs each phase; the
 * exchanges decide when. A proxy without hooks pays nothing for them: callers check one field and allocate no
 * wrappers.
 */
import type { IncomingMessage } from 'node:http'
import { ProxyError } from './errors.js'
import type { AccessRecord } from './observability/access-log.js'
import type { Logger } from './observability/logger.js'
import { HeaderList } from './http/fields.js'

export { HeaderList } from './http/fields.js'

/** What every hook sees of the exchange. */
export interface HookContext {
  /** The exchange id (also `X-Request-Id` on error responses and `reqId` in the access log). */
  readonly id: string
  /** The client's request (read-only by convention: edit the upstream request in `onUpstreamRequest`). */
  readonly req: IncomingMessage
  /** The route name ("host+path"), or null before routing succeeded. */
  readonly route: string | null
  /** The normalized request host. */
  readonly host: string
  /**
   * The client's address: the socket's peer, or behind a trusted proxy (`trustedProxies`) the right-most untrusted
   * address of its X-Forwarded-For chain. What the access log, the hash policy and IP rules use.
   */
  readonly clientAddress: string | undefined
}

/** A response a hook answers with instead of forwarding. */
export interface HookAnswer {
  status: number
  headers?: Record<string, string | string[]>
  body?: string | Buffer
}

/** The upstream request as `onUpstreamRequest` may edit it. */
export interface UpstreamRequestHead {
  readonly method: string
  /** Origin-form target sent to the node (after stripPrefix). */
  path: string
  headers: HeaderList
}

/** The upstream response head as `onUpstreamResponse` may edit it (before anything is sent to the client). */
export interface UpstreamResponseHead {
  status: number
  headers: HeaderList
}

/** The hooks. Every one is optional. */
export interface ProxyHooks {
  /** After routing, before anything is forwarded. Return (or resolve) an answer to respond without forwarding. */
  onRequest? (ctx: HookContext): HookAnswer | undefined | void | Promise<HookAnswer | undefined | void>
  /** Edit the request going upstream: path and headers. */
  onUpstreamRequest? (ctx: HookContext, request: UpstreamRequestHead): void
  /** Edit the response head from the node before it is sent on. */
  onUpstreamResponse? (ctx: HookContext, response: UpstreamResponseHead): void
  /** An error is about to become an error response: return an answer to send that instead. */
  onError? (ctx: HookContext, error: ProxyError): HookAnswer | undefined | void
  /** The exchange is over (the access-log record, whether or not the access log is on). */
  onResponse? (ctx: HookContext, record: AccessRecord): void
}

/** Hooks grouped per phase, already in the order they run. */
export interface CompiledHooks {
  onRequest: NonNullable<ProxyHooks['onRequest']>[]
  onUpstreamRequest: NonNullable<ProxyHooks['onUpstreamRequest']>[]
  onUpstreamResponse: NonNullable<ProxyHooks['onUpstreamResponse']>[]
  onError: NonNullable<ProxyHooks['onError']>[]
  onResponse: NonNullable<ProxyHooks['onResponse']>[]
}

/** Groups hooks per phase: inbound phases in registration order, outbound in reverse. Null when there are none. */
export function compileHooks (hooks: ProxyHooks | ProxyHooks[] | undefined): CompiledHooks | null {
  const list = hooks === undefined ? [] : Array.isArray(hooks) ? hooks : [hooks]
  if (list.length === 0) return null
  const pick = <K extends keyof ProxyHooks>(k: K, reverse: boolean): NonNullable<ProxyHooks[K]>[] => {
    const fns = list.map((h) => h[k]?.bind(h)).filter((f): f is NonNullable<ProxyHooks[K]> => typeof f === 'function')
    return reverse ? fns.reverse() : fns
  }
  return {
    onRequest: pick('onRequest', false),
    onUpstreamRequest: pick('onUpstreamRequest', false),
    onUpstreamResponse: pick('onUpstreamResponse', true),
    onError: pick('onError', true),
    onResponse: pick('onResponse', true)
  }
}

/**
 * A hook's answer as a head and a body: repeated values kept as repeated fields, and Content-Length added when the
 * hook gave a body without one.
 */
export function answerParts (answer: HookAnswer): { headers: string[], body: Buffer | undefined } {
  const body = answer.body === undefined ? undefined : Buffer.isBuffer(answer.body) ? answer.body : Buffer.from(answer.body)
  const headers: string[] = []
  let length = false
  for (const [name, value] of Object.entries(answer.headers ?? {})) {
    if (name.toLowerCase() === 'content-length') length = true
    if (Array.isArray(value)) for (const v of value) headers.push(name, v)
    else headers.push(name, value)
  }
  if (body !== undefined && !length) headers.push('content-length', String(body.length))
  return { headers, body }
}

/** An exchange that a hook's answer or an error can end: a request or an upgrade handshake. */
export interface Answerable extends HookContext {
  /** True once the exchange was answered or failed. */
  readonly finished: boolean
  sendAnswer (answer: HookAnswer): void
  sendError (err: ProxyError): void
}

/**
 * Runs onRequest hooks from index `i`: a hook's answer (or a throw, 500) ends the exchange; otherwise `then` runs.
 * Synchronous hooks cost no promise.
 */
export function runOnRequest (hooks: CompiledHooks, exchange: Answerable, i: number, then: () => void): void {
  for (; i < hooks.onRequest.length; i++) {
    let result
    try {
      result = hooks.onRequest[i](exchange)
    } catch (err) {
      exchange.sendError(new ProxyError('PORTICO_ERR_INTERNAL', 'onRequest hook threw', { cause: err }))
      return
    }
    if (result !== undefined && typeof (result as Promise<unknown>).then === 'function') {
      const next = i + 1
      ;(result as Promise<HookAnswer | undefined | void>).then((answer) => {
        if (answer) exchange.sendAnswer(answer)
        else runOnRequest(hooks, exchange, next, then)
      }, (err: unknown) => exchange.sendError(new ProxyError('PORTICO_ERR_INTERNAL', 'onRequest hook rejected', { cause: err })))
      return
    }
    if (result) {
      exchange.sendAnswer(result as HookAnswer)
      return
    }
  }
  then()
}

/**
 * Lets onUpstreamRequest hooks edit the request head going upstream (`headers` in place); returns the path to send,
 * or a ProxyError (500) when a hook threw.
 */
export function runOnUpstreamRequest (hooks: CompiledHooks, ctx: HookContext, method: string, path: string, headers: string[]): string | ProxyError {
  const edit = { method, path, headers: new HeaderList(headers) }
  try {
    for (const h of hooks.onUpstreamRequest) h(ctx, edit)
  } catch (err) {
    return new ProxyError('PORTICO_ERR_INTERNAL', 'onUpstreamRequest hook threw', { cause: err })
  }
  return edit.path
}

/** Lets onUpstreamResponse hooks edit a response head (`headers` in place); returns the status to send. Throws what a hook throws. */
export function runOnUpstreamResponse (hooks: CompiledHooks, ctx: HookContext, status: number, headers: string[]): number {
  const edit = { status, headers: new HeaderList(headers) }
  for (const h of hooks.onUpstreamResponse) h(ctx, edit)
  return edit.status
}

/** The first answer an onError hook gives for `err`, or undefined; a hook that throws is logged and skipped. */
export function runOnError (hooks: CompiledHooks, ctx: HookContext, err: ProxyError, logger: Logger): HookAnswer | undefined {
  for (const h of hooks.onError) {
    try {
      const answer = h(ctx, err)
      if (answer) return answer
    } catch (hookErr) {
      logger.error({ reqId: ctx.id, err: hookErr }, 'onError hook threw')
    }
  }
  return undefined
}

/** Hands the finished exchange's record to every onResponse hook; a hook that throws is logged. */
export function runOnResponse (hooks: CompiledHooks, ctx: HookContext, record: AccessRecord, logger: Logger): void {
  for (const h of hooks.onResponse) {
    try {
      h(ctx, record)
    } catch (err) {
      logger.error({ reqId: ctx.id, err }, 'onResponse hook threw')
    }
  }
}
