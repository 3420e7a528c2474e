/**
 * The request-parser fuzz engine (used by bench/fuzz.ts and test/security/fuzz-smoke.test.ts). A Portico proxy and a
 * recording origin run in this process; each case is a random or mutated request head (from a corpus of valid
 * requests), sent over a raw socket and followed on the same connection by a sentinel request. Invariants:
 *
 * 1. Portico keeps serving: every 50 cases a fresh connection must get 200.
 * 2. Every request the origin receives was re-framed by Portico: it carries Portico's Via and X-Forwarded-For, and
 *    its body is exactly as long as its head says.
 * 3. No keep-alive desynchronisation: every response the client gets that came from the origin names a request line
 *    the client really sent, and when the sentinel's response arrives it is the last one and is the sentinel's.
 *
 * Seeded (xorshift), bounded in cases and time, and it stops by itself.
 */
import http from 'node:http'
import net, { type AddressInfo } from 'node:net'
import { createProxy } from '../src/index.js'

/** A seeded pseudo-random source. */
class Rand {
  #s: number
  constructor (seed: number) { this.#s = (seed >>> 0) || 1 }
  next (): number {
    let x = this.#s
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5
    this.#s = x >>> 0
    return this.#s / 0x100000000
  }

  int (n: number): number { return Math.floor(this.next() * n) }
  pick<T> (a: readonly T[]): T { return a[this.int(a.length)] }
}

const CORPUS: string[] = [
  'GET / HTTP/1.1\r\nHost: fuzz.test\r\n\r\n',
  'GET /a/b?c=d HTTP/1.1\r\nHost: fuzz.test\r\nAccept: */*\r\nUser-Agent: f\r\n\r\n',
  'HEAD /h HTTP/1.1\r\nHost: fuzz.test\r\n\r\n',
  'POST /p HTTP/1.1\r\nHost: fuzz.test\r\nContent-Length: 5\r\n\r\nhello',
  'POST /c HTTP/1.1\r\nHost: fuzz.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
  'POST /c2 HTTP/1.1\r\nHost: fuzz.test\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n',
  'PUT /u HTTP/1.1\r\nHost: fuzz.test\r\nContent-Length: 0\r\n\r\n',
  'DELETE /d HTTP/1.1\r\nHost: fuzz.test\r\n\r\n',
  'OPTIONS * HTTP/1.1\r\nHost: fuzz.test\r\n\r\n',
  'GET http://fuzz.test/abs HTTP/1.1\r\nHost: fuzz.test\r\n\r\n',
  'GET /old HTTP/1.0\r\n\r\n',
  'GET /ka HTTP/1.1\r\nHost: fuzz.test\r\nConnection: keep-alive\r\n\r\nGET /ka2 HTTP/1.1\r\nHost: fuzz.test\r\n\r\n',
  'POST /s HTTP/1.1\r\nHost: fuzz.test\r\nContent-Length: 0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: fuzz.test\r\n\r\n',
  'POST /te HTTP/1.1\r\nHost: fuzz.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled2 HTTP/1.1\r\nHost: fuzz.test\r\n\r\n',
  'GET /x HTTP/1.1\r\nHost: fuzz.test\r\nX-Forwarded-For: 1.2.3.4\r\nForwarded: for=1.2.3.4\r\n\r\n',
  'GET /u%2e%2e/%2fa HTTP/1.1\r\nHost: fuzz.test\r\n\r\n',
  'GET /conn HTTP/1.1\r\nHost: fuzz.test\r\nConnection: close, X-Drop\r\nX-Drop: 1\r\n\r\n',
  'POST /e HTTP/1.1\r\nHost: fuzz.test\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc',
  'GET /up HTTP/1.1\r\nHost: fuzz.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
  'GET / HTTP/1.1\r\nHost: fuzz.test\r\nCookie: a=1; b=2\r\nRange: bytes=0-1\r\n\r\n'
]

const INJECT = ['\r', '\n', '\r\n', '\0', ' ', '\t', ':', ',', ';', '\x7f', '\xff', 'Transfer-Encoding: chunked\r\n', 'Content-Length: 3\r\n',
  'Content-Length: 100\r\n', 'Host: other.test\r\n', ' chunked', '\r\n\r\n', 'GET /smuggled3 HTTP/1.1\r\nHost: fuzz.test\r\n\r\n', '0\r\n\r\n', 'ffffffffffffffff']

/** One mutation of a corpus entry (or two spliced). */
function mutate (r: Rand): string {
  let s = r.pick(CORPUS)
  const n = 1 + r.int(4)
  for (let k = 0; k < n; k++) {
    const at = r.int(s.length + 1)
    switch (r.int(8)) {
      case 0: s = s.slice(0, at) + s.slice(at + 1 + r.int(3)); break
      case 1: s = s.slice(0, at) + r.pick(INJECT) + s.slice(at); break
      case 2: s = s.slice(0, at) + String.fromCharCode(r.int(256)) + s.slice(at + 1); break
      case 3: s = s.replace(/\d+/, () => String(r.int(3) === 0 ? -1 : r.int(200))); break
      case 4: { const lines = s.split('\r\n'); const i = 1 + r.int(Math.max(1, lines.length - 1)); lines.splice(i, 0, lines[Math.min(i, lines.length - 1)] ?? ''); s = lines.join('\r\n'); break }
      case 5: s = s.slice(0, at); break
      case 6: s = s + r.pick(CORPUS); break
      default: s = s.replace(/\r\n/, r.pick(['\n', '\r', '\r\n ', '\r\n\t'])); break
    }
  }
  return s
}

/** Result of a run. */
export interface FuzzResult {
  seed: number
  seconds: number
  cases: number
  byStatus: Record<string, number>
  violations: { rule: string, input: string, detail: string }[]
}

/** Sends bytes, then a sentinel, and collects the whole reply (until close, or 150 ms of silence). */
function exchange (port: number, data: Buffer, sentinel: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    let reply = ''
    let timer: NodeJS.Timeout | null = null
    const done = (): void => { if (timer !== null) clearTimeout(timer); socket.destroy(); resolve(reply) }
    const idle = (): void => { if (timer !== null) clearTimeout(timer); timer = setTimeout(done, 150) }
    socket.on('data', (c: Buffer) => { reply += c.toString('latin1'); idle() })
    socket.on('error', done)
    socket.on('close', done)
    socket.write(data, () => socket.write(sentinel, () => idle()))
  })
}

