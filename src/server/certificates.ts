/**
 * Server certificates for TLS listeners: one SecureContext per configured certificate, chosen per connection by
 * SNI (exact name first, then a "*.example.com" wildcard covering exactly one label, RFC 6125 §6.4.3), with a
 * default for clients that send no SNI or an unknown name. Certificates reload when their files change (and on
 * `reload()`, which SIGHUP calls) without dropping connections: a file that does not load keeps the old context and
 * logs an error.
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
  readonly #watchers: FSWatcher[] = []
  #timer: NodeJS.Timeout | null = null

  constructor (tls: ResolvedTls, logger: Logger) {
    this.#tls = tls
    this.#logger = logger
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
      SNICallback: (name, cb) => cb(null, this.contextFor(name) ?? undefined)
    }
  }

  /** The context for an SNI name (already lowercase per RFC 6066), or the default. */
  contextFor (servername: string | undefined): SecureContext | null {
    if (servername) {
      const name = servername.toLowerCase()
      const exact = this.#exact.get(name)
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
    return l.material
  }

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
    const context = createSecureContext({
      ...material,
      minVersion: this.#tls.minVersion,
      ...(this.#tls.ciphers === undefined ? {} : { ciphers: this.#tls.ciphers })
    })
    return { context, material }
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
    this.#default = def ?? this.#loaded[0]?.context ?? null
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
