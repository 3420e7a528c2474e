/**
 * Hooks for embedders: typed callbacks at the pipeline's phases. On the way in (`onRequest`,
 * `onUpstreamRequest`) they run in registration order; on the way out (`onUpstreamResponse`, `onError`,
 * `onResponse`) in reverse, as Envoy filters do. A proxy without hooks pays nothing for them: the pipeline checks
 * one field and allocates no wrappers.
 */
import type { IncomingMessage } from 'node:http'
import type { ProxyError } from './errors.js'
import type { AccessRecord } from './observability/logger.js'

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
}

/** A response a hook answers with instead of forwarding. */
export interface HookAnswer {
  status: number
  headers?: Record<string, string | string[]>
  body?: string | Buffer
}

/** A flat `[name, value, ...]` header list with case-insensitive helpers; `raw` is the list itself. */
export class HeaderList {
  readonly raw: string[]
  constructor (raw: string[]) {
    this.raw = raw
  }

  /** The first value of `name`, or undefined. */
  get (name: string): string | undefined {
    const n = name.toLowerCase()
    for (let i = 0; i < this.raw.length; i += 2) if (this.raw[i].toLowerCase() === n) return this.raw[i + 1]
    return undefined
  }

  /** Every value of `name`, in order. */
  getAll (name: string): string[] {
    const n = name.toLowerCase()
    const out: string[] = []
    for (let i = 0; i < this.raw.length; i += 2) if (this.raw[i].toLowerCase() === n) out.push(this.raw[i + 1])
    return out
  }

  /** Replaces every value of `name` with one. */
  set (name: string, value: string): void {
    this.delete(name)
    this.raw.push(name, value)
  }

  /** Adds a value, keeping existing ones. */
  append (name: string, value: string): void {
    this.raw.push(name, value)
  }

  /** Removes every value of `name`. */
  delete (name: string): void {
    const n = name.toLowerCase()
    for (let i = this.raw.length - 2; i >= 0; i -= 2) if (this.raw[i].toLowerCase() === n) this.raw.splice(i, 2)
  }
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
