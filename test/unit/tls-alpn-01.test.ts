/**
 * The ClientHello reader of TLS-ALPN-01 (acme/tls-alpn-01.ts): SNI and ALPN read from real ClientHellos sent by
 * Node's TLS client, over one record or split across several and across reads; anything else is not a ClientHello.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import tls from 'node:tls'
import fc from 'fast-check'
import { parseClientHello } from '../../src/acme/tls-alpn-01.js'

/** The first bytes a TLS client sends for these options (its whole ClientHello), read by a plain TCP server. */
async function clientHello (options: tls.ConnectionOptions): Promise<Buffer> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as net.AddressInfo).port
  try {
    return await new Promise<Buffer>((resolve, reject) => {
      server.once('connection', (socket) => {
        let buf = Buffer.alloc(0)
        socket.on('data', (c: Buffer) => {
          buf = Buffer.concat([buf, c])
          if (buf.length >= 5 && buf.length >= 5 + buf.readUInt16BE(3)) {
            resolve(buf)
            socket.destroy()
          }
        })
      })
      const client = tls.connect({ host: '127.0.0.1', port, ...options })
      client.on('error', () => {})
      setTimeout(() => reject(new Error('no ClientHello')), 5000).unref()
    })
  } finally {
    server.close()
  }
}

/** The same handshake message framed in records of at most `size` bytes. */
function reframe (hello: Buffer, size: number): Buffer {
  const msg = hello.subarray(5, 5 + hello.readUInt16BE(3))
  const records: Buffer[] = []
  for (let at = 0; at < msg.length; at += size) {
    const part = msg.subarray(at, at + size)
    const head = Buffer.from([22, 3, 1, 0, 0])
    head.writeUInt16BE(part.length, 3)
    records.push(head, part)
  }
  return Buffer.concat(records)
}

test('SNI and ALPN are read from a real ClientHello; a validation handshake offers only acme-tls/1', async () => {
  const acme = await clientHello({ servername: 'A.Example.test', ALPNProtocols: ['acme-tls/1'] })
  assert.deepEqual(parseClientHello(acme), { serverName: 'a.example.test', alpn: ['acme-tls/1'] })
  const browser = await clientHello({ servername: 'b.test', ALPNProtocols: ['h2', 'http/1.1'] })
  assert.deepEqual(parseClientHello(browser), { serverName: 'b.test', alpn: ['h2', 'http/1.1'] })
  // No SNI (an IP address) and no ALPN.
  assert.deepEqual(parseClientHello(await clientHello({})), { serverName: null, alpn: [] })
})

test('a ClientHello split across records, or cut short, is read whole or says how many bytes it waits for', async () => {
  const hello = await clientHello({ servername: 'split.test', ALPNProtocols: ['acme-tls/1'] })
  for (const size of [1, 3, 4, 50, 200]) {
    const framed = reframe(hello, size)
    assert.deepEqual(parseClientHello(framed), { serverName: 'split.test', alpn: ['acme-tls/1'] }, `records of ${size} bytes`)
    for (const cut of [0, 1, 4, 5, 6, 9, Math.floor(framed.length / 2), framed.length - 1]) {
      const need = parseClientHello(framed.subarray(0, cut))
      // Partial: how many bytes to wait for, always more than it has, never past the whole hello.
      assert.ok(typeof need === 'number' && need > cut && need <= framed.length, `records of ${size} bytes, first ${cut} bytes: ${String(need)}`)
    }
  }
})

test('bytes that are not a TLS ClientHello are refused, never thrown on', async () => {
  assert.equal(parseClientHello(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\n')), null)
  // A handshake record that is not a ClientHello (a ServerHello, type 2).
  assert.equal(parseClientHello(Buffer.from([22, 3, 3, 0, 4, 2, 0, 0, 0])), null)
  const hello = await clientHello({ servername: 'fuzz.test', ALPNProtocols: ['h2'] })
  fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), fc.nat(hello.length - 1), (bytes, at) => {
    // Random bytes, and a real hello with a stretch of it overwritten: an answer, never an exception.
    const damaged = Buffer.from(hello)
    damaged.set(bytes.subarray(0, damaged.length - at), at)
    for (const b of [Buffer.from(bytes), damaged]) {
      const r = parseClientHello(b)
      assert.ok(r === null || (typeof r === 'number' && r > b.length) || (typeof r === 'object' && Array.isArray(r.alpn)))
    }
  }), { numRuns: 500 })
})
