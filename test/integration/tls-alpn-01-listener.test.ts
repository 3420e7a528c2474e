/**
 * TLS listeners of a config that answers TLS-ALPN-01 read each ClientHello before Node's TLS (acme/tls-alpn-01.ts).
 * Ordinary clients must not notice: a hello that arrives in one-byte pieces still gets its handshake and answer, a
 * client that leaves halfway is closed without a TLS error, and a validation handshake for a name with no pending
 * challenge is refused with no_application_protocol. No CA is needed here: no name is managed, nothing is ordered.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import tls from 'node:tls'
import https from 'node:https'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { captureLogs, closedPort, startOrigin } from '../helpers/servers.js'

async function start (t: import('node:test').TestContext): Promise<{ port: number, logs: ReturnType<typeof captureLogs> }> {
  const { createProxy } = await import('../../src/index.js')
  const storage = mkdtempSync(path.join(os.tmpdir(), 'portico-alpn-'))
  const origin = await startOrigin((_req, res) => res.end('from origin'))
  const logs = captureLogs('debug')
  const proxy = createProxy({
    listen: [{ host: '127.0.0.1', port: 0, tls: true }],
    // A wildcard route: no name is managed, so nothing is ordered from the (absent) CA.
    routes: [{ host: '*.test', upstream: [origin.url] }],
    tls: { acme: { email: 'ops@example.com', directory: `https://127.0.0.1:${await closedPort()}/dir`, storage: { dir: storage }, challenges: ['tls-alpn-01'] } }
  }, { logger: logs.logger })
  const [secure] = await proxy.listen()
  t.after(async () => {
    await proxy.close({ drainTimeout: 200 })
    await origin.close()
    rmSync(storage, { recursive: true, force: true })
  })
  return { port: secure.port, logs }
}

test('a ClientHello that arrives one byte at a time is read whole and handed to TLS unchanged', async (t) => {
  const { port } = await start(t)
  // A relay that passes the client's first 2 KiB to the proxy one byte per write, then everything as it comes.
  const relay = net.createServer((client) => {
    const upstream = net.connect({ host: '127.0.0.1', port, noDelay: true })
    let sent = 0
    let queue = Promise.resolve()
    client.on('data', (chunk: Buffer) => {
      client.pause()
      queue = queue.then(async () => {
        for (const byte of chunk) {
          if (sent++ < 2048) {
            upstream.write(Buffer.from([byte]))
            await new Promise((resolve) => setImmediate(resolve))
          } else {
            upstream.write(Buffer.from([byte]))
          }
        }
        client.resume()
      })
    })
    upstream.pipe(client)
    client.on('end', () => { void queue.then(() => upstream.end()) })
    client.on('error', () => upstream.destroy())
    upstream.on('error', () => client.destroy())
  })
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve))
  t.after(() => relay.close())
  const relayPort = (relay.address() as net.AddressInfo).port
  const body = await new Promise<string>((resolve, reject) => {
    https.get({ host: '127.0.0.1', port: relayPort, servername: 'a.test', headers: { host: 'a.test' }, rejectUnauthorized: false, agent: false }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { text += c })
      res.on('end', () => resolve(text))
    }).on('error', reject)
  })
  assert.equal(body, 'from origin')
})

test('a client that leaves halfway through its ClientHello is closed, with no TLS error', async (t) => {
  const { port, logs } = await start(t)
  const hello = await new Promise<Buffer>((resolve) => {
    // A real ClientHello, captured.
    const capture = net.createServer((s) => s.once('data', (c: Buffer) => { resolve(c); s.destroy(); capture.close() }))
    capture.listen(0, '127.0.0.1', () => {
      tls.connect({ host: '127.0.0.1', port: (capture.address() as net.AddressInfo).port, servername: 'a.test' }).on('error', () => {})
    })
  })
  const socket = net.connect({ host: '127.0.0.1', port })
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()))
  socket.on('error', () => {})
  socket.end(hello.subarray(0, Math.floor(hello.length / 2)))
  await closed
  assert.equal(logs.lines.filter((l) => l.msg === 'TLS handshake failed').length, 0)
})

test('acme-tls/1 for a name with no pending challenge is refused with no_application_protocol; h2 clients are served', async (t) => {
  const { port } = await start(t)
  const refused = await new Promise<Error & { code?: string }>((resolve) => {
    tls.connect({ host: '127.0.0.1', port, servername: 'a.test', ALPNProtocols: ['acme-tls/1'], rejectUnauthorized: false }, () => resolve(new Error('handshake completed')))
      .on('error', resolve)
  })
  assert.equal(refused.code, 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL')
  // acme-tls/1 offered beside other protocols is an ordinary client (RFC 8737 validators offer it alone).
  const alpn = await new Promise<string | false | null>((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'a.test', ALPNProtocols: ['h2', 'acme-tls/1'], rejectUnauthorized: false }, () => { resolve(s.alpnProtocol); s.end() })
    s.on('error', reject)
  })
  assert.equal(alpn, 'h2')
})
