/**
 * W3C Trace Context (Recommendation, traceparent and tracestate): Portico as an intermediary that takes part in a
 * trace. A request with a valid `traceparent` continues its trace: the trace id and flags are kept, and the parent
 * id becomes a new span id for the hop to the node, so the node's spans hang under Portico's. A request without one
 * (or with an invalid one, or with two) starts a trace when `tracing.start` is on; its `tracestate` is then dropped
 * (§3.3.1: it belongs to the trace the client sent). The trace and span ids go to the access log.
 *
 * With `tracing` off (the default) nothing here runs: `traceparent` passes to the node as any other field.
 */
import { randomBytes } from 'node:crypto'
import { lowerAscii } from '../http/fields.js'

/** A parsed traceparent. */
export interface TraceParent {
  traceId: string
  parentId: string
  flags: number
}

const HEX = /^[0-9a-f]+$/
const ZERO_TRACE = '0'.repeat(32)
const ZERO_SPAN = '0'.repeat(16)

/** Parses a traceparent value (§3.2); null when it is not valid. Later versions are read as version 00 is (§4.3). */
export function parseTraceparent (value: string): TraceParent | null {
  const v = value.trim()
  if (v.length < 55) return null
  const version = v.slice(0, 2)
  if (!HEX.test(version) || version === 'ff') return null
  if (version === '00' ? v.length !== 55 : v.length > 55 && v[55] !== '-') return null
  if (v[2] !== '-' || v[35] !== '-' || v[52] !== '-') return null
  const traceId = v.slice(3, 35)
  const parentId = v.slice(36, 52)
  const flags = v.slice(53, 55)
  if (!HEX.test(traceId) || !HEX.test(parentId) || !HEX.test(flags)) return null
  if (traceId === ZERO_TRACE || parentId === ZERO_SPAN) return null
  // Version 00 defines the sampled bit (and level 2 the random bit); unknown bits of a later version are not kept.
  const f = Number.parseInt(flags, 16)
  return { traceId, parentId, flags: version === '00' ? f : f & 0x01 }
}

/** A span id: 8 random bytes, never all zero. */
function spanId (): string {
  let id = randomBytes(8).toString('hex')
  while (id === ZERO_SPAN) id = randomBytes(8).toString('hex')
  return id
}

/** The ids of the hop to the node, for the access log. */
export interface TraceIds {
  traceId: string
  spanId: string
}

/**
 * Sets the traceparent of an upstream request (`headers`, flat, in place) and returns the ids; null when the request
 * has no valid traceparent and `start` is off (the fields are then left as they are).
 */
export function propagate (headers: string[], tracing: { start: boolean, sampled: boolean }): TraceIds | null {
  let at = -1
  let count = 0
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i].length === 11 && lowerAscii(headers[i]) === 'traceparent') {
      at = i
      count++
    }
  }
  const parent = count === 1 ? parseTraceparent(headers[at + 1]) : null
  if (parent === null && !tracing.start) return null
  const span = spanId()
  if (parent !== null) {
    headers[at + 1] = `00-${parent.traceId}-${span}-${parent.flags.toString(16).padStart(2, '0')}`
    return { traceId: parent.traceId, spanId: span }
  }
  // A new trace: whatever traceparent and tracestate came are not of it.
  for (let i = headers.length - 2; i >= 0; i -= 2) {
    const n = headers[i].length === 11 || headers[i].length === 10 ? lowerAscii(headers[i]) : ''
    if (n === 'traceparent' || n === 'tracestate') headers.splice(i, 2)
  }
  let traceId = randomBytes(16).toString('hex')
  while (traceId === ZERO_TRACE) traceId = randomBytes(16).toString('hex')
  headers.push('traceparent', `00-${traceId}-${span}-${tracing.sampled ? '01' : '00'}`)
  return { traceId, spanId: span }
}
