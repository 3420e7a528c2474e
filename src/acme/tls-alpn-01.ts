/**
 * TLS-ALPN-01 challenges (RFC 8737): the CA opens a TLS connection to port 443 with the name in SNI and ALPN offering
 * only "acme-tls/1", and expects a self-signed certificate for that name whose critical acmeIdentifier extension
 * holds the SHA-256 of the key authorization. Node picks a certificate (SNICallback) before it looks at ALPN, so
 * on the TLS listeners of a config that uses this challenge the ClientHello is read first (`answerTlsAlpn01`): a
 * handshake offering only acme-tls/1 is answered here with the challenge certificate and closed once complete;
 * every other connection goes to the listener's TLS server with its bytes put back, unchanged. Without
 * tls-alpn-01 in `tls.acme.challenges` nothing of this is installed.
 */
import { createSecureContext, TLSSocket, type SecureContext } from 'node:tls'
import type { Server as NetServer, Socket } from 'node:net'
import type { Logger } from '../observability/logger.js'

/** The ALPN protocol of a validation handshake (RFC 8737 §6.2). */
export const ACME_TLS_ALPN = 'acme-tls/1'
/** A ClientHello larger than this is not read further (it goes to the TLS server, which decides). */
const MAX_HELLO_BYTES = 16 * 1024
/** What a hello sent in pieces is gathered in: the largest hello read here and its record headers. */
const GATHER_BYTES = MAX_HELLO_BYTES + 64
/** A connection that sends no whole ClientHello in this time is closed (Node's handshake timeout follows it). */
const HELLO_TIMEOUT_MS = 30_000
/** How many challenge certificates for other instances' orders are kept. */
const SHARED_KEPT = 64
/** A fatal no_application_protocol alert (RFC 7301 §3.2), for acme-tls/1 to a name with no pending challenge. */
const NO_APPLICATION_PROTOCOL = Buffer.from([21, 3, 3, 0, 2, 2, 120])

/** The key under which a name's TLS-ALPN-01 answer is shared in storage (HTTP-01 answers are keyed by token). */
export function tlsAlpnKey (name: string): string {
  return `tls-alpn-01/${name}`
}

/** What a ClientHello offers: its SNI name and ALPN protocols. */
export interface ClientHello {
  serverName: string | null
  alpn: string[]
}

/**
 * Reads the ClientHello at the start of `buf` (one handshake message, over one or more TLS records): when `buf`
 * holds only part of it, the number of bytes needed before it is worth reading again; null when the bytes are not
 * a ClientHello a TLS server would accept.
 */
export function parseClientHello (buf: Buffer): ClientHello | number | null {
  // The handshake message, gathered from consecutive handshake records (content type 22).
  const parts: Buffer[] = []
  let have = 0
  let need = -1
  let at = 0
  while (need < 0 || have < need) {
    if (at + 5 > buf.length) return at + 5
    if (buf[at] !== 22 || buf[at + 1] !== 3) return null
    const len = buf.readUInt16BE(at + 3)
    if (len === 0) return null
    const end = Math.min(at + 5 + len, buf.length)
    parts.push(buf.subarray(at + 5, end))
    have += end - at - 5
    if (need < 0 && have >= 4) {
      const head = parts.length === 1 ? parts[0] : Buffer.concat(parts)
      if (head[0] !== 1) return null
      need = 4 + head.readUIntBE(1, 3)
      if (need > MAX_HELLO_BYTES) return null
    }
    if (end < at + 5 + len && (need < 0 || have < need)) return at + 5 + len
    at += 5 + len
  }
  const msg = (parts.length === 1 ? parts[0] : Buffer.concat(parts)).subarray(4, need)
  try {
    return helloFields(msg)
  } catch {
    return null
  }
}

