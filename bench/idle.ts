/**
 * The idle-connections scenarios (1,000 and 10,000): open many keep-alive connections to a target, send one
 * `GET /1k` on each and read the whole answer, then leave them open and idle. The caller reads the target's
 * memory while they are held and then closes them. At most `concurrency` connections are being opened at once
 * (a new one starts as soon as one is answered), so no listen backlog overflows and the first connection is not
 * left idle for long before the last one is open: every target's idle keep-alive timeout (5 s for the Node
 * servers) must not close them while they are held.
 */
import net from 'node:net'
import { GET_PATH, ONE_KIB } from './fixture.js'

/** Connections being held open. */
export interface IdleConnections {
  /** Connections whose request got a complete 200 answer and that are still open. */
  readonly ok: number
  /** Connections that failed: refused, reset, closed early or a non-200 answer. */
  readonly failed: number
  close (): void
}

const REQUEST = `GET ${GET_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n`

/** Opens one connection, sends one request, resolves with the socket once the whole answer was read. */
function openOne (port: number): Promise<net.Socket | null> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port })
    let buffered = Buffer.alloc(0)
    let settled = false
    const settle = (ok: boolean): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.removeAllListeners('data')
      if (!ok) socket.destroy()
      resolve(ok ? socket : null)
    }
    const timer = setTimeout(() => settle(false), 10_000)
    socket.on('error', () => settle(false))
    socket.on('close', () => settle(false))
    socket.on('connect', () => socket.write(REQUEST))
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk])
      const end = buffered.indexOf('\r\n\r\n')
      if (end === -1) return
      const head = buffered.subarray(0, end).toString('latin1')
      if (!/^HTTP\/1\.1 200 /.test(head)) {
        settle(false)
        return
      }
      // Every target relays the origin's Content-Length for this answer.
      if (buffered.length - end - 4 >= ONE_KIB.length) settle(true)
    })
  })
}

/** Opens `count` connections, at most `concurrency` at a time, each with one answered request. */
export async function openIdleConnections (port: number, count: number, concurrency = 100): Promise<IdleConnections> {
  const sockets: net.Socket[] = []
  let failed = 0
  let started = 0
  const opener = async (): Promise<void> => {
    while (started < count) {
      started++
      const s = await openOne(port)
      if (s === null) failed++
      else sockets.push(s)
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, opener))
  // A target that times idle connections out would close some while they are held: those count as failed.
  let closing = false
  for (const s of sockets) s.on('close', () => { if (!closing) failed++ })
  return {
    get ok () { return sockets.filter((s) => !s.destroyed).length },
    get failed () { return failed },
    close () {
      closing = true
      for (const s of sockets) s.destroy()
    }
  }
}
