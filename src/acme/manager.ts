/**
 * Automatic HTTPS (docs/acme.md): for every managed name, a certificate from the ACME CA (RFC 8555), obtained in
 * the background once the listeners are open and renewed `renewBefore` its expiry, installed in the certificate
 * store (SNI) without a restart or a dropped connection; a CA that offers ACME Renewal Information (RFC 9773,
 * renewal-info.ts) can ask for an earlier renewal. Until a name has one, its clients get the default certificate. A failed order is logged once with the CA's problem document and retried with exponential backoff
 * (1 minute doubling to 6 hours, with jitter); the names that have certificates keep being served. acme-client is
 * loaded only by a config that uses automatic HTTPS.
 */
import https from 'node:https'
import type { ResolvedAcme } from '../config/resolved.js'
import type { Logger } from '../observability/logger.js'
import type { CertificateStore } from '../server/certificates.js'
import { isIssuableName } from '../routing/host.js'
import { undiciRequest } from '../upstream/undici.js'
import type { Http01Challenges } from './http-01.js'
import { tlsAlpnKey, type TlsAlpn01Challenges } from './tls-alpn-01.js'
import { ariCertId, fetchRenewalInfo, renewalInfoUrl, renewalTime, renewBy, type RenewalInfo } from './renewal-info.js'
import { parseStored, type AcmeStorage, type StoredCertificate } from './storage.js'

type AcmeModule = typeof import('acme-client')
type AcmeClient = InstanceType<AcmeModule['Client']>
type Authorization = Awaited<ReturnType<AcmeClient['getAuthorizations']>>[number]
type Challenge = Authorization['challenges'][number]
/** Puts a challenge's answer where the CA will look (and takes it away once the authorization is settled). */
interface ChallengeHooks {
  challengeCreateFn: (authz: Authorization, challenge: Challenge, keyAuthorization: string) => Promise<void>
  challengeRemoveFn: (authz: Authorization, challenge: Challenge) => Promise<void>
}

const RETRY_FIRST_MS = 60_000
const RETRY_MAX_MS = 6 * 60 * 60 * 1000
/** How often a certificate that is not due yet is looked at again (timers cannot wait months). */
const CHECK_EVERY_MS = 12 * 60 * 60 * 1000
/** How long an order may hold a name's lock; a lock left by a crashed instance expires after this. */
const LOCK_TTL_MS = 10 * 60 * 1000
/** With the lock held elsewhere: how soon storage is looked at again for the certificate the holder stores. */
const LOCKED_RECHECK_MS = 2000
/** How long a shared HTTP-01 answer stays in storage. */
const CHALLENGE_TTL_MS = 10 * 60 * 1000
/** A renewal window that could not be fetched is asked for again after this, doubling up to the maximum. */
const ARI_RETRY_FIRST_MS = 60 * 60 * 1000
const ARI_RETRY_MAX_MS = 6 * 60 * 60 * 1000

/** The pending challenges the listeners answer, one set per challenge type in `tls.acme.challenges` (null when not used). */
export interface AcmeChallenges {
  http01: Http01Challenges | null
  tlsAlpn01: TlsAlpn01Challenges | null
}

/** What `GET /certificates` and the logs say about one managed name. */
export interface ManagedCertificate {
  name: string
  state: 'valid' | 'pending' | 'failed'
  issuer: string | null
  notAfter: string | null
  /** When it is renewed next (or the next try after a failure). */
  nextAttempt: string | null
  /** The window the CA suggests for its renewal (RFC 9773), when it offers one. */
  renewalWindow: { start: string, end: string, explanationURL: string | null } | null
  lastError: string | null
}

interface NameState {
  name: string
  cert: StoredCertificate | null
  failures: number
  timer: NodeJS.Timeout | null
  next: number | null
  lastError: string | null
  busy: boolean
  /** Ordered on demand (not in the config's names). */
  onDemand: boolean
  /** When `cert` is due by `renewBefore` (its jitter drawn once per certificate). */
  renewAt: number | null
  /** The CA's renewal window for `cert` (RFC 9773), the time drawn in it (once per window), and when to ask again. */
  ari: RenewalInfo | null
  ariAt: number | null
  ariCheckAt: number | null
  ariFailures: number
  /** When this process obtained `cert` (null: loaded from storage). */
  issuedAt: number | null
}

