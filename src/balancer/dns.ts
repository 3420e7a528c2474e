/**
 * Nodes named by a DNS name, re-resolved: every `dnsRefresh` each name is looked up again (all addresses, both
 * families) and each address becomes a member of its own with the name's weight, named "http://api.internal:8080
 * (10.0.0.7)", sending the name as Host (when the route does not preserve the client's) and as the TLS name. A
 * failed lookup keeps the last known addresses and logs a warning; before the first answer the name itself is the
 * member (each connection then resolves it, as undici does). IP literals and `localhost` names are left alone: they
 * do not move, and `localhost`'s two loopback families would only double the members.
 */
import { lookup as dnsLookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import type { MemberSpec } from '../config/resolved.js'
import type { Logger } from '../observability/logger.js'

/** Resolves a host name to its addresses (default: the system resolver, all families). */
export type Lookup = (hostname: string) => Promise<string[]>

export const systemLookup: Lookup = async (hostname) => (await dnsLookup(hostname, { all: true, verbatim: true })).map((a) => a.address)

type NodeSpec = Extract<MemberSpec, { kind: 'node' }>

/** Whether a node's host is a name worth re-resolving. */
function dnsName (spec: MemberSpec): string | null {
  if (spec.kind !== 'node') return null
  const host = new URL(spec.origin).hostname
  if (host.startsWith('[') || isIP(host) !== 0) return null
  if (host === 'localhost' || host.endsWith('.localhost')) return null
  return host
}

/** The member specs of one pool with DNS names expanded to their addresses, kept fresh. */
export class DnsMembers {
  readonly #specs: readonly MemberSpec[]
  readonly #interval: number
  readonly #logger: Logger
  readonly #lookup: Lookup
  /** Last known addresses by name. */
  readonly #addresses = new Map<string, string[]>()
  #timer: NodeJS.Timeout | null = null
  #stopped = false

  /** Null when no member is named by a DNS name. */
  static for (specs: readonly MemberSpec[], interval: number, logger: Logger, lookup: Lookup = systemLookup): DnsMembers | null {
    if (interval <= 0 || !specs.some((s) => dnsName(s) !== null)) return null
    return new DnsMembers(specs, interval, logger, lookup)
  }

  constructor (specs: readonly MemberSpec[], interval: number, logger: Logger, lookup: Lookup = systemLookup) {
    this.#specs = specs
    this.#interval = interval
    this.#logger = logger
    this.#lookup = lookup
  }

  /** Takes over the addresses another instance knew (a reload), so members keep their identity and state. */
  adopt (previous: DnsMembers | null): void {
    if (previous === null) return
    for (const [name, addrs] of previous.#addresses) this.#addresses.set(name, addrs)
  }

  /** The members now: each named node as its known addresses (or as the name, before the first answer). */
  current (): MemberSpec[] {
    const out: MemberSpec[] = []
    for (const spec of this.#specs) {
      const name = dnsName(spec)
      const addrs = name === null ? undefined : this.#addresses.get(name)
      if (name === null || addrs === undefined || addrs.length === 0) {
        out.push(spec)
        continue
      }
      const node = spec as NodeSpec
      const url = new URL(node.origin)
      const port = url.port === '' ? '' : `:${url.port}`
      for (const a of addrs) {
        const host = isIP(a) === 6 ? `[${a}]` : a
        out.push({ ...node, id: `${node.origin} (${a})`, origin: `${url.protocol}//${host}${port}`, authority: url.host, tlsName: name })
      }
    }
    return out
  }

  /** Resolves now and then every interval; `onChange` gets the new member list whenever an address set changed. */
  start (onChange: (specs: MemberSpec[]) => void): void {
    const names = [...new Set(this.#specs.map(dnsName).filter((n): n is string => n !== null))]
    const round = async (): Promise<void> => {
      let changed = false
      await Promise.all(names.map(async (name) => {
        try {
          const found = [...new Set(await this.#lookup(name))].sort()
          if (found.length === 0) throw new Error('no addresses')
          const prev = this.#addresses.get(name)
          if (prev === undefined || prev.join(',') !== found.join(',')) {
            this.#addresses.set(name, found)
            changed = true
            if (prev !== undefined) this.#logger.info({ name, addresses: found, previous: prev }, `DNS name ${name} now resolves to ${found.join(', ')}`)
          }
        } catch (err) {
          const kept = this.#addresses.get(name)
          this.#logger.warn({ name, err: (err as Error).message, kept: kept ?? null },
            `resolving ${name} failed; ${kept === undefined ? 'connections resolve it themselves' : `keeping ${kept.join(', ')}`}`)
        }
      }))
      if (this.#stopped) return
      if (changed) onChange(this.current())
      this.#timer = setTimeout(() => { void round() }, this.#interval)
      this.#timer.unref()
    }
    void round()
  }

  stop (): void {
    this.#stopped = true
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
  }
}
