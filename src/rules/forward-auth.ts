/**
 * forwardAuth (Traefik's ForwardAuth, nginx's auth_request, the oauth2-proxy / Authelia pattern): before a request
 * goes to the node, Portico asks an auth service with GET, sending the request's end-to-end fields (or the ones
 * listed) and X-Forwarded-Method, -Proto, -Host, -Uri and -For. A 2xx lets the request through, with the listed
 * fields of the auth answer copied onto it; any other answer (401, 403, a 302 to a login page) goes to the client
 * as it is. An auth service that cannot be asked is a 502 PORTICO_ERR_FORWARD_AUTH: never a request let through.
 */
import type { Dispatcher } from 'undici'
import { HOP_BY_HOP } from '../http/hop-by-hop.js'
import { connectionTokens } from '../http/hop-by-hop.js'
import { lowerAscii } from '../http/fields.js'
import type { ResolvedRules } from '../config/resolved.js'
import { undiciRequest } from '../upstream/undici.js'

/** The largest auth answer body passed on to the client. */
const MAX_BODY = 1024 * 1024

/** Request fields never sent to the auth service: framing, and what describes a body it does not get. */
const NOT_SENT = new Set(['host', 'content-length', 'expect', 'x-forwarded-method', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-uri', 'x-forwarded-for'])

export type AuthVerdict =
  | { allow: true, fields: string[] }
  | { allow: false, status: number, headers: string[], body: Buffer }

/** What the auth service is told about the request. */
export interface AuthQuestion {
  method: string
  uri: string
  proto: string
  host: string
  clientAddress: string | undefined
  rawHeaders: readonly string[]
}

/** Asks the auth service; rejects when it cannot be asked (refused, timed out, reset, too large an answer). */
export async function askForwardAuth (spec: NonNullable<ResolvedRules['forwardAuth']>, dispatcher: Dispatcher, q: AuthQuestion): Promise<AuthVerdict> {
  const headers: string[] = []
  const tokens = connectionTokens(q.rawHeaders)
  for (let i = 0; i < q.rawHeaders.length; i += 2) {
    const lower = lowerAscii(q.rawHeaders[i])
    if (HOP_BY_HOP.has(lower) || NOT_SENT.has(lower) || tokens?.has(lower) === true) continue
    if (spec.copyRequestHeaders !== null && !spec.copyRequestHeaders.includes(lower)) continue
    headers.push(q.rawHeaders[i], q.rawHeaders[i + 1])
  }
  headers.push('x-forwarded-method', q.method, 'x-forwarded-proto', q.proto, 'x-forwarded-host', q.host, 'x-forwarded-uri', q.uri)
  if (q.clientAddress !== undefined) headers.push('x-forwarded-for', q.clientAddress)
  const request = await undiciRequest()
  const res = await request(spec.url, {
    dispatcher,
    method: 'GET',
    headers,
    headersTimeout: spec.timeout,
    bodyTimeout: spec.timeout,
    signal: AbortSignal.timeout(spec.timeout)
  })
  const raw = res.headers
  if (res.statusCode >= 200 && res.statusCode < 300) {
    res.body.resume()
    const fields: string[] = []
    for (const name of spec.copyResponseHeaders) {
      const v = raw[name]
      if (v === undefined) continue
      for (const one of Array.isArray(v) ? v : [v]) fields.push(name, one)
    }
    return { allow: true, fields }
  }
  const chunks: Buffer[] = []
  let size = 0
  for await (const c of res.body) {
    size += (c as Buffer).length
    if (size > MAX_BODY) throw new Error(`the auth service's answer is larger than ${MAX_BODY} bytes`)
    chunks.push(c as Buffer)
  }
  const out: string[] = []
  const answerTokens = new Set<string>()
  const conn = raw.connection
  if (conn !== undefined) for (const t of String(conn).split(',')) answerTokens.add(t.trim().toLowerCase())
  for (const [name, v] of Object.entries(raw)) {
    if (HOP_BY_HOP.has(name) || answerTokens.has(name) || name === 'content-length' || v === undefined) continue
    for (const one of Array.isArray(v) ? v : [v]) out.push(name, one)
  }
  const body = Buffer.concat(chunks)
  out.push('content-length', String(body.length))
  return { allow: false, status: res.statusCode, headers: out, body }
}
