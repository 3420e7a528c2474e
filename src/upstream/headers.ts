/**
 * Header rewriting at the proxy boundary, both ways. Requests: hop-by-hop fields dropped (RFC 9110 §7.6.1),
 * X-Forwarded-* and Via (RFC 9110 §7.6.3) added, Forwarded (RFC 7239) optionally. Responses: hop-by-hop fields
 * dropped, everything else (repeated Set-Cookie included) kept in order and byte-exact. Pure: flat
 * `[name, value, name, value, ...]` arrays in and out, as Node's rawHeaders and undici's raw headers are.
 */
import { latin1, lowerAscii } from '../http/fields.js'
import { HOP_BY_HOP, addConnectionTokens, connectionTokens as collectConnectionTokens } from '../http/hop-by-hop.js'

/** Facts about the downstream request that the forwarding headers describe. */
export interface ForwardingFacts {
  /** The socket's peer: the address this proxy received the connection from. */
  peer: string | undefined
  /** The client's address: the peer, or (behind trusted proxies) the right-most untrusted forwarded address. */
  clientAddress: string | undefined
  /** The peer is a trusted proxy: its forwarding fields are kept and appended to. */
  trusted: boolean
  /** "http" or "https". */
  proto: string
  /** The Host header (or URI authority) as the client sent it. */
  host: string
  /** "1.1", "1.0", "2.0". */
  httpVersion: string
}

/** Per-route options for request headers. */
export interface RequestHeaderOptions {
  preserveHost: boolean
  xForwarded: boolean
  forwarded: boolean
  via: string | false
}

/** Returned when the request head is unacceptable (RFC 9110 §7.2: more than one Host). */
export const INVALID_HOST = Symbol('invalid host')

/** X-Forwarded-* (any), X-Real-IP, Forwarded: fields only a proxy may state. */
function isForwardingField (lower: string): boolean {
  return lower === 'forwarded' || lower === 'x-real-ip' || (lower.length > 12 && lower.startsWith('x-forwarded-'))
}

/**
 * Builds the header list sent upstream from the client's raw headers. Returns INVALID_HOST when the request
 * carries more than one Host field. The Host field is kept first when preserved.
 *
 * Forwarding fields: from an untrusted peer, every X-Forwarded-*, X-Real-IP and Forwarded field the client sent is
 * dropped and Portico states its own (X-Forwarded-For/-Proto/-Host and X-Real-IP with `xForwarded`, a Forwarded
 * element with `forwarded`). From a trusted proxy they are kept: X-Forwarded-For and Forwarded get this hop appended,
 * X-Forwarded-Proto/-Host/-Prefix stand as that proxy set them, X-Real-IP is the client address found in the chain.
 */
