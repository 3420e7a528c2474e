/**
 * Header edits (`headers.request` / `headers.response`: set, add, remove) applied to a flat field list in place,
 * in that documented order: remove, then set (replacing), then add (appending). Values are compiled templates
 * (placeholders.ts); a value that renders to "" is not written (a placeholder with nothing to say adds no empty
 * field). A value that is not a valid field value (CR, LF, NUL after rendering) is dropped, never sent.
 */
import type { ResolvedHeaderEdits } from '../config/resolved.js'
import { replaceField, lowerAscii } from '../http/fields.js'
import type { PlaceholderContext } from './placeholders.js'

/** RFC 9110 §5.5: no CR, LF or NUL in a field value. */
const INVALID_VALUE = /[\r\n\0]/

/** Applies `edits` to `headers`; `ctx` is asked for only when a value has placeholders. */
export function applyHeaderEdits (headers: string[], edits: ResolvedHeaderEdits, ctx: () => PlaceholderContext): void {
  if (edits.remove.length > 0) {
    for (let i = headers.length - 2; i >= 0; i -= 2) {
      if (edits.remove.includes(lowerAscii(headers[i]))) headers.splice(i, 2)
    }
  }
  for (const [name, t] of edits.set) {
    const value = t.literal ?? t.render(ctx())
    replaceField(headers, name, value === '' || INVALID_VALUE.test(value) ? null : value)
  }
  for (const [name, t] of edits.add) {
    const value = t.literal ?? t.render(ctx())
    if (value !== '' && !INVALID_VALUE.test(value)) headers.push(name, value)
  }
}