export class AcmeManager {
  readonly #settings: ResolvedAcme
  readonly #store: CertificateStore
  readonly #challenges: AcmeChallenges
  readonly #logger: Logger
  readonly #storage: AcmeStorage
  readonly #names = new Map<string, NameState>()
  #client: Promise<{ acme: AcmeModule, client: AcmeClient }> | null = null
  /** The directory's `renewalInfo` URL (null: the CA offers no ARI), read once. */
  #renewalInfo: Promise<string | null> | null = null
  #closed = false
  /** On-demand TLS: the names being asked about or ordered, when each attempt started, and names refused lately. */
  readonly #demand = new Map<string, Promise<void>>()
  #demandStarts: number[] = []
  readonly #refusedUntil = new Map<string, number>()

  constructor (settings: ResolvedAcme, storage: AcmeStorage, store: CertificateStore, challenges: AcmeChallenges, logger: Logger) {
    this.#settings = settings
    this.#store = store
    this.#challenges = challenges
    this.#logger = logger.child({ acme: settings.directoryUrl })
    this.#storage = storage
    if (storage.shared) {
      if (challenges.http01 !== null) challenges.http01.lookup = async (token) => await storage.challenge(token)
      if (challenges.tlsAlpn01 !== null) challenges.tlsAlpn01.lookup = async (name) => await storage.challenge(tlsAlpnKey(name))
    }
  }

  /**
   * The names a (reloaded) config manages: names it no longer has stop being renewed (their certificates are
   * served until they expire); new ones start. On-demand names stay.
   */
  async update (names: readonly string[], onDemandNames: boolean): Promise<void> {
    for (const [name, state] of this.#names) {
      if (names.includes(name) || (onDemandNames && state.onDemand)) continue
      if (state.timer !== null) clearTimeout(state.timer)
      this.#names.delete(name)
      this.#logger.info({ name }, 'certificate no longer managed (not in the config)')
    }
    await this.start(names)
  }

