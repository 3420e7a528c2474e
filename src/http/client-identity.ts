/**
 * Who the client is. The socket's peer is the client, unless the peer is a trusted proxy (`trustedProxies`: CIDRs,
 * addresses, `private`, `loopback`); then the client is the right-most address of the X-Forwarded-For chain (or of
 * Forwarded's `for=`) that is not itself trusted, and the scheme, host and prefix the trusted proxy reported stand.
 * From an untrusted peer every forwarding field the client sent is dropped (upstream/headers.ts) and Portico states
 * its own: a client can never choose the address that the access log, the hash policy, IP rules and rate limits see.
 *
 * With no trusted proxies configured (the default) nothing here runs: the client is the socket's peer.
 */
import { plainAddress, type AddressSet } from './address-set.js'

/** What a trusted proxy reported about the client, read from the raw request headers. */
export interface ForwardedClient {
  /** The client address: the right-most untrusted hop, or the left-most one when every hop is trusted. */
  address: string
}

/**
 * The client behind a trusted peer: the X-Forwarded-For chain (all fields, in order) read right to left, skipping
 * trusted hops; Forwarded's `for=` parameters when there is no X-Forwarded-For. Null when the peer sent neither
 * (the peer itself is then the client).
 */
export function forwardedClient (raw: readonly string[], trust: AddressSet): ForwardedClient | null {
  let chain: string[] | null = null
  let forwarded: string[] | null = null
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]
    if (name.length === 15 && name.toLowerCase() === 'x-forwarded-for') (chain ??= []).push(...raw[i + 1].split(','))
    else if (name.length === 9 && name.toLowerCase() === 'forwarded') (forwarded ??= []).push(raw[i + 1])
  }
  if (chain === null && forwarded !== null) chain = forwardedFor(forwarded.join(','))
  if (chain === null || chain.length === 0) return null
  let last = ''
  for (let i = chain.length - 1; i >= 0; i--) {
    const hop = plainAddress(chain[i])
    if (hop === '') continue
    last = hop
    if (!trust.has(hop)) return { address: hop }
  }
  return last === '' ? null : { address: last }
}

/** The `for=` values of RFC 7239 Forwarded elements, in order. */
function forwardedFor (value: string): string[] {
  const out: string[] = []
  for (const element of value.split(',')) {
    for (const pair of element.split(';')) {
      const eq = pair.indexOf('=')
      if (eq !== -1 && pair.slice(0, eq).trim().toLowerCase() === 'for') out.push(pair.slice(eq + 1).trim())
    }
  }
  return out
}
