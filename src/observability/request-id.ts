/**
 * Exchange ids: short, unique within the process and cheap (a random per-process prefix and a counter), e.g.
 * "1f2e3d4c-1a". The same id is `X-Request-Id` on error responses and `reqId` in the access log.
 */
import { randomBytes } from 'node:crypto'

const ID_PREFIX = randomBytes(4).toString('hex')
let idCounter = 0

/** The next exchange id. */
export function nextRequestId (): string {
  idCounter = (idCounter + 1) % Number.MAX_SAFE_INTEGER
  return `${ID_PREFIX}-${idCounter.toString(36)}`
}