/** The SNI host name (RFC 6066 §3) and ALPN list (RFC 7301 §3.1) of a ClientHello body; throws on a short body. */
function helloFields (b: Buffer): ClientHello {
  let p = 2 + 32
  p += 1 + byte(b, p) // session id
  p += 2 + u16(b, p) // cipher suites
  p += 1 + byte(b, p) // compression methods
  const hello: ClientHello = { serverName: null, alpn: [] }
  if (p === b.length) return hello
  const end = p + 2 + u16(b, p)
  if (end > b.length) throw new RangeError('extensions')
  p += 2
  while (p + 4 <= end) {
    const type = u16(b, p)
    const len = u16(b, p + 2)
    const data = b.subarray(p + 4, p + 4 + len)
    if (data.length !== len) throw new RangeError('extension')
    if (type === 0) {
      // server_name: a list of (type, name); type 0 is host_name.
      for (let q = 2; q + 3 <= data.length;) {
        const n = u16(data, q + 1)
        if (data[q] === 0) hello.serverName = data.toString('latin1', q + 3, q + 3 + n).toLowerCase()
        q += 3 + n
      }
    } else if (type === 16) {
      for (let q = 2; q < data.length;) {
        const n = byte(data, q)
        hello.alpn.push(data.toString('latin1', q + 1, q + 1 + n))
        q += 1 + n
      }
    }
    p += 4 + len
  }
  return hello
}

function byte (b: Buffer, at: number): number {
  if (at >= b.length) throw new RangeError('short')
  return b[at]
}

function u16 (b: Buffer, at: number): number {
  if (at + 2 > b.length) throw new RangeError('short')
  return b.readUInt16BE(at)
}

/** The pending TLS-ALPN-01 challenges: the key authorization per name and the challenge certificate made from it. */
export class TlsAlpn01Challenges {
  readonly #pending = new Map<string, { keyAuthorization: string, context: Promise<SecureContext> }>()
  /** Challenge certificates made for answers other instances stored, the most recent SHARED_KEPT. */
  readonly #shared = new Map<string, { keyAuthorization: string, context: Promise<SecureContext> }>()
  /** With a shared storage: the key authorizations other instances stored (the CA may connect to this one). */
  lookup: ((name: string) => Promise<string | null>) | null = null

  /** Makes the challenge certificate for `name` now, so the validation handshake does not wait for it. */
  async set (name: string, keyAuthorization: string): Promise<void> {
    const entry = { keyAuthorization, context: challengeContext(name, keyAuthorization) }
    this.#pending.set(name, entry)
    await entry.context
  }

  delete (name: string): void {
    this.#pending.delete(name)
  }

