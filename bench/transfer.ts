/**
 * The 1 GiB transfer scenarios' client, in the bench process: one connection (plain `node:http`, no agent) that
 * either streams a 1 GiB request body to `POST /upload` through a target, in 64 KiB chunks of one reused buffer
 * with backpressure, or GETs `/1g` through it and counts and discards the answer. Neither side holds the body in
 * memory. The result says how many bytes arrived (the origin's `{"bytes":N}` for an upload, the client's count
 * for a download) and what went wrong, if anything; the caller compares the count with `TRANSFER_BYTES`.
 */
import http from 'node:http'
import { performance } from 'node:perf_hooks'
import { DOWNLOAD_PATH, TRANSFER_BYTES, TRANSFER_CHUNK_BYTES, UPLOAD_PATH, writeTransfer } from './fixture.js'

/** A transfer stalled this long (no byte moved on the socket) is abandoned. */
const STALL_MS = 30_000

/** What one transfer did. */
export interface TransferResult {
  /** Body bytes that arrived: counted by the origin (upload) or by the client (download). */
  bytes: number
  /** From sending the request head to the end of the answer. */
  seconds: number
  /** The answer's status (0 when none came). */
  status: number
  /** Why the transfer is not complete, or null. */
  problem: string | null
}

/** The upload's chunk: one buffer written over and over. */
const chunk = Buffer.alloc(TRANSFER_CHUNK_BYTES, 'x')

/** Settles a transfer once, with the time since `started`. */
function settler (started: number, resolve: (r: TransferResult) => void): (bytes: number, status: number, problem: string | null) => void {
  let done = false
  return (bytes, status, problem) => {
    if (done) return
    done = true
    resolve({ bytes, seconds: (performance.now() - started) / 1000, status, problem })
  }
}

/** Streams a `TRANSFER_BYTES` body to `POST /upload` through the target on `port`. Never rejects. */
export function uploadThrough (port: number): Promise<TransferResult> {
  return new Promise((resolve) => {
    const settle = settler(performance.now(), resolve)
    const req = http.request({
      host: '127.0.0.1',
      port,
      method: 'POST',
      path: UPLOAD_PATH,
      agent: false,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(TRANSFER_BYTES) }
    }, (res) => {
      const parts: Buffer[] = []
      res.on('data', (c: Buffer) => parts.push(c))
      res.on('error', (err) => settle(0, res.statusCode ?? 0, err.message))
      res.on('end', () => {
        const text = Buffer.concat(parts).toString('utf8')
        const bytes = Number(/^\{"bytes":(\d+)\}$/.exec(text)?.[1] ?? NaN)
        if (res.statusCode !== 200 || !Number.isInteger(bytes)) settle(0, res.statusCode ?? 0, `answer ${res.statusCode}: ${JSON.stringify(text.slice(0, 120))}`)
        else settle(bytes, 200, null)
      })
    })
    req.setTimeout(STALL_MS, () => req.destroy(new Error(`stalled for ${STALL_MS / 1000} s`)))
    req.on('error', (err) => settle(0, 0, err.message))
    writeTransfer(req, chunk)
  })
}

/** GETs `/1g` through the target on `port`, counting and discarding the body. Never rejects. */
export function downloadThrough (port: number): Promise<TransferResult> {
  return new Promise((resolve) => {
    const settle = settler(performance.now(), resolve)
    let bytes = 0
    const req = http.get({ host: '127.0.0.1', port, path: DOWNLOAD_PATH, agent: false }, (res) => {
      res.on('data', (c: Buffer) => { bytes += c.length })
      res.on('error', (err) => settle(bytes, res.statusCode ?? 0, err.message))
      res.on('aborted', () => settle(bytes, res.statusCode ?? 0, 'the answer was cut short'))
      res.on('end', () => {
        const length = res.headers['content-length']
        if (res.statusCode !== 200) settle(bytes, res.statusCode ?? 0, `answer ${res.statusCode}`)
        else if (length !== String(TRANSFER_BYTES)) settle(bytes, 200, `Content-Length ${String(length)} (want ${TRANSFER_BYTES})`)
        else settle(bytes, 200, null)
      })
    })
    req.setTimeout(STALL_MS, () => req.destroy(new Error(`stalled for ${STALL_MS / 1000} s`)))
    req.on('error', (err) => settle(bytes, 0, err.message))
  })
}
