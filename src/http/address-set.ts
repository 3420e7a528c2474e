/**
 * Sets of client addresses written as addresses, CIDRs and the shorthands `private` and `loopback`: who is a trusted
 * proxy (`trustedProxies`), who a route allows or denies (`allow`/`deny`), whose connections are not counted per IP.
 * Matching is node:net's BlockList; IPv4-mapped IPv6 addresses match their IPv4 networks.
 */
import { BlockList, isIP } from 'node:net'

/** The shorthands an address list may use. */
const SHORTHANDS: Record<string, string[]> = {
  loopback: ['127.0.0.0/8', '::1/128'],
  // RFC 1918, RFC 6598 (carrier-grade NAT), RFC 4193 (unique local), link-local, and loopback.
  private: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '169.254.0.0/16', 'fc00::/7', 'fe80::/10', '127.0.0.0/8', '::1/128']
}

/** A set of addresses and networks. */
export class AddressSet {
  readonly #list = new BlockList()
  /** As configured. */
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

  /** Whether `address` (as a socket or a forwarding header gives it) is in the set. */
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

/** Whether `text` is a valid entry: an address, a CIDR, `private` or `loopback`. */
export function isAddressEntry (text: string): boolean {
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