/** Runs the fuzz for `seconds` (and at most `maxCases`). */
export async function runFuzz (seconds: number, seed: number, maxCases = Infinity, progress?: (r: FuzzResult) => void): Promise<FuzzResult> {
  const result: FuzzResult = { seed, seconds, cases: 0, byStatus: {}, violations: [] }
  let current = ''
  const origin = http.createServer((req, res) => {
    let n = 0
    req.on('data', (c: Buffer) => { n += c.length })
    req.on('end', () => {
      const via = String(req.headers.via ?? '')
      if (!via.includes('portico') || req.headers['x-forwarded-for'] === undefined) {
        result.violations.push({ rule: 'origin got a request Portico did not re-frame', input: current, detail: `${req.method} ${req.url} via=${via}` })
      }
      const declared = req.headers['content-length']
      if (declared !== undefined && Number(declared) !== n) {
        result.violations.push({ rule: 'origin got a body whose length differs from its head', input: current, detail: `${declared} vs ${n}` })
      }
      res.end(`origin ${req.method} ${req.url};`)
    })
    req.on('error', () => {})
  })
  origin.on('clientError', (_e, s) => s.destroy())
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve))
  const proxy = createProxy({
    listen: [{ host: '127.0.0.1', port: 0 }],
    log: { access: false, level: 'silent' },
    server: { headersTimeout: '2s', requestTimeout: '3s', bodyTimeout: '1s' },
    routes: [{ host: 'fuzz.test', upstream: [`http://127.0.0.1:${(origin.address() as AddressInfo).port}`] }]
  })
  const [addr] = await proxy.listen()
  const r = new Rand(seed)
  const stopAt = Date.now() + seconds * 1000
  let lastProgress = Date.now()
  try {
    while (Date.now() < stopAt && result.cases < maxCases) {
      const input = r.int(10) === 0 ? Array.from({ length: 1 + r.int(200) }, () => String.fromCharCode(r.int(256))).join('') : mutate(r)
      current = input
      const id = `sentinel-${result.cases}`
      const reply = await exchange(addr.port, Buffer.from(input, 'latin1'), `GET /${id} HTTP/1.1\r\nHost: fuzz.test\r\n\r\n`)
      result.cases++
      const statuses = [...reply.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => m[1])
      const first = statuses[0] ?? 'closed'
      result.byStatus[first[0] === 'c' ? first : `${first[0]}xx`] = (result.byStatus[first[0] === 'c' ? first : `${first[0]}xx`] ?? 0) + 1
      // Every origin answer names a request line the client sent.
      for (const m of reply.matchAll(/origin ([A-Z]+) ([^;\s]+);/g)) {
        const line = `${m[1]} ${m[2]}`
        // RFC 9112 §3: a request line may be parsed on whitespace-delimited words.
        const sent = `${input}GET /${id} HTTP/1.1`.replace(/[ \t]+/g, ' ')
        const inForm = sent.includes(`${m[1]} ${m[2]} HTTP/1.`) || sent.includes(`${m[1]} http://fuzz.test${m[2]} HTTP/1.`) || (m[2] === '/' && sent.includes(`${m[1]} http://fuzz.test HTTP/1.`))
        if (!inForm) result.violations.push({ rule: 'a response to a request the client never sent', input, detail: line })
      }
      const sentinelAt = reply.indexOf(`origin GET /${id};`)
      if (sentinelAt !== -1 && /HTTP\/1\.1 \d{3} /.test(reply.slice(sentinelAt))) {
        result.violations.push({ rule: 'a response after the sentinel\'s', input, detail: reply.slice(sentinelAt, sentinelAt + 120) })
      }
      if (result.cases % 50 === 0) {
        const ok = await new Promise<boolean>((resolve) => {
          http.get({ host: '127.0.0.1', port: addr.port, path: '/health', headers: { host: 'fuzz.test' }, agent: false }, (res) => { res.resume(); resolve(res.statusCode === 200) })
            .on('error', () => resolve(false))
        })
        if (!ok) result.violations.push({ rule: 'Portico stopped serving', input, detail: 'a fresh GET did not get 200' })
      }
      if (progress !== undefined && Date.now() - lastProgress >= 5000) {
        lastProgress = Date.now()
        progress(result)
      }
    }
  } finally {
    await proxy.close({ drainTimeout: 500 })
    origin.closeAllConnections()
    await new Promise<void>((resolve) => origin.close(() => resolve()))
  }
  return result
}
