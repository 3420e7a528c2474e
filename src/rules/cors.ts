/**
 * CORS answered by Portico (the Fetch standard's CORS protocol): a preflight (OPTIONS with Origin and
 * Access-Control-Request-Method) is answered here, 204, and never reaches the node; an actual request's response
 * gets the Access-Control-* fields for an allowed origin, and the node's own Access-Control-* fields are dropped so
 * that one place decides. Only allowed origins are ever echoed; `*` is sent only to an any-origin rule without
 * credentials. `Vary: Origin` is added whenever the answer depends on the origin, so a cache keeps them apart.
 */
import type { ResolvedCors } from '../config/resolved.js'
import { addVary, lowerAscii } from '../http/fields.js'

/** The Access-Control-Allow-Origin value for `origin`, or null when it is not allowed (or absent). */
export function allowedOrigin (c: ResolvedCors, origin: string | undefined): string | null {
  if (origin === undefined || origin === '') return null
  if (c.any) return c.credentials ? origin : '*'
  const lower = origin.toLowerCase()
  if (c.origins.has(lower)) return origin
  for (const p of c.patterns) if (p.test(lower)) return origin
  return null
}

/** Whether a request is a CORS preflight. */
export function isPreflight (method: string, headers: Record<string, string | string[] | undefined>): boolean {
  return method === 'OPTIONS' && headers.origin !== undefined && headers['access-control-request-method'] !== undefined
}

/** The answer to a preflight: 204 with the allowed methods and fields, or 204 without them for an unknown origin. */
export function preflightAnswer (c: ResolvedCors, headers: Record<string, string | string[] | undefined>): { status: number, headers: Record<string, string> } {
  const origin = headers.origin as string
  const out: Record<string, string> = { 'content-length': '0' }
  const vary = ['Origin', 'Access-Control-Request-Method']
  const allow = allowedOrigin(c, origin)
  if (allow !== null) {
    out['access-control-allow-origin'] = allow
    if (c.credentials) out['access-control-allow-credentials'] = 'true'
    out['access-control-allow-methods'] = c.methods
    const asked = headers['access-control-request-headers']
    if (c.headers !== null) out['access-control-allow-headers'] = c.headers
    else if (typeof asked === 'string' && asked.trim() !== '') {
      out['access-control-allow-headers'] = asked
      vary.push('Access-Control-Request-Headers')
    }
    if (c.maxAge !== null) out['access-control-max-age'] = String(c.maxAge)
  }
  if (allow !== '*') out.vary = vary.join(', ')
  return { status: 204, headers: out }
}

/** Sets the CORS fields of an actual response for `origin` (the request's Origin), replacing the node's own. */
export function corsResponse (c: ResolvedCors, origin: string | undefined, headers: string[]): void {
  for (let i = headers.length - 2; i >= 0; i -= 2) {
    const n = headers[i]
    if (n.length > 15 && lowerAscii(n).startsWith('access-control-')) headers.splice(i, 2)
  }
  const allow = allowedOrigin(c, origin)
  if (allow !== null) {
    headers.push('access-control-allow-origin', allow)
    if (c.credentials) headers.push('access-control-allow-credentials', 'true')
    if (c.exposeHeaders !== null) headers.push('access-control-expose-headers', c.exposeHeaders)
  }
  if (allow !== '*') addVary(headers, 'Origin')
}
