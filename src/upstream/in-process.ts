/**
 * In-process handler upstreams: a Node request listener (an Express/Connect app is one) or a fetch-style
 * `(Request) => Response` handler, served with no network hop and no port. Each is an `http.Server` that never
 * listens, fed in-memory duplex sockets through undici's `connect` option, so the handler sees a real
 * IncomingMessage/ServerResponse pair (raw path, headers, streamed body, trailers) and the proxy side runs the
 * very same code path as a remote node: timeouts, error mapping, backpressure.
 *
 * A handler that throws (or rejects) before writing its head is answered with PORTICO_ERR_HANDLER_FAILED; after
 * the head, its connection is destroyed so the client's response is aborted, never completed falsely.
 */
import http, { type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http'
import { Readable } from 'node:stream'
import { inMemoryConnector } from './in-memory.js'
import { ProxyError } from '../errors.js'
import { RemoteNode } from './remote.js'
import { ForwardingHandler } from './forwarding-handler.js'
import type { DispatchOptions, FetchHandler, HandlerTarget, ResponseHandler, Upstream, UpstreamRequest } from './types.js'

/** Marks a head written by this module after the handler failed; never leaves the process. */
const FAILURE_HEADER = 'x-portico-internal-handler-failure'

/** Options for an in-process upstream. */
export interface InProcessOptions {
  /** Called with the handler's error (for logs). */
  onHandlerError?: (err: unknown) => void
}

/** An in-process handler behind the `Upstream` interface. */
export class InProcessUpstream implements Upstream {
  readonly id: string
  readonly #node: RemoteNode
  readonly #server: http.Server

  constructor (id: string, target: HandlerTarget, options: InProcessOptions = {}) {
    this.id = id
    if (target.kind === 'server') {
      // A server of the app's own (never listening): its 'request' and 'upgrade' listeners answer.
      this.#server = target.server
    } else {
      const listener = target.kind === 'listener' ? target.listener : fetchToListener(target.fetch)
      this.#server = http.createServer({ keepAliveTimeout: 60_000, requestTimeout: 0, headersTimeout: 0 } as http.ServerOptions, guard(listener, options.onHandlerError))
    }
    this.#server.keepAliveTimeout = 60_000
    const server = this.#server
    this.#node = new RemoteNode('http://in-process.invalid', {
      connectTimeout: 0,
      maxConnections: 1024,
      keepAlive: 30_000,
      connect: inMemoryConnector(server)
    }, id)
  }

  dispatch (req: UpstreamRequest, opts: DispatchOptions, handler: ResponseHandler): void {
    this.#node.dispatch(req, opts, new FailureDetector(handler))
  }

  close (): Promise<void> {
    return this.#node.close()
  }
}

/** Turns the private failure head into PORTICO_ERR_HANDLER_FAILED; passes everything else through. */
class FailureDetector extends ForwardingHandler {
  #abort: ((reason?: Error) => void) | null = null
  #failed = false

  override onConnect (abort: (reason?: Error) => void): void {
    this.#abort = abort
    this.inner.onConnect(abort)
  }

  override onHeaders (status: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    for (let i = 0; i < rawHeaders.length; i += 2) {
      if (rawHeaders[i].length === FAILURE_HEADER.length && rawHeaders[i].toString('latin1').toLowerCase() === FAILURE_HEADER) {
        this.#failed = true
        const message = rawHeaders[i + 1].toString('utf8')
        this.inner.onError(new ProxyError('PORTICO_ERR_HANDLER_FAILED', `handler failed: ${message}`))
        this.#abort?.()
        return false
      }
    }
    return this.inner.onHeaders(status, rawHeaders, resume, statusText)
  }

  override onData (chunk: Buffer): boolean {
    return this.#failed || this.inner.onData(chunk)
  }

  override onComplete (rawTrailers: Buffer[] | string[] | null): void {
    if (!this.#failed) this.inner.onComplete(rawTrailers)
  }

  override onError (err: Error): void {
    if (!this.#failed) this.inner.onError(err)
  }
}

function noop (): void {}

/** Catches synchronous throws and rejected promises from the handler. */
function guard (listener: RequestListener, onError?: (err: unknown) => void): RequestListener {
  return (req, res) => {
    req.on('error', noop)
    res.on('error', noop)
    let result: unknown
    try {
      result = listener(req, res)
    } catch (err) {
      fail(res, err, onError)
      return
    }
    if (typeof (result as Promise<unknown>)?.then === 'function') {
      ;(result as Promise<unknown>).then(undefined, (err: unknown) => fail(res, err, onError))
    }
  }
}

function fail (res: ServerResponse, err: unknown, onError?: (err: unknown) => void): void {
  onError?.(err)
  if (!res.headersSent) {
    const message = String((err as Error)?.message ?? err).replace(/[^\x20-\x7e]/g, '?').slice(0, 200)
    res.writeHead(502, { [FAILURE_HEADER]: message || 'error', 'content-length': '0' })
    res.end()
  } else {
    res.destroy(err instanceof Error ? err : new Error(String(err)))
  }
}

/** Adapts a fetch-style handler to a request listener: web Request in, web Response out, both streamed. */
export function fetchToListener (handler: FetchHandler): RequestListener {
  return async (req: IncomingMessage, res: ServerResponse) => {
    const headers = new Headers()
    for (let i = 0; i < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i], req.rawHeaders[i + 1])
    const host = req.headers.host ?? 'localhost'
    const controller = new AbortController()
    res.on('close', () => { if (!res.writableFinished) controller.abort() })
    const hasBody = req.method !== 'GET' && req.method !== 'HEAD' &&
      (req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined)
    const request = new Request(`http://${host}${req.url ?? '/'}`, {
      method: req.method,
      headers,
      body: hasBody ? Readable.toWeb(req) as ReadableStream<Uint8Array> : null,
      signal: controller.signal,
      duplex: 'half'
    } as RequestInit)
    const response = await handler(request)
    const flat: string[] = []
    response.headers.forEach((value, name) => {
      if (name === 'set-cookie') return
      flat.push(name, value)
    })
    for (const cookie of response.headers.getSetCookie()) flat.push('set-cookie', cookie)
    res.writeHead(response.status, response.statusText, flat)
    if (response.body === null || req.method === 'HEAD') {
      res.end()
      return
    }
    const body = Readable.fromWeb(response.body as import('node:stream/web').ReadableStream<Uint8Array>)
    body.on('error', (err) => res.destroy(err))
    body.pipe(res)
  }
}
