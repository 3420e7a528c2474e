/**
 * Server certificates for TLS listeners: one SecureContext per configured certificate, chosen per connection by
 * SNI (exact name first, then a "*.example.com" wildcard covering exactly one label, RFC 6125 §6.4.3), with a
 * default for clients that send no SNI or an unknown name. Certificates reload when their files change (and on
 * `reload()`, which SIGHUP calls) without dropping connections: a file that does not load keeps the old context and
 * logs an error. Certificates obtained by automatic HTTPS (acme/manager.ts) are set per name at run time; the files
 * keep priority for the names they cover. With no file certificate, the default is a self-signed one made at start.
 */
import { readFileSync, watch, type FSWatcher } from 'node:fs'
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls'
import path from 'node:path'
import type { ResolvedCertificate, ResolvedTls } from '../config/resolved.js'
import type { Logger } from '../observability/logger.js'

interface Loaded {
  spec: ResolvedCertificate
  context: SecureContext
  /** The PEM material the context was made from (a listener's base context needs it for clients without SNI). */
  material: { cert: Buffer, key: Buffer, passphrase?: string }
}

/** The live certificate set of a proxy. */
export class CertificateStore {
  readonly #tls: ResolvedTls
  readonly #logger: Logger
  #loaded: Loaded[] = []
  #exact = new Map<string, SecureContext>()
  #wildcard = new Map<string, SecureContext>()
  #default: SecureContext | null = null
  readonly #managed = new Map<string, SecureContext>()
  readonly #refused = new Set<string>()
  /** The default's material when there is no file certificate (made by `create`). */
  readonly #generated: Loaded['material'] | null
  readonly #watchers: FSWatcher[] = []
  #timer: NodeJS.Timeout | null = null

  /** A store for `tls`; without file certificates it first makes a self-signed default (for clients before a name has its own). */
  static async create (tls: ResolvedTls, logger: Logger): Promise<CertificateStore> {
    if (tls.certificates.length > 0) return new CertificateStore(tls, logger)
    const { generate } = await import('selfsigned')
    const notAfterDate = new Date(Date.now() + 365 * 24 * 60 * 60 * 1000)
    const pems = await generate([{ name: 'commonName', value: 'portico default certificate' }], { keyType: 'ec', curve: 'P-256', algorithm: 'sha256', notAfterDate })
    return new CertificateStore(tls, logger, { cert: Buffer.from(pems.cert), key: Buffer.from(pems.private) })
  }

  constructor (tls: ResolvedTls, logger: Logger, generated: Loaded['material'] | null = null) {
    this.#tls = tls
    this.#logger = logger
    this.#generated = generated
    // At start every certificate must load (the config pass already checked them).
    this.#loaded = tls.certificates.map((spec) => ({ spec, ...this.#load(spec) }))
    this.#index()
    if (tls.watch) this.#watch()
  }

