/**
 * A response body shared by several readers, each at its own pace: the chunks arrive once (from the upstream) and
 * every reader is sent, in order, what it has not had yet, with its own backpressure. A reader that joins late starts
 * from the first chunk still held. Chunks every reader has had can be dropped (`trim`), which bounds memory when the
 * body is not being stored.
 */
import type { Delivery } from './deliver.js'

/** One reader of a feed. */
export interface FeedReader {
  /** Absolute index of the next chunk to send. */
  pos: number
  delivery: Delivery | null
  done: boolean
}

export class ChunkFeed {
  #chunks: Buffer[] = []
  /** Chunks already dropped from the front; reader positions are absolute. */
  #base = 0
  #bytes = 0
  #end: 'open' | 'complete' | Error = 'open'

  /** Bytes received so far. */
  get bytes (): number {
    return this.#bytes
  }

  push (chunk: Buffer): void {
    this.#bytes += chunk.length
    this.#chunks.push(chunk)
  }

  /** The body arrived whole: readers that catch up are ended. */
  complete (): void {
    this.#end = 'complete'
  }

  /** The body failed: readers that catch up are failed with `err`. */
  fail (err: Error): void {
    if (this.#end === 'open') this.#end = err
  }

  /** Sends a reader what it has not had yet; ends (or fails) it once it has everything of an ended body. */
  pump (r: FeedReader): void {
    const d = r.delivery
    if (r.done || d === null || d.paused) return
    while (r.pos < this.#base + this.#chunks.length) {
      if (!d.push(this.#chunks[r.pos++ - this.#base])) {
        if (d.aborted) {
          r.done = true
          return
        }
        d.whenResumed(() => this.pump(r))
        return
      }
    }
    if (this.#end === 'complete') {
      r.done = true
      d.end()
    } else if (this.#end !== 'open') {
      r.done = true
      d.fail(this.#end)
    }
  }

  /** Drops the chunks every active reader has already been sent. */
  trim (readers: readonly FeedReader[]): void {
    let min = this.#base + this.#chunks.length
    for (const r of readers) if (!r.done && r.pos < min) min = r.pos
    const n = min - this.#base
    if (n > 0) {
      this.#chunks.splice(0, n)
      this.#base = min
    }
  }
}
