/**
 * The HTTPS redirect of a cleartext listener with `redirectToHttps`: every request is answered 308 (RFC 9110
 * §15.4.9: method and body kept) to the same host on the https port, path and query byte-exact. Nothing is routed
 * or forwarded.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { ProxyError } from '../errors.js'
import { sendErrorResponse } from '../error-response.js'
import type { Logger } from '../observability/logger.js'
import { nextRequestId } from '../observability/request-id.js'
import { normalizeHost } from '../routing/host.js'

/** The request listener of a redirecting listener; `httpsPort` 443 is left out of the Location. */
export function redirectHandler (httpsPort: number, logger: Logger): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const name = normalizeHost(req.headers.host ?? '')
    if (name === null || name === '') {
      // RFC 9110 §7.2: a request without a valid Host gets 400.
      const err = new ProxyError('PORTICO_ERR_BAD_REQUEST', 'invalid Host')
      const reqId = nextRequestId()
      sendErrorResponse(res, err, reqId)
      logger.info({ reqId, method: req.method, path: req.url, status: err.status, error: err.code })
      return
    }
    const authority = httpsPort === 443 ? name : `${name.includes(':') && !name.startsWith('[') ? `[${name}]` : name}:${httpsPort}`
    const target = (req.url ?? '/').startsWith('/') ? req.url : '/'
    const location = `https://${authority}${target}`
    res.writeHead(308, { location, 'content-length': '0' })
    res.end()
    logger.info({ method: req.method, host: name, path: req.url, status: 308, location })
  }
}
