/**
 * A request body kept for replay while it streams: each attempt reads a fresh Readable that yields the chunks
 * recorded so far and then the rest of the client's body as it arrives, so a retry after a reset or a retried status
 * sends the same bytes again without waiting for the whole body first. Up to `limit` bytes are kept; past that the
 * body can no longer be replayed (the first attempt still streams all of it). The client's stream is never destroyed
 * by a failed attempt: undici destroys the attempt's Readable, not the source.
 */
import { Readable } from 'node:stream'

/** The Readable one attempt sends. */
class AttemptBody extends Readable {
  readonly #owner: ReplayBody

  constructor (owner: ReplayBody) {
    super()
    this.#owner = owner
  }

  override _read (): void {
    this.#owner.resumeSource()
  }

  override _destroy (err: Error | null, callback: (error?: Error | null) => void): void {
    this.#owner.detach(this)
    callback(err)
  }
}

/** Records a request body (up to `limit` bytes) and hands each attempt its own stream of it. */
export class ReplayBody {
  readonly #source: Readable
  readonly #limit: number
  #chunks: Buffer[] = []
  #size = 0
  #overflow = false
  #ended = false
  #error: Error | null = null
  #current: AttemptBody | null = null

  constructor (source: Readable, limit: number) {
    this.#source = source
    this.#limit = limit
    source.on('data', (chunk: Buffer) => {
      if (!this.#overflow) {
        this.#size += chunk.length
        if (this.#size > this.#limit) {
          this.#overflow = true
          this.#chunks = []
        } else {
          this.#chunks.push(chunk)
        }
      }
      const cur = this.#current
      if (cur === null || !cur.push(chunk)) source.pause()
    })
    source.once('end', () => {
      this.#ended = true
      this.#current?.push(null)
    })
    source.once('error', (err: Error) => {
      this.#error = err
      this.#current?.destroy(err)
    })
    source.pause()
  }

  /** Whether another attempt can be sent the same body. */
  get replayable (): boolean {
    return !this.#overflow && this.#error === null
  }

  /** A fresh stream for the next attempt (the previous attempt's is abandoned); null when not replayable. */
  next (): Readable | null {
    if (!this.replayable) return null
    const prev = this.#current
    const body = new AttemptBody(this)
    this.#current = body
    if (prev !== null && !prev.destroyed) prev.destroy()
    for (const c of this.#chunks) body.push(c)
    if (this.#ended) body.push(null)
    return body
  }

  /** Called by an attempt's stream when it wants more. */
  resumeSource (): void {
    if (!this.#ended) this.#source.resume()
  }

  /** An attempt's stream was destroyed: stop feeding it (the source waits for the next one). */
  detach (body: AttemptBody): void {
    if (this.#current === body) {
      this.#current = null
      this.#source.pause()
    }
  }
}
