/**
 * Who the client is. The socket's peer is the client, unless the peer is a trusted proxy (`trustedProxies`: CIDRs,
 * addresses, `private`, `loopback`); then the client is the right-most address of the X-Forwarded-For chain (or of
 * Forwarded's `for=`) that is not itself trusted, and the scheme, host and prefix the trusted proxy reported stand.
 * From an untrusted peer every forwarding field the client sent is dropped (upstream/headers.ts) and Portico states
 * its own: a client can never choose the address that the access log, the hash policy, IP rules and rate limits see.
 *
 * With no trusted proxies configured (the default) nothing here runs: the client is the socket's peer.
 */
import { BlockList, isIP } from 'node:net'

/** The shorthands of `trustedProxies`. */
const SHORTHANDS: Record<string, string[]> = {
  loopback: ['127.0.0.0/8', '::1/128'],
  // RFC 1918, RFC 6598 (carrier-grade NAT), RFC 4193 (unique local), link-local, and loopback.
  private: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '169.254.0.0/16', 'fc00::/7', 'fe80::/10', '127.0.0.0/8', '::1/128']
}

/** The set of trusted proxy addresses. */
export class TrustedProxies {
  readonly #list = new BlockList()
  /** As configured, for `portico check` and the docs. */
  readonly entries: readonly string[]

  constructor (entries: readonly string[]) {
    this.entries = entries
    for (const e of entries) {
      for (const cidr of SHORTHANDS[e] ?? [e]) {
        const parsed = parseCidr(cidr)
        if (parsed === null) throw new TypeError(`not an address or CIDR: ${cidr}`)
        this.#list.addSubnet(parsed.address, parsed.prefix, parsed.family)
      }
    }
  }

  /** Whether `address` (as a socket or a forwarding header gives it) is a trusted proxy. */
  has (address: string | undefined): boolean {
    if (address === undefined) return false
    const a = plainAddress(address)
    const family = isIP(a)
    if (family === 0) return false
    return this.#list.check(a, family === 6 ? 'ipv6' : 'ipv4')
  }
}

/** "10.0.0.0/8" → its parts; a bare address is a /32 or /128; null when invalid. */
export function parseCidr (text: string): { address: string, prefix: number, family: 'ipv4' | 'ipv6' } | null {
  const slash = text.indexOf('/')
  const address = slash === -1 ? text : text.slice(0, slash)
  const family = isIP(address)
  if (family === 0) return null
  const max = family === 4 ? 32 : 128
  const prefix = slash === -1 ? max : Number(text.slice(slash + 1))
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max || (slash !== -1 && !/^\d+$/.test(text.slice(slash + 1)))) return null
  return { address, prefix, family: family === 4 ? 'ipv4' : 'ipv6' }
}

/** Whether `text` is a valid `trustedProxies` entry. */
export function isTrustEntry (text: string): boolean {
  return text in SHORTHANDS || parseCidr(text) !== null
}

/** An address as it appears in forwarding fields: "[::1]:80", "1.2.3.4:80", "::ffff:1.2.3.4" → the bare address. */
export function plainAddress (a: string): string {
  let s = a.trim()
  if (s.startsWith('"') && s.endsWith('"')) s = s.slice(1, -1)
  if (s.startsWith('[')) {
    const close = s.indexOf(']')
    s = close === -1 ? s : s.slice(1, close)
  } else if (s.indexOf(':') !== -1 && s.indexOf(':') === s.lastIndexOf(':')) {
    s = s.slice(0, s.indexOf(':'))
  }
  if (s.startsWith('::ffff:') && isIP(s.slice(7)) === 4) s = s.slice(7)
  return s
}

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
export function forwardedClient (raw: readonly string[], trust: TrustedProxies): ForwardedClient | null {
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