  /** The challenge certificate for `name`, from this instance's orders or the shared storage; null when none is pending. */
  async context (name: string): Promise<SecureContext | null> {
    const local = this.#pending.get(name)
    if (local !== undefined) return await local.context
    const shared = await this.lookup?.(name) ?? null
    if (shared === null) return null
    // Another instance's challenge: its certificate is made once (a CA validates from several places, and retries).
    let made = this.#shared.get(name)
    if (made === undefined || made.keyAuthorization !== shared) {
      made = { keyAuthorization: shared, context: challengeContext(name, shared) }
      this.#shared.delete(name)
      this.#shared.set(name, made)
      if (this.#shared.size > SHARED_KEPT) this.#shared.delete(this.#shared.keys().next().value as string)
      made.context.catch(() => this.#shared.delete(name))
    }
    return await made.context
  }
}

/** The self-signed certificate RFC 8737 §3 asks for (made by acme-client, loaded only here and by the manager). */
async function challengeContext (name: string, keyAuthorization: string): Promise<SecureContext> {
  const acme = (await import('acme-client')).default
  const key = await acme.crypto.createPrivateEcdsaKey()
  const [, cert] = await acme.crypto.createAlpnCertificate({ identifier: { type: 'dns', value: name } } as never, keyAuthorization, key)
  return createSecureContext({ key, cert })
}

/**
 * Reads each connection's ClientHello before `server` (a TLS server) sees it: a validation handshake (ALPN offering
 * only acme-tls/1) is answered with the challenge certificate for its SNI name, anything else is handed to the
 * server's own TLS handling with the bytes read put back.
 */
export function answerTlsAlpn01 (server: NetServer, challenges: TlsAlpn01Challenges, logger: Logger): void {
  // The TLS server's own connection listener (set by its constructor): it wraps the socket in TLS.
  const tlsListeners = server.listeners('connection') as Array<(socket: Socket) => void>
  server.removeAllListeners('connection')
  server.on('connection', (socket: Socket) => {
    readClientHello(socket, (hello) => {
      if (hello === 'gone') return
      if (hello === null || hello.alpn.length !== 1 || hello.alpn[0] !== ACME_TLS_ALPN) {
        for (const l of tlsListeners) l.call(server, socket)
        return
      }
      void answer(socket, hello.serverName, challenges, logger)
    })
  })
}

async function answer (socket: Socket, name: string | null, challenges: TlsAlpn01Challenges, logger: Logger): Promise<void> {
  let context: SecureContext | null = null
  try {
    if (name !== null) context = await challenges.context(name)
  } catch (err) {
    logger.error({ name, err: (err as Error).message }, 'TLS-ALPN-01 challenge certificate failed')
  }
  if (context === null) {
    // No challenge for this name: the handshake fails as for a protocol the server does not speak.
    logger.info({ name, remoteAddr: socket.remoteAddress }, 'TLS-ALPN-01 handshake for a name with no pending challenge')
    socket.end(NO_APPLICATION_PROTOCOL)
    // Read (and drop) until the client closes, so the socket closes too; a client that stays is closed later.
    socket.resume()
    socket.setTimeout(10_000, () => socket.destroy())
    return
  }
  const tls = new TLSSocket(socket, { isServer: true, secureContext: context, ALPNProtocols: [ACME_TLS_ALPN] })
  tls.setTimeout(HELLO_TIMEOUT_MS, () => tls.destroy())
  tls.on('error', () => tls.destroy())
  // RFC 8737 §3: the handshake is the whole exchange; the validator closes once it has the certificate.
  tls.once('secure', () => {
    logger.info({ name, remoteAddr: socket.remoteAddress }, 'TLS-ALPN-01 challenge answered')
    tls.end()
  })
}

/**
 * Calls `done` once the ClientHello is read (null when the bytes are not one), or with 'gone' when the client closed
 * or went quiet first (the socket is destroyed). A hello that comes whole in the first read (nearly all of them) is
 * parsed where it lies; one sent in pieces is gathered in one buffer and parsed again only once the record the last
 * parse was waiting for is complete, so tiny pieces cost no more than a whole hello.
 */
function readClientHello (socket: Socket, done: (hello: ClientHello | null | 'gone') => void): void {
  let buf: Buffer | null = null
  let have = 0
  let need = 0
  /** `read`: every byte read so far, put back for the TLS server (it reads what the socket buffered first). */
  const finish = (hello: ClientHello | null | 'gone', read: Buffer | null): void => {
    socket.off('data', onData)
    socket.off('end', onEnd)
    clearTimeout(timer)
    if (hello === 'gone') {
      socket.destroy()
    } else {
      socket.pause()
      if (read !== null) socket.unshift(read)
    }
    done(hello)
  }
  const onData = (chunk: Buffer): void => {
    if (buf === null) {
      const hello = parseClientHello(chunk)
      // Past the largest hello read here: the TLS server decides.
      if (typeof hello !== 'number' || chunk.length >= GATHER_BYTES) return finish(typeof hello === 'number' ? null : hello, chunk)
      buf = Buffer.allocUnsafe(GATHER_BYTES)
      have = chunk.copy(buf)
      need = hello
      return
    }
    if (chunk.length > buf.length - have) return finish(null, Buffer.concat([buf.subarray(0, have), chunk]))
    have += chunk.copy(buf, have)
    if (have < need) return
    const hello = parseClientHello(buf.subarray(0, have))
    if (typeof hello === 'number') need = hello
    else finish(hello, buf.subarray(0, have))
  }
  const onEnd = (): void => finish('gone', null)
  const timer = setTimeout(() => finish('gone', null), HELLO_TIMEOUT_MS)
  timer.unref()
  socket.on('data', onData)
  socket.once('end', onEnd)
  socket.once('close', () => clearTimeout(timer))
}
