/**
 * The one base for ResponseHandlers that wrap another: every callback passes to `inner` unchanged, so a wrapper
 * (the pool's retry loop, the in-process failure detector, the cache's marking handler) overrides only the
 * callbacks it changes and can never forget one (`onAttempt`, `onUpgrade`) on the way through.
 */
import type { Duplex } from 'node:stream'
import { ProxyError } from '../errors.js'
import type { ResponseHandler } from './types.js'

/** Passes every callback to `inner`. Subclasses override what they change and call `super` for the rest. */
export class ForwardingHandler implements ResponseHandler {
  protected readonly inner: ResponseHandler

  constructor (inner: ResponseHandler) {
    this.inner = inner
  }

  onAttempt (upstreamId: string): void {
    this.inner.onAttempt?.(upstreamId)
  }

  onRetry (upstreamId: string, code: string): void {
    this.inner.onRetry?.(upstreamId, code)
  }

  onConnect (abort: (reason?: Error) => void): void {
    this.inner.onConnect(abort)
  }

  onHeaders (status: number, rawHeaders: Buffer[] | string[], resume: () => void, statusText: string): boolean {
    return this.inner.onHeaders(status, rawHeaders, resume, statusText)
  }

  onData (chunk: Buffer): boolean {
    return this.inner.onData(chunk)
  }

  onComplete (rawTrailers: Buffer[] | string[] | null): void {
    this.inner.onComplete(rawTrailers)
  }

  onError (err: Error): void {
    this.inner.onError(err)
  }

  onUpgrade (status: number, rawHeaders: Buffer[], socket: Duplex): void {
    if (this.inner.onUpgrade === undefined) {
      // Only upgrade requests reach here, and only handlers that take a tunnel dispatch them.
      socket.destroy()
      this.inner.onError(new ProxyError('PORTICO_ERR_INTERNAL', 'an upgrade reached a handler that cannot tunnel'))
      return
    }
    this.inner.onUpgrade(status, rawHeaders, socket)
  }
}
