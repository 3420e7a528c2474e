/**
 * Recognises what an embedder hands Portico as an in-process handler and says how to run it: a Node request
 * listener (an Express or Connect app is one), a Fastify instance, a Koa app, an object with `fetch(request)`, or an
 * app's own never-listening `http.Server`. Knowledge of those apps' shapes lives here and nowhere else.
 */
import { Server, type RequestListener } from 'node:http'
import type { FetchHandler, HandlerTarget } from './types.js'

/** How to run `value` in process, or undefined when it is none of the shapes above. */
export function handlerTarget (value: unknown): HandlerTarget | undefined {
  // An http.Server of the app's own (not listening): it answers requests and upgrades with its own listeners.
  if (value instanceof Server) return { kind: 'server', server: value }
  const v = value as { routing?: unknown, ready?: unknown, callback?: unknown, fetch?: unknown } | null
  // A Fastify instance: requests enter through its router once plugins are ready; upgrades through its server.
  if (v !== null && (typeof v === 'object' || typeof v === 'function') && typeof v.routing === 'function' && typeof v.ready === 'function') {
    const app = v as { routing: RequestListener, ready: () => Promise<unknown> }
    const ready = app.ready()
    return { kind: 'listener', listener: (req, res) => { ready.then(() => app.routing(req, res), (err: unknown) => res.destroy(err as Error)) } }
  }
  // A Koa app: its callback() is the request listener.
  if (v !== null && typeof v === 'object' && typeof v.callback === 'function' && typeof v.fetch !== 'function') {
    return { kind: 'listener', listener: (v.callback as () => RequestListener).call(v) }
  }
  if (typeof value === 'function') return { kind: 'listener', listener: value as RequestListener }
  if (typeof value === 'object' && value !== null && typeof (value as { fetch?: unknown }).fetch === 'function') {
    const obj = value as { fetch: FetchHandler }
    return { kind: 'fetch', fetch: (req) => obj.fetch(req) }
  }
  return undefined
}