  /** Options every TLS listener shares: safe protocol floor, server cipher order, the SNI callback. */
  serverOptions (): SecureContextOptions & { SNICallback: (name: string, cb: (err: Error | null, ctx?: SecureContext) => void) => void, honorCipherOrder: boolean } {
    return {
      ...this.defaultMaterial(),
      minVersion: this.#tls.minVersion,
      ...(this.#tls.ciphers === undefined ? {} : { ciphers: this.#tls.ciphers }),
      honorCipherOrder: true,
      SNICallback: (name, cb) => {
        const context = this.contextFor(name)
        const onUnknown = this.onUnknownName
        if (onUnknown !== null && context === this.#default && name !== '') {
          // On-demand TLS: the handshake waits while the name is asked about and, if allowed, ordered.
          onUnknown(name.toLowerCase()).then(() => cb(null, this.contextFor(name) ?? undefined), () => cb(null, this.#default ?? undefined))
          return
        }
        // tls.acme.pending: refuse — a managed name without its certificate yet gets no handshake (an alert), not the default.
        if (context === this.#default && this.#refused.has(name.toLowerCase())) cb(new Error(`no certificate for ${name} yet`))
        else cb(null, context ?? undefined)
      }
    }
  }

  /** The context for an SNI name (already lowercase per RFC 6066), or the default. */
  contextFor (servername: string | undefined): SecureContext | null {
    if (servername) {
      const name = servername.toLowerCase()
      const exact = this.#exact.get(name) ?? this.#managed.get(name)
      if (exact !== undefined) return exact
      const dot = name.indexOf('.')
      if (dot > 0) {
        const wild = this.#wildcard.get(name.slice(dot))
        if (wild !== undefined) return wild
      }
    }
    return this.#default
  }

  /** The default certificate's PEM material (served when the client sends no SNI). */
  defaultMaterial (): { cert: Buffer, key: Buffer, passphrase?: string } {
    const l = this.#loaded.find((x) => x.spec.default) ?? this.#loaded[0]
    return l?.material ?? this.#generated as Loaded['material']
  }

  /** Serves `cert` (a PEM chain) and `key` for `name` from now on, unless a file certificate covers that exact name. */
  setManaged (name: string, cert: string, key: string): void {
    this.#managed.set(name, this.#context({ cert: Buffer.from(cert), key: Buffer.from(key) }))
    this.#refused.delete(name)
  }

  /** Refuses handshakes for `name` until `setManaged` gives it a certificate (tls.acme.pending: refuse). */
  refuseUntilManaged (name: string): void {
    if (!this.#managed.has(name)) this.#refused.add(name)
  }

  /** On-demand TLS (acme/manager.ts): called for a name no certificate covers; the handshake continues when it settles. */
  onUnknownName: ((name: string) => Promise<void>) | null = null

  /** Called after every reload (listeners refresh their base context). */
  onReload: (() => void) | null = null

  /** Reloads every certificate from disk; a certificate that fails keeps its previous context. */
  reload (): void {
    this.#loaded = this.#loaded.map((l) => {
      try {
        const loaded = this.#load(l.spec)
        this.#logger.info({ hosts: l.spec.hosts, cert: l.spec.certFile }, 'certificate reloaded')
        return { spec: l.spec, ...loaded }
      } catch (err) {
        this.#logger.error({ hosts: l.spec.hosts, cert: l.spec.certFile, err: (err as Error).message }, 'certificate reload failed; keeping the old one')
        return l
      }
    })
    this.#index()
    this.onReload?.()
  }

  close (): void {
    for (const w of this.#watchers) w.close()
    if (this.#timer !== null) clearTimeout(this.#timer)
  }

  #load (spec: ResolvedCertificate): { context: SecureContext, material: Loaded['material'] } {
    const material = { cert: readFileSync(spec.certFile), key: readFileSync(spec.keyFile), ...(spec.passphrase === undefined ? {} : { passphrase: spec.passphrase }) }
    return { context: this.#context(material), material }
  }

  #context (material: Loaded['material']): SecureContext {
    return createSecureContext({
      ...material,
      minVersion: this.#tls.minVersion,
      ...(this.#tls.ciphers === undefined ? {} : { ciphers: this.#tls.ciphers })
    })
  }

  #index (): void {
    const exact = new Map<string, SecureContext>()
    const wildcard = new Map<string, SecureContext>()
    let def: SecureContext | null = null
    for (const { spec, context } of this.#loaded) {
      for (const h of spec.hosts) {
        if (h.startsWith('*.')) { if (!wildcard.has(h.slice(1))) wildcard.set(h.slice(1), context) } else if (!exact.has(h)) exact.set(h, context)
      }
      if (spec.default && def === null) def = context
    }
    this.#exact = exact
    this.#wildcard = wildcard
    this.#default = def ?? this.#loaded[0]?.context ?? (this.#generated === null ? null : this.#context(this.#generated))
  }

  /** Watches the directories of the files (editors and cert tools replace files by rename). */
  #watch (): void {
    const files = new Set(this.#loaded.flatMap((l) => [l.spec.certFile, l.spec.keyFile]))
    const dirs = new Set([...files].map((f) => path.dirname(f)))
    for (const dir of dirs) {
      try {
        const w = watch(dir, { persistent: false }, (_event, name) => {
          if (name !== null && files.has(path.join(dir, name.toString()))) this.#scheduleReload()
        })
        w.on('error', (err) => this.#logger.warn({ dir, err: err.message }, 'certificate watch failed'))
        this.#watchers.push(w)
      } catch (err) {
        this.#logger.warn({ dir, err: (err as Error).message }, 'cannot watch certificate directory; reload with SIGHUP')
      }
    }
  }

  #scheduleReload (): void {
    // A cert and its key are usually written one after the other: reload once both have landed.
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = setTimeout(() => {
      this.#timer = null
      this.reload()
    }, 200)
    this.#timer.unref()
  }
}
