/**
 * The zod building blocks every config shape shares: durations and sizes with units (units.ts parses them) and
 * HTTP tokens such as field names. schema.ts and rules-schema.ts both use these, so a duration means the same
 * everywhere and gives the same message when it is wrong.
 */
import { z } from 'zod'
import { parseDuration, parseSize } from './units.js'

/** A number, or a string with a unit, converted by `parse`; `message` says what was expected. */
function unit (parse: (v: string | number) => number | undefined, message: string) {
  return z.union([z.number(), z.string()], { error: message }).transform((v, ctx) => {
    const n = parse(v)
    if (n === undefined) {
      ctx.addIssue({ code: 'custom', message, input: v })
      return z.NEVER
    }
    return n
  })
}

/** RFC 9110 §5.6.2 token characters. */
export const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

export const token = z.string().regex(TOKEN, 'expected a token such as "Portico"')
export const fieldName = z.string().regex(TOKEN, 'expected a header field name')
export const duration = unit(parseDuration, 'expected a duration such as "5s", "250ms" or a number of milliseconds')
export const size = unit(parseSize, 'expected a size such as "16kb", "256mb" or a number of bytes')
