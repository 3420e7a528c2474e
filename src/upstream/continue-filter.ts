/**
 * Unsolicited `100 Continue` from a node. RFC 9110 §15.2: a client must be able to parse one or more 1xx responses
 * before the final one, even when it did not expect them. undici (7.x) never sends `Expect: 100-continue` and
 * destroys the connection with "bad response" when a 100 arrives, so a node that sends one anyway (some servers
 * always do) would be a 502. Other 1xx (102, 103) undici already parses and hands on.
 *
 * The fix sits on the connection, before undici's parser: when a request head has just been written, the start of
 * the reply is looked at, and complete `HTTP/1.x 100` heads are dropped until the first other byte. Nothing else is
 * touched, and once the reply has started the connection passes data straight through (one branch per chunk). It
 * overrides the socket instance's public `write` and `push` (the methods Node's stream internals call), nothing
 * private of Node's or undici's.
 */
import type { Duplex } from 'node:stream'

/** A 100 head larger than this is not a 100 we recognise: it goes to undici (which then refuses it). */
const MAX_INTERIM = 8 * 1024

/** "HTTP/1.1 100 " or "HTTP/1.1 100\r": a 100 status line. */
function isContinue (b: Buffer): boolean {
  return b[0] === 0x48 && b[1] === 0x54 && b[2] === 0x54 && b[3] === 0x50 && b[4] === 0x2f && b[5] === 0x31 && b[6] === 0x2e &&
    b[8] === 0x20 && b[9] === 0x31 && b[10] === 0x30 && b[11] === 0x30 && (b[12] === 0x20 || b[12] === 0x0d)
}

/** A request line as undici writes it: a string starting with a method token and a space. */
function isRequestHead (chunk: unknown): boolean {
  if (typeof chunk !== 'string' || chunk.length < 14) return false
  const c = chunk.charCodeAt(0)
  return c >= 65 && c <= 90 && chunk.charCodeAt(chunk.indexOf(' ') - 1) >= 65 && chunk.includes(' HTTP/1.1\r\n')
}

/** Makes `socket` drop unsolicited `100 Continue` heads in front of each response. Returns the socket. */
export function skipUnsolicitedContinue<S extends Duplex> (socket: S): S {
  const push = socket.push.bind(socket)
  const write = socket.write.bind(socket) as (...args: unknown[]) => boolean
  let awaiting = false
  let pending: Buffer | null = null
  socket.write = ((...args: unknown[]): boolean => {
    if (isRequestHead(args[0])) {
      awaiting = true
      pending = null
    }
    return write(...args)
  }) as S['write']
  socket.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
    if (chunk === null && pending !== null) {
      push(pending)
      pending = null
    }
    if (!awaiting || chunk === null || !Buffer.isBuffer(chunk)) return push(chunk, encoding)
    let buf: Buffer = pending === null ? chunk : Buffer.concat([pending, chunk])
    pending = null
    for (;;) {
      if (buf.length < 13) {
        // Too short to tell; an empty remainder waits for the next chunk too.
        if (buf.length === 0 || (buf[0] === 0x48 && 'HTTP/1.'.startsWith(buf.subarray(0, 7).toString('latin1')))) {
          if (buf.length !== 0) pending = buf
          return true
        }
        awaiting = false
        return push(buf)
      }
      if (!isContinue(buf)) {
        awaiting = false
        return push(buf)
      }
      const end = buf.indexOf('\r\n\r\n')
      if (end === -1) {
        if (buf.length > MAX_INTERIM) {
          awaiting = false
          return push(buf)
        }
        pending = buf
        return true
      }
      buf = buf.subarray(end + 4)
    }
  }
  return socket
}
