/**
 * The check every target passes before it is measured: `GET /1k` through it returns 200 with the origin's exact
 * 1 KiB body and the origin's marker header, and a 1 MiB `POST /upload` arrives at the origin whole. A target
 * that answers anything else is not proxying, and the run stops.
 */
import http from 'node:http'
import { GET_PATH, ONE_KIB, ORIGIN_HEADER, UPLOAD_BYTES, UPLOAD_PATH, uploadAnswer } from './fixture.js'

interface Answer {
  status: number
  headers: http.IncomingHttpHeaders
  body: Buffer
}

function request (port: number, method: string, target: string, body?: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1',
      port,
      method,
      path: target,
      agent: false,
      timeout: 10_000,
      headers: body === undefined ? {} : { 'content-type': 'application/octet-stream', 'content-length': body.length }
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`${method} ${target}: no answer within 10 s`)))
    req.on('error', reject)
    req.end(body)
  })
}

/** Throws, naming what differed, unless the target on `port` proxies both scenarios to the origin. */
export async function verifyTarget (name: string, port: number): Promise<void> {
  const get = await request(port, 'GET', GET_PATH)
  if (get.status !== 200 || get.headers[ORIGIN_HEADER] !== '1' || !get.body.equals(ONE_KIB)) {
    throw new Error(`${name} does not proxy GET ${GET_PATH}: status ${get.status}, ${ORIGIN_HEADER}: ` +
      `${String(get.headers[ORIGIN_HEADER])}, ${get.body.length} body bytes (want 200, 1, the origin's ${ONE_KIB.length} bytes); ` +
      `body starts ${JSON.stringify(get.body.subarray(0, 120).toString('latin1'))}`)
  }
  const post = await request(port, 'POST', UPLOAD_PATH, Buffer.alloc(UPLOAD_BYTES, 'x'))
  const want = uploadAnswer(UPLOAD_BYTES)
  if (post.status !== 200 || post.body.toString('latin1') !== want) {
    throw new Error(`${name} does not proxy POST ${UPLOAD_PATH}: status ${post.status}, body ` +
      `${JSON.stringify(post.body.subarray(0, 120).toString('latin1'))} (want 200, ${want})`)
  }
}
