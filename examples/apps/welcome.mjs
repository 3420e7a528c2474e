// The demo upstream behind the bundled portico.yaml: an in-process request listener (no port of its own).
// GET /          a short page about what just happened
// GET /echo/...  JSON of the request as the upstream saw it (method, path, headers incl. X-Forwarded-*)
// GET /healthz   "ok"
export default function welcome (req, res) {
  if (req.url === '/healthz') {
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.end('ok\n')
    return
  }
  if (req.url.startsWith('/echo')) {
    const chunks = []
    req.on('data', (c) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({
        method: req.method,
        path: req.url,
        httpVersion: req.httpVersion,
        headers: req.headers,
        bodyBytes: body.length
      }, null, 2) + '\n')
    })
    return
  }
  if (req.url !== '/' && req.url !== '/index.html') {
    res.writeHead(404, { 'content-type': 'text/plain' })
    res.end('not found\n')
    return
  }
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
  res.end(`<!doctype html>
<title>Portico is running</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:3em auto;padding:0 1em}code{background:#f3f3f3;padding:.1em .3em}</style>
<h1>Portico is running</h1>
<p>This page came from an <b>in-process upstream</b> (<code>examples/apps/welcome.mjs</code>), routed by
<code>portico.yaml</code> through the same pipeline a remote node gets.</p>
<p>Host you asked for: <code>${escapeHtml(req.headers['x-forwarded-host'] ?? '')}</code>; your address as forwarded:
<code>${escapeHtml(req.headers['x-forwarded-for'] ?? '')}</code>.</p>
<ul>
<li><a href="/echo/hello?x=1">/echo/hello?x=1</a>: the request as the upstream received it</li>
<li><a href="/healthz">/healthz</a></li>
</ul>
<p>Edit <code>portico.yaml</code> to route hosts and paths to your own servers, then restart (or send SIGHUP).</p>
`)
}

function escapeHtml (s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c])
}
