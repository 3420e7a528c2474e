/**
 * HTTP-01 challenges (RFC 8555 §8.3): while an order is pending, the CA fetches
 * `http://NAME/.well-known/acme-challenge/TOKEN` on port 80 and expects the key authorization. The cleartext
 * listeners answer these paths before routing, and before a redirect to https (listeners.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'

const PREFIX = '/.well-known/acme-challenge/'

/** The key authorizations of the pending challenges, by token. */
export class Http01Challenges {
  readonly #tokens = new Map<string, string>()
  /** With a shared storage: the answers other instances put there (their CA may ask this instance). */
  lookup: ((token: string) => Promise<string | null>) | null = null

  set (token: string, keyAuthorization: string): void {
    this.#tokens.set(token, keyAuthorization)
  }

  delete (token: string): void {
    this.#tokens.delete(token)
  }

  /** Answers a challenge request (200 with the key authorization, or 404 for an unknown token); false for any other request. */
  answer (req: IncomingMessage, res: ServerResponse): boolean {
    const url = req.url
    if (url === undefined || !url.startsWith(PREFIX) || (req.method !== 'GET' && req.method !== 'HEAD')) return false
    const token = url.slice(PREFIX.length)
    const value = this.#tokens.get(token)
    if (value !== undefined || this.lookup === null) {
      reply(req, res, value ?? null)
      return true
    }
    this.lookup(token).then((shared) => reply(req, res, shared), () => reply(req, res, null))
    return true
  }
}

function reply (req: IncomingMessage, res: ServerResponse, value: string | null): void {
  if (value === null) {
    res.writeHead(404, { 'content-type': 'text/plain', 'content-length': '0', 'cache-control': 'no-store' })
    res.end()
    return
  }
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(Buffer.byteLength(value)), 'cache-control': 'no-store' })
  res.end(req.method === 'HEAD' ? undefined : value)
}
