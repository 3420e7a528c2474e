/**
 * What every benchmark target serves: the origin's paths, the exact 1 KiB and 100 KiB bodies it answers with, the
 * upload size and the size of the 1 GiB transfers. The origin, the verifier and the load generators import these so they agree byte for byte.
 */

/** The small GET scenario: the origin answers it with `ONE_KIB`. */
export const GET_PATH = '/1k'

/** The upload scenario: the origin reads and discards the body, then answers `{"bytes":N}`. */
export const UPLOAD_PATH = '/upload'

/** Size of the request body in the upload scenario: 1 MiB. */
export const UPLOAD_BYTES = 1024 * 1024

/** The large GET scenario: the origin answers it with `HUNDRED_KIB`. */
export const LARGE_GET_PATH = '/100k'

/** The body of `GET /100k`: 102,400 bytes of the same printable pattern as `ONE_KIB`. */
export const HUNDRED_KIB: Buffer = Buffer.alloc(100 * 1024, 'portico-bench 0123456789abcdef\n')

/**
 * The 1 GiB transfer scenarios: the upload goes to `UPLOAD_PATH` (the origin counts it and answers
 * `{"bytes":N}`), the download is `GET /1g`, which the origin streams in `TRANSFER_CHUNK_BYTES` chunks of one
 * reused buffer with its Content-Length. Neither side holds the body in memory.
 */
export const DOWNLOAD_PATH = '/1g'

/** Size of the transferred body in the upload-1g and download-1g scenarios: 1 GiB. */
export const TRANSFER_BYTES = 1024 * 1024 * 1024

/** The chunk size both sides of a 1 GiB transfer write in. */
export const TRANSFER_CHUNK_BYTES = 64 * 1024

/** A header the origin sets on every answer, so a verifier can tell a proxied answer from the proxy's own. */
export const ORIGIN_HEADER = 'x-bench-origin'

/** The body of `GET /1k`: 1,024 bytes of a repeated printable pattern. */
export const ONE_KIB: Buffer = Buffer.alloc(1024, 'portico-bench 0123456789abcdef\n')

/** The origin's answer to an upload of `bytes` bytes. */
export function uploadAnswer (bytes: number): string {
  return `{"bytes":${bytes}}`
}

/**
 * The cache scenarios' paths. The origin answers each with `ONE_KIB` and `Cache-Control: max-age=CACHE_MAX_AGE`,
 * so every shared cache may store it: `CACHE_PATH` is the one object of the cache-hit scenario, and
 * `OBJECT_PREFIX + anything` the objects of the miss-heavy mix, whose repeated one is `HOT_PATH`.
 */
export const CACHE_PATH = '/cache/1k'
export const OBJECT_PREFIX = '/obj/'
export const HOT_PATH = `${OBJECT_PREFIX}hot`

/** The freshness lifetime the origin gives the cacheable paths, in seconds: longer than any run. */
export const CACHE_MAX_AGE = 3600

/** The header the nginx proxy_cache target adds with `$upstream_cache_status` (HIT, MISS, ...). */
export const NGINX_CACHE_HEADER = 'x-cache-status'

/** What `writeTransfer` writes to: an http.ServerResponse or an http.ClientRequest. */
interface TransferSink {
  readonly destroyed: boolean
  write (chunk: Buffer): boolean
  end (chunk: Buffer): unknown
  once (event: 'drain', listener: () => void): unknown
}

/** Writes `TRANSFER_BYTES` to `out` as repeats of `chunk`, waiting for 'drain' whenever `out` is full, then ends it. */
export function writeTransfer (out: TransferSink, chunk: Buffer): void {
  let left = TRANSFER_BYTES
  const write = (): void => {
    while (left > 0 && !out.destroyed) {
      const piece = left >= chunk.length ? chunk : chunk.subarray(0, left)
      left -= piece.length
      if (left === 0) {
        out.end(piece)
        return
      }
      if (!out.write(piece)) {
        out.once('drain', write)
        return
      }
    }
  }
  write()
}