  /** Installs the stored certificates and orders or renews the rest in the background. */
  async start (names: readonly string[], onDemand = false): Promise<void> {
    for (const name of names) {
      if (this.#names.has(name)) continue
      const state: NameState = { name, cert: null, failures: 0, timer: null, next: null, lastError: null, busy: false, onDemand, renewAt: null, ari: null, ariAt: null, ariCheckAt: null, ariFailures: 0, issuedAt: null }
      this.#names.set(name, state)
      let stored: StoredCertificate | null = null
      try {
        stored = await this.#storage.certificate(name)
      } catch (err) {
        this.#logger.error({ name, err: (err as Error).message }, 'cannot read the stored certificate')
      }
      if (stored !== null && stored.notAfter.getTime() > Date.now()) {
        this.#install(state, stored, 'loaded from storage')
        void this.#plan(state)
      } else {
        if (this.#settings.pending === 'refuse') this.#store.refuseUntilManaged(name)
        this.#logger.info({ name }, 'certificate pending')
        this.#schedule(state, Date.now())
      }
    }
  }

  /**
   * On-demand TLS: a name first seen in a ClientHello. Ordered (while the handshake waits) only if the `ask`
   * endpoint answers 200 to `GET ask?domain=NAME` within 5 s; attempts are bounded by `rateLimit` and
   * `maxConcurrent`, and a refused name is not asked about again for a minute.
   */
  async onDemand (name: string): Promise<void> {
    const od = this.#settings.onDemand
    if (od === null || this.#closed || this.#names.has(name) || !isIssuableName(name)) return
    const pending = this.#demand.get(name)
    if (pending !== undefined) return await pending
    const now = Date.now()
    if ((this.#refusedUntil.get(name) ?? 0) > now) return
    this.#demandStarts = this.#demandStarts.filter((t) => t > now - od.rate.period)
    if (this.#demandStarts.length >= od.rate.count || this.#demand.size >= od.maxConcurrent) {
      this.#logger.warn({ name, inFlight: this.#demand.size }, 'on-demand certificate refused: rate or concurrency limit')
      return
    }
    this.#demandStarts.push(now)
    const attempt = (async () => {
      if (!await this.#ask(od.ask, name)) {
        this.#refusedUntil.set(name, Date.now() + 60_000)
        this.#logger.info({ name }, 'on-demand certificate not allowed by the ask endpoint')
        return
      }
      await this.start([name], true)
      const state = this.#names.get(name)
      if (state !== undefined && state.cert === null) await this.#order(state)
    })()
    this.#demand.set(name, attempt)
    try {
      await attempt
    } finally {
      this.#demand.delete(name)
    }
  }

  async #ask (ask: string, name: string): Promise<boolean> {
    const url = new URL(ask)
    url.searchParams.set('domain', name)
    try {
      // undici's request follows no redirect: only the endpoint's own 200 allows.
      const request = await undiciRequest()
      const res = await request(url, { signal: AbortSignal.timeout(5000) })
      await res.body.dump()
      return res.statusCode === 200
    } catch (err) {
      this.#logger.warn({ name, ask: url.origin, err: (err as Error).message }, 'on-demand ask endpoint failed; not ordering')
      return false
    }
  }

  /** The managed names and their certificates. */
  certificates (): ManagedCertificate[] {
    return [...this.#names.values()].map((s) => ({
      name: s.name,
      state: s.cert !== null ? 'valid' : s.failures > 0 ? 'failed' : 'pending',
      issuer: s.cert?.issuer ?? null,
      notAfter: s.cert?.notAfter.toISOString() ?? null,
      nextAttempt: s.next === null ? null : new Date(s.next).toISOString(),
      renewalWindow: s.ari === null ? null : { start: new Date(s.ari.start).toISOString(), end: new Date(s.ari.end).toISOString(), explanationURL: s.ari.explanationURL },
      lastError: s.lastError
    }))
  }

  async close (): Promise<void> {
    this.#closed = true
    for (const s of this.#names.values()) if (s.timer !== null) clearTimeout(s.timer)
    await this.#storage.close()
  }

  /** When a certificate is due for renewal by `renewBefore` (renewal-info.ts renewBy), less up to 1% of its lifetime of jitter. */
  #dueAt (c: StoredCertificate): number {
    return renewBy(c, this.#settings) - Math.random() * 0.01 * Math.max(0, c.notAfter.getTime() - Date.now())
  }

  /**
   * Plans the renewal of the name's certificate: at `renewBefore`, or earlier at a random time in the window the CA
   * suggests (RFC 9773), asked again after its Retry-After so a CA can move it (say, before a revocation). A window
   * that cannot be fetched keeps the last one known and is asked for again after 1 hour, doubling to 6. Without
   * ARI, `renewBefore` alone. A certificate this process obtained is not renewed again within 12 hours, whatever
   * the plan says (a certificate shorter-lived than `renewBefore`, or a CA window already past, would loop).
   */
  async #plan (state: NameState): Promise<void> {
    const cert = state.cert
    if (cert === null) return
    state.ariCheckAt = null
    const info = await this.#askRenewalInfo(state.name, cert)
    if (state.cert !== cert) return
    const renewAt = state.renewAt ?? this.#dueAt(cert)
    if (info === 'failed') {
      state.ariFailures++
      state.ariCheckAt = Date.now() + Math.min(ARI_RETRY_MAX_MS, ARI_RETRY_FIRST_MS * 2 ** (state.ariFailures - 1))
    } else if (info !== 'none') {
      state.ariFailures = 0
      // A time drawn once per window: drawing again at every poll would drift renewals toward the window's start.
      if (state.ari === null || state.ari.start !== info.start || state.ari.end !== info.end) {
        state.ariAt = renewalTime(info)
        this.#logger[state.ariAt < renewAt && info.explanationURL !== null ? 'warn' : 'info']({
          name: state.name,
          windowStart: new Date(info.start).toISOString(),
          windowEnd: new Date(info.end).toISOString(),
          ...(info.explanationURL === null ? {} : { explanationURL: info.explanationURL })
        }, 'renewal window from the CA (ARI)')
      }
      state.ari = info
      state.ariCheckAt = Date.now() + info.retryAfterMs
    }
    let due = Math.min(renewAt, state.ariAt ?? Infinity)
    if (state.issuedAt !== null && due < state.issuedAt + CHECK_EVERY_MS && due <= Date.now()) due = state.issuedAt + CHECK_EVERY_MS
    if (state.next === null || Math.abs(state.next - due) > 1000) {
      this.#logger.info({ name: state.name, renewAt: new Date(due).toISOString(), by: due < renewAt ? 'the CA\'s renewal window' : 'renewBefore' }, 'certificate renewal planned')
    }
    this.#schedule(state, due)
  }