export function buildUpstreamHeaders (raw: string[], facts: ForwardingFacts, opts: RequestHeaderOptions): string[] | typeof INVALID_HOST {
  const connectionTokens = collectConnectionTokens(raw)
  const out: string[] = []
  const trusted = facts.trusted
  let hostSeen = false
  let xff: string | undefined
  let via: string | undefined
  let forwarded: string | undefined
  let keptProto = false
  let keptHost = false
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]
    const lower = name.length < 32 ? lowerAscii(name) : name.toLowerCase()
    switch (lower) {
      case 'host':
        if (hostSeen) return INVALID_HOST
        hostSeen = true
        if (opts.preserveHost) out.push(name, raw[i + 1])
        continue
      // Node answers Expect: 100-continue itself before the handler runs; the node gets the body directly.
      case 'expect':
        continue
      case 'x-forwarded-for':
        if (!trusted) continue
        if (opts.xForwarded) { xff = xff === undefined ? raw[i + 1] : `${xff}, ${raw[i + 1]}`; continue }
        break
      case 'forwarded':
        if (!trusted) continue
        if (opts.forwarded) { forwarded = forwarded === undefined ? raw[i + 1] : `${forwarded}, ${raw[i + 1]}`; continue }
        break
      case 'x-real-ip':
        // Portico's own value replaces it (or, without xForwarded, a trusted proxy's stands).
        if (!trusted || opts.xForwarded) continue
        break
      case 'x-forwarded-proto':
        if (!trusted) continue
        keptProto = true
        break
      case 'x-forwarded-host':
        if (!trusted) continue
        keptHost = true
        break
      case 'via':
        if (opts.via !== false) { via = via === undefined ? raw[i + 1] : `${via}, ${raw[i + 1]}`; continue }
        break
      default:
        // HTTP/2 pseudo-headers are not fields (RFC 9113 §8.3); :authority stands for Host (§8.3.1).
        if (lower.charCodeAt(0) === 58 /* : */) {
          if (lower === ':authority' && !raw.some((n, j) => j % 2 === 0 && n.toLowerCase() === 'host')) {
            hostSeen = true
            if (opts.preserveHost) out.unshift('host', raw[i + 1])
          }
          continue
        }
        if (HOP_BY_HOP.has(lower)) continue
        if (connectionTokens !== null && connectionTokens.has(lower)) continue
        // Any other X-Forwarded-* (Port, Prefix, Server, ...) a client sent directly is not a proxy's statement.
        if (!trusted && isForwardingField(lower)) continue
    }
    out.push(name, raw[i + 1])
  }
  if (opts.xForwarded) {
    const peer = facts.peer ?? 'unknown'
    out.push('x-forwarded-for', xff === undefined ? peer : `${xff}, ${peer}`)
    if (!keptProto) out.push('x-forwarded-proto', facts.proto)
    if (!keptHost && facts.host !== '') out.push('x-forwarded-host', facts.host)
    out.push('x-real-ip', facts.clientAddress ?? peer)
  }
  if (opts.forwarded) {
    // RFC 7239 §4: append one element; §6: IPv6 addresses are bracketed and quoted.
    const element = `for=${forwardedNode(facts.peer)};proto=${facts.proto}${facts.host === '' ? '' : `;host=${quoteIfNeeded(facts.host)}`}`
    out.push('forwarded', forwarded === undefined ? element : `${forwarded}, ${element}`)
  }
  if (opts.via !== false) {
    // RFC 9110 §7.6.3: received-protocol and a pseudonym; HTTP is implied for the protocol name.
    const mine = `${facts.httpVersion === '2.0' ? '2' : facts.httpVersion} ${opts.via}`
    out.push('via', via === undefined ? mine : `${via}, ${mine}`)
  }
  return out
}

/**
 * Converts undici's raw response headers to the flat string list `res.writeHead` takes, dropping hop-by-hop
 * fields (and those the Connection field lists). Values stay byte-exact (latin1 both ways).
 */
export function filterResponseHeaders (raw: Buffer[] | string[]): string[] {
  const n = raw.length
  const out: string[] = new Array(n)
  let connectionTokens: Set<string> | null = null
  let k = 0
  for (let i = 0; i < n; i += 2) {
    const name = typeof raw[i] === 'string' ? raw[i] as string : (raw[i] as Buffer).toString('latin1')
    const lower = lowerAscii(name)
    if (HOP_BY_HOP.has(lower)) {
      if (lower === 'connection') connectionTokens = addConnectionTokens(connectionTokens, latin1(raw[i + 1]))
      continue
    }
    out[k++] = name
    out[k++] = latin1(raw[i + 1])
  }
  out.length = k
  if (connectionTokens === null) return out
  const kept: string[] = []
  for (let i = 0; i < out.length; i += 2) {
    if (!connectionTokens.has(lowerAscii(out[i]))) kept.push(out[i], out[i + 1])
  }
  return kept
}

function forwardedNode (addr: string | undefined): string {
  if (addr === undefined) return 'unknown'
  return addr.includes(':') ? `"[${addr}]"` : addr
}

function quoteIfNeeded (v: string): string {
  return /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(v) ? v : `"${v.replace(/["\\]/g, '\\$&')}"`
}