  /** The CA's renewal window for `cert`: 'none' when the CA offers no ARI, 'failed' when it does not answer (logged). */
  async #askRenewalInfo (name: string, cert: StoredCertificate): Promise<RenewalInfo | 'none' | 'failed'> {
    try {
      if (this.#renewalInfo === null) {
        // Read once; a failed read is tried again at the next plan.
        const read = renewalInfoUrl(this.#settings.directoryUrl, this.#settings.ca)
        read.catch(() => { if (this.#renewalInfo === read) this.#renewalInfo = null })
        this.#renewalInfo = read
      }
      const url = await this.#renewalInfo
      const id = url === null ? null : ariCertId(cert.cert)
      return url === null || id === null ? 'none' : await fetchRenewalInfo(url, id, this.#settings.ca)
    } catch (err) {
      this.#logger.warn({ name, err: (err as Error).message }, 'renewal information (ARI) not available now; asking again later')
      return 'failed'
    }
  }

  #schedule (state: NameState, at: number): void {
    // A name a reload dropped is not looked at again.
    if (this.#closed || this.#names.get(state.name) !== state) return
    if (state.timer !== null) clearTimeout(state.timer)
    state.next = at
    const wake = Math.min(at, state.ariCheckAt ?? Infinity)
    const wait = Math.min(Math.max(0, wake - Date.now()), CHECK_EVERY_MS)
    state.timer = setTimeout(() => {
      state.timer = null
      if (state.ariCheckAt !== null && Date.now() + 1000 >= state.ariCheckAt && Date.now() + 1000 < at) void this.#plan(state)
      else if (Date.now() + 1000 < at) this.#schedule(state, at)
      else void this.#order(state)
    }, wait)
    state.timer.unref()
  }

  async #order (state: NameState): Promise<void> {
    if (this.#closed || state.busy) return
    state.busy = true
    // An order (and its retries' backoff) takes over from the renewal-window polls until #plan runs again.
    state.ariCheckAt = null
    const started = Date.now()
    let release: (() => Promise<void>) | null = null
    try {
      // Of the instances sharing the storage, the one holding the lock orders; the others load what it stores.
      release = await this.#storage.lock(state.name, LOCK_TTL_MS)
      const stored = await this.#storage.certificate(state.name)
      if (stored !== null && stored.cert !== state.cert?.cert && this.#dueAt(stored) > Date.now()) {
        // Another instance (or an earlier run) stored a certificate that is not due: nothing to order.
        this.#install(state, stored, 'loaded from storage')
        void this.#plan(state)
        return
      }
      if (release === null) {
        this.#schedule(state, Date.now() + LOCKED_RECHECK_MS)
        return
      }
      const { acme, client } = await this.#acmeClient()
      const [key, csr] = await acme.crypto.createCsr({ commonName: state.name, altNames: [state.name] }, await acme.crypto.createPrivateEcdsaKey())
      // RFC 9773 §5: a renewal names the certificate it replaces (a CA may then exempt it from rate limits).
      const offersAri = (await this.#renewalInfo?.catch(() => null) ?? null) !== null
      const replaces = state.cert !== null && offersAri ? ariCertId(state.cert.cert) : null
      const cert = await this.#issue(client, state.name, csr, replaces, {
        challengeCreateFn: async (authz, challenge, keyAuthorization) => {
          if ((challenge.type as string) === 'tls-alpn-01') {
            await this.#challenges.tlsAlpn01?.set(authz.identifier.value, keyAuthorization)
            await this.#storage.setChallenge(tlsAlpnKey(authz.identifier.value), keyAuthorization, CHALLENGE_TTL_MS)
          } else {
            this.#challenges.http01?.set(challenge.token, keyAuthorization)
            await this.#storage.setChallenge(challenge.token, keyAuthorization, CHALLENGE_TTL_MS)
          }
        },
        challengeRemoveFn: async (authz, challenge) => {
          if ((challenge.type as string) === 'tls-alpn-01') {
            this.#challenges.tlsAlpn01?.delete(authz.identifier.value)
            await this.#storage.deleteChallenge(tlsAlpnKey(authz.identifier.value))
          } else {
            this.#challenges.http01?.delete(challenge.token)
            await this.#storage.deleteChallenge(challenge.token)
          }
        }
      })
      if (this.#closed) return
      const issued = parseStored(cert, key.toString())
      if (issued === null) throw new Error('the CA sent a certificate that does not parse')
      await this.#storage.saveCertificate(state.name, issued.cert, issued.key)
      const renewal = state.cert !== null
      state.failures = 0
      state.lastError = null
      this.#install(state, issued, renewal ? 'renewed' : 'obtained', Date.now() - started)
      state.issuedAt = Date.now()
      void this.#plan(state)
    } catch (err) {
      if (this.#closed) return
      state.failures++
      state.lastError = (err as Error).message
      const backoff = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** (state.failures - 1))
      const retryAt = Date.now() + backoff / 2 + Math.random() * backoff / 2
      // The problem document's detail is in the message (acme-client); said once per failure, never thrown.
      this.#logger.error({ name: state.name, err: state.lastError, failures: state.failures, retryAt: new Date(retryAt).toISOString(), keptCertificate: state.cert !== null },
        'certificate order failed; retrying later')
      this.#schedule(state, retryAt)
    } finally {
      state.busy = false
      if (release !== null) await release().catch(() => {})
    }
  }

  /**
   * One order (RFC 8555 §7.4) for `name`: the account (registered on first use), the order (naming the certificate
   * it `replaces`; a CA that refuses that is asked again without it), each pending authorization answered by the
   * first challenge type of `tls.acme.challenges` it offers and removed again, then finalization with `csr`.
   * Returns the certificate chain (PEM).
   */
  async #issue (client: AcmeClient, name: string, csr: Buffer, replaces: string | null, answer: ChallengeHooks): Promise<string> {
    try {
      client.getAccountUrl()
    } catch {
      await client.createAccount({ termsOfServiceAgreed: true, contact: [`mailto:${this.#settings.email}`] })
    }
    const identifiers = [{ type: 'dns', value: name }]
    let order
    try {
      order = await client.createOrder(replaces === null ? { identifiers } : { identifiers, replaces } as never)
    } catch (err) {
      if (replaces === null || !/replace/i.test((err as Error).message)) throw err
      this.#logger.info({ name, replaces, err: (err as Error).message }, 'the CA refused the replaced certificate; ordering without it')
      order = await client.createOrder({ identifiers })
    }
    const authorizations = await client.getAuthorizations(order)
    await Promise.all(authorizations.map(async (authz) => {
      if (authz.status === 'valid') return
      const challenge = this.#settings.challenges.map((type) => authz.challenges.find((c) => c.type === type)).find((c) => c !== undefined)
      if (challenge === undefined) {
        await client.deactivateAuthorization(authz).catch(() => {})
        throw new Error(`the CA offers none of the challenges ${this.#settings.challenges.join(', ')} for ${authz.identifier.value}`)
      }
      const keyAuthorization = await client.getChallengeKeyAuthorization(challenge)
      let completed = false
      try {
        await answer.challengeCreateFn(authz, challenge, keyAuthorization)
        await client.completeChallenge(challenge)
        completed = true
        await client.waitForValidStatus(challenge)
      } catch (err) {
        // An authorization left pending would count against the CA's limits until it expires.
        if (!completed) await client.deactivateAuthorization(authz).catch(() => {})
        throw err
      } finally {
        await answer.challengeRemoveFn(authz, challenge).catch(() => {})
      }
    }))
    const finalized = await client.finalizeOrder(order, csr)
    return await client.getCertificate(finalized)
  }

  #install (state: NameState, c: StoredCertificate, how: string, ms?: number): void {
    state.cert = c
    // A new certificate gets its own renewal plan (#plan), and its own window from the CA.
    state.renewAt = this.#dueAt(c)
    state.ari = null
    state.ariAt = null
    state.ariFailures = 0
    state.issuedAt = null
    state.next = null
    this.#store.setManaged(state.name, c.cert, c.key)
    this.#logger.info({ name: state.name, issuer: c.issuer, notAfter: c.notAfter.toISOString(), ...(ms === undefined ? {} : { ms }) }, `certificate ${how}`)
  }

  /** acme-client and the account (its key created and stored on first use), loaded once. */
  #acmeClient (): Promise<{ acme: AcmeModule, client: AcmeClient }> {
    this.#client ??= (async () => {
      const acme = (await import('acme-client')).default as unknown as AcmeModule
      if (this.#settings.ca !== null) {
        // acme-client talks through its own axios instance: the private CA is trusted there, for the directory only.
        acme.axios.defaults.httpsAgent = new https.Agent({ ca: this.#settings.ca, keepAlive: true })
      }
      let accountKey = await this.#storage.accountKey()
      if (accountKey === null) {
        await this.#storage.saveAccountKey((await acme.crypto.createPrivateEcdsaKey()).toString())
        // Shared storage: another instance's key may have been stored first; every instance uses the one stored.
        accountKey = await this.#storage.accountKey()
        if (accountKey === null) throw new Error(`the account key could not be stored in ${this.#storage.where}`)
      }
      // Status polls start after 1 s (acme-client's default is 5 s, which most orders against a fast CA then wait
      // for in full) and back off to 30 s, about 2.5 minutes in all.
      return { acme, client: new acme.Client({ directoryUrl: this.#settings.directoryUrl, accountKey, backoffMin: 1000, backoffMax: 30_000, backoffAttempts: 10 }) }
    })()
    this.#client.catch(() => { this.#client = null })
    return this.#client
  }
}
