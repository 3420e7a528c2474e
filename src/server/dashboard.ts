/**
 * The dashboard: one self-contained HTML page (inline CSS and JS, nothing fetched from elsewhere) that the admin
 * listener serves on `GET /`, and the sign-in page it answers 401 with when a token is required. The page polls the
 * admin API itself (`/metrics`, `/pools`, `/routes`) and computes what it shows: rates and percentiles are deltas
 * between scrapes it keeps (a few, bounded), so the server keeps no state for it.
 *
 * Content-Security-Policy: `default-src 'none'`, the one inline script and the one inline style allowed by their
 * SHA-256 hashes (computed here from the strings served), `connect-src 'self'` for the polls, `form-action 'self'`
 * for the sign-in form, no framing. No 'unsafe-inline', no eval, no other origin.
 */
import { createHash } from 'node:crypto'

/** Milliseconds between polls. */
export const POLL_MS = 1000

const CSS = String.raw`
:root { color-scheme: light dark; --fg: #1d2330; --muted: #667085; --bg: #f6f7f9; --card: #fff; --line: #e3e6eb; --ok: #0a7d38; --bad: #c0262d; --warn: #a15c00; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e8ec; --muted: #98a2b3; --bg: #14171c; --card: #1c2027; --line: #2c323c; --ok: #3ccf7a; --bad: #ff6b6b; --warn: #f2b84b; } }
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; gap: 16px; align-items: baseline; flex-wrap: wrap; padding: 12px 20px; border-bottom: 1px solid var(--line); background: var(--card); }
h1 { font-size: 18px; margin: 0; }
h2 { font-size: 15px; margin: 0 0 8px; }
main { display: grid; grid-template-columns: repeat(auto-fit, minmax(360px, 1fr)); gap: 16px; padding: 16px 20px; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 12px 14px; overflow-x: auto; }
section.wide { grid-column: 1 / -1; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: right; padding: 3px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
th:first-child, td:first-child, td.text { text-align: left; }
th { color: var(--muted); font-weight: 600; }
.muted, .note { color: var(--muted); }
.note { font-size: 12px; margin: 6px 0 0; }
.ok { color: var(--ok); } .bad { color: var(--bad); } .warn { color: var(--warn); }
.status { font-weight: 600; }
.kv { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 0; font-variant-numeric: tabular-nums; }
.kv dt { color: var(--muted); } .kv dd { margin: 0; }
.big { font-size: 20px; font-weight: 600; }
.pool { margin: 0 0 10px; }
ul.log { list-style: none; margin: 6px 0 0; padding: 0; font-variant-numeric: tabular-nums; }
ul.log li { padding: 2px 0; border-bottom: 1px solid var(--line); }
form.signin { display: flex; gap: 8px; flex-wrap: wrap; align-items: center; }
form.signin input { font: inherit; padding: 4px 8px; min-width: 260px; }
form.signin button { font: inherit; padding: 4px 12px; }
.box { max-width: 560px; margin: 64px auto; background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 20px; }
`

const JS = String.raw`
(function () {
  'use strict'
  var POLL_MS = ${POLL_MS}
  var WINDOW = 5
  var MAX_ROUTES = 50
  var MAX_POOLS = 50
  var MAX_NODES = 20
  var MAX_RELOADS = 10
  var ROUTES_EVERY = 10
  var KEEP = {
    portico_requests_total: 1, portico_request_duration_seconds_bucket: 1, portico_errors_total: 1,
    portico_cache_requests_total: 1, portico_cache_operations_total: 1, portico_config_reloads_total: 1,
    portico_config_last_reload_success_timestamp_seconds: 1, portico_process_resident_memory_bytes: 1,
    portico_nodejs_heap_size_used_bytes: 1, portico_nodejs_eventloop_lag_seconds: 1,
    portico_nodejs_eventloop_lag_p99_seconds: 1, portico_process_cpu_seconds_total: 1,
    portico_process_start_time_seconds: 1, portico_requests_in_flight: 1, portico_connections_active: 1
  }

  var history = []
  var reloads = []
  var routeTable = null
  var polls = 0
  var stopped = false

  function $ (id) { return document.querySelector('[data-testid="' + id + '"]') }
  function el (tag, attrs, children) {
    var e = document.createElement(tag)
    if (attrs) for (var k in attrs) if (attrs[k] !== undefined && attrs[k] !== null) e.setAttribute(k, attrs[k])
    if (children !== undefined) {
      if (!Array.isArray(children)) children = [children]
      for (var i = 0; i < children.length; i++) {
        var c = children[i]
        if (c === null || c === undefined) continue
        e.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)))
      }
    }
    return e
  }
  function setText (id, text) { var e = $(id); if (e && e.textContent !== text) e.textContent = text }
  function replace (id, children) {
    var e = $(id)
    while (e.firstChild) e.removeChild(e.firstChild)
    for (var i = 0; i < children.length; i++) e.appendChild(children[i])
  }

  // Prometheus text format: only the families the page shows are kept.
  function parseLabels (s) {
    var out = {}
    var re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g
    var m
    while ((m = re.exec(s)) !== null) out[m[1]] = m[2].replace(/\\(.)/g, function (_, c) { return c === 'n' ? '\n' : c })
    return out
  }
  function parseMetrics (text) {
    var out = {}
    var lines = text.split('\n')
    for (var i = 0; i < lines.length; i++) {
      var line = lines[i]
      if (line === '' || line.charAt(0) === '#') continue
      var brace = line.indexOf('{')
      var space = line.indexOf(' ')
      var name, labels, rest
      if (brace !== -1 && (space === -1 || brace < space)) {
        var close = line.lastIndexOf('}')
        name = line.slice(0, brace)
        labels = line.slice(brace + 1, close)
        rest = line.slice(close + 1)
      } else {
        name = line.slice(0, space)
        labels = ''
        rest = line.slice(space)
      }
      if (KEEP[name] !== 1) continue
      var raw = rest.trim().split(' ')[0]
      var v = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw)
      if (out[name] === undefined) out[name] = []
      out[name].push({ l: labels === '' ? {} : parseLabels(labels), v: v })
    }
    return out
  }
  function each (list, fn) { if (list) for (var i = 0; i < list.length; i++) fn(list[i]) }
  function one (m, name) { var l = m[name]; return l && l.length > 0 ? l[0].v : null }

  // One scrape reduced to what the page computes with: counters per route, cache, reloads, process.
  function digest (m, t) {
    var routes = {}
    function route (name) { return routes[name] || (routes[name] = { total: 0, s5xx: 0, errors: 0, buckets: {} }) }
    each(m.portico_requests_total, function (s) { var r = route(s.l.route); r.total += s.v; if (s.l.status_class === '5xx') r.s5xx += s.v })
    each(m.portico_errors_total, function (s) { route(s.l.route).errors += s.v })
    each(m.portico_request_duration_seconds_bucket, function (s) { route(s.l.route).buckets[s.l.le] = s.v })
    var cache = null
    each(m.portico_cache_requests_total, function (s) { cache = cache || {}; cache[s.l.result] = s.v })
    var ops = null
    each(m.portico_cache_operations_total, function (s) { ops = ops || {}; ops[s.l.operation] = s.v })
    var rl = {}
    each(m.portico_config_reloads_total, function (s) { rl[s.l.result + ' ' + s.l.source] = s.v })
    var conns = null
    each(m.portico_connections_active, function (s) { conns = (conns || 0) + s.v })
    return {
      t: t,
      routes: routes,
      cache: cache,
      ops: ops,
      reloads: rl,
      lastReload: one(m, 'portico_config_last_reload_success_timestamp_seconds'),
      rss: one(m, 'portico_process_resident_memory_bytes'),
      heap: one(m, 'portico_nodejs_heap_size_used_bytes'),
      lag: one(m, 'portico_nodejs_eventloop_lag_seconds'),
      lagP99: one(m, 'portico_nodejs_eventloop_lag_p99_seconds'),
      cpu: one(m, 'portico_process_cpu_seconds_total'),
      start: one(m, 'portico_process_start_time_seconds'),
      inflight: one(m, 'portico_requests_in_flight'),
      conns: conns
    }
  }

  // A counter's increase; a counter that went down was reset (the process restarted): its value is the increase.
  function inc (now, before) {
    var d = now - (before || 0)
    return d < 0 ? now : d
  }

  // The q-quantile of the observations between two scrapes of one histogram, interpolated linearly inside the
  // bucket it falls in (as Prometheus' histogram_quantile does). null without observations.
  function quantile (q, now, before) {
    var bounds = []
    for (var k in now) bounds.push({ key: k, le: k === '+Inf' ? Infinity : Number(k) })
    bounds.sort(function (a, b) { return a.le - b.le })
    var counts = []
    var reset = false
    for (var i = 0; i < bounds.length; i++) {
      var d = now[bounds[i].key] - ((before && before[bounds[i].key]) || 0)
      if (d < 0) reset = true
      counts.push(d)
    }
    if (reset) for (var j = 0; j < bounds.length; j++) counts[j] = now[bounds[j].key]
    var total = counts.length > 0 ? counts[counts.length - 1] : 0
    if (!(total > 0)) return null
    var rank = q * total
    for (var n = 0; n < bounds.length; n++) {
      if (counts[n] < rank) continue
      var lower = n === 0 ? 0 : bounds[n - 1].le
      var upper = bounds[n].le
      if (upper === Infinity) return lower
      var below = n === 0 ? 0 : counts[n - 1]
      var inside = counts[n] - below
      return inside <= 0 ? upper : lower + (upper - lower) * (rank - below) / inside
    }
    return null
  }

  function fmtNum (v, digits) {
    if (v === null || v === undefined || isNaN(v)) return '–'
    return v.toFixed(digits)
  }
  function fmtRate (v) { return v === null ? '–' : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2) }
  function fmtMs (s) {
    if (s === null) return '–'
    var ms = s * 1000
    return (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2)) + ' ms'
  }
  function fmtPct (v) { return v === null ? '–' : (v === 0 || v === 1 ? String(v * 100) : (v * 100).toFixed(1)) + ' %' }
  function fmtBytes (b) {
    if (b === null) return '–'
    var u = ['B', 'KiB', 'MiB', 'GiB']
    var i = 0
    while (b >= 1024 && i < u.length - 1) { b /= 1024; i++ }
    return b.toFixed(i === 0 ? 0 : 1) + ' ' + u[i]
  }
  function fmtAgo (sec) {
    if (sec < 60) return Math.max(0, Math.round(sec)) + ' s ago'
    if (sec < 3600) return Math.round(sec / 60) + ' min ago'
    return (sec / 3600).toFixed(1) + ' h ago'
  }
  function fmtTime (ms) { return new Date(ms).toLocaleTimeString() }

  // Route names as the metrics label them ("host1,host2/path"), from /routes: one entry per host key and path.
  function configuredRoutes () {
    var out = []
    if (!routeTable) return out
    for (var i = 0; i < routeTable.length && out.length < 1000; i++) {
      var h = routeTable[i]
      for (var j = 0; j < h.paths.length; j++) out.push({ host: h.host, path: h.paths[j].path, upstream: h.paths[j].upstream })
    }
    return out
  }
  function covers (name, host, path) {
    var slash = name.indexOf('/')
    var hosts = (slash === -1 ? name : name.slice(0, slash)).split(',')
    var p = slash === -1 ? '/' : name.slice(slash)
    return p === path && hosts.indexOf(host) !== -1
  }

  function renderRoutes (cur, old, dt) {
    var names = {}
    for (var n in cur.routes) names[n] = { upstream: null }
    var conf = configuredRoutes()
    for (var i = 0; i < conf.length; i++) {
      var c = conf[i]
      var found = null
      for (var name in names) if (covers(name, c.host, c.path)) { found = name; break }
      if (found === null) names[c.host + (c.path === '/' ? '' : c.path)] = { upstream: c.upstream }
      else if (names[found].upstream === null) names[found].upstream = c.upstream
    }
    var rows = []
    var sumRate = 0
    var sumTotal = 0
    for (var rn in names) {
      var r = cur.routes[rn] || { total: 0, s5xx: 0, errors: 0, buckets: {} }
      var o = old ? (old.routes[rn] || { total: 0, s5xx: 0, errors: 0, buckets: {} }) : null
      var d = o ? inc(r.total, o.total) : null
      var rate = o && dt > 0 ? d / dt : null
      sumTotal += r.total
      if (rate !== null) sumRate += rate
      rows.push({
        name: rn,
        upstream: names[rn].upstream,
        total: r.total,
        rate: rate,
        s5xx: o && d > 0 ? inc(r.s5xx, o.s5xx) / d : (o ? 0 : null),
        errors: o && d > 0 ? inc(r.errors, o.errors) / d : (o ? 0 : null),
        p50: o ? quantile(0.5, r.buckets, o.buckets) : null,
        p90: o ? quantile(0.9, r.buckets, o.buckets) : null,
        p99: o ? quantile(0.99, r.buckets, o.buckets) : null
      })
    }
    rows.sort(function (a, b) { return (b.rate || 0) - (a.rate || 0) || b.total - a.total || (a.name < b.name ? -1 : 1) })
    var shown = rows.slice(0, MAX_ROUTES)
    var trs = shown.map(function (x) {
      return el('tr', { 'data-testid': 'route-row', 'data-route': x.name }, [
        el('td', { 'data-testid': 'route-name', title: x.upstream ? 'upstream: ' + x.upstream : null }, x.name),
        el('td', { 'data-testid': 'route-rps' }, fmtRate(x.rate)),
        el('td', { 'data-testid': 'route-count' }, String(x.total)),
        el('td', { 'data-testid': 'route-5xx', class: x.s5xx > 0 ? 'bad' : null }, fmtPct(x.s5xx)),
        el('td', { 'data-testid': 'route-errors', class: x.errors > 0 ? 'warn' : null }, fmtPct(x.errors)),
        el('td', { 'data-testid': 'route-p50' }, fmtMs(x.p50)),
        el('td', { 'data-testid': 'route-p90' }, fmtMs(x.p90)),
        el('td', { 'data-testid': 'route-p99' }, fmtMs(x.p99))
      ])
    })
    replace('routes-body', trs)
    setText('routes-more', rows.length > shown.length ? '+' + (rows.length - shown.length) + ' more routes (the busiest are shown)' : '')
    setText('total-rps', old ? fmtRate(sumRate) : '–')
    setText('total-requests', String(sumTotal))
  }

  function renderPools (pools) {
    var out = []
    for (var i = 0; i < pools.length && i < MAX_POOLS; i++) {
      var p = pools[i]
      var nodes = []
      for (var j = 0; j < p.nodes.length && j < MAX_NODES; j++) {
        var nd = p.nodes[j]
        nodes.push(el('tr', { 'data-testid': 'node', 'data-node': nd.id }, [
          el('td', { class: 'text' }, nd.id),
          el('td', { 'data-testid': 'node-status', class: nd.status === 'healthy' ? 'ok' : nd.status === 'draining' ? 'warn' : 'bad' }, nd.status),
          el('td', null, String(nd.weight)),
          el('td', null, String(nd.inflight)),
          el('td', null, String(nd.ejections)),
          el('td', { class: 'text muted' }, nd.lastError || '')
        ]))
      }
      var s = p.stats
      out.push(el('div', { class: 'pool', 'data-testid': 'pool', 'data-pool': p.name }, [
        el('div', null, [el('strong', null, p.name), ' ', el('span', { class: 'muted' },
          p.policy + ' · in flight ' + p.inflight + ' · queued ' + p.queued + ' · requests ' + s.requests + ' · retries ' + s.retries +
          ' · 503s ' + (s.noHealthyUpstream + s.overloaded) + ' · ejections ' + s.ejections)]),
        el('table', null, [
          el('thead', null, el('tr', null, ['node', 'status', 'weight', 'in flight', 'ejections', 'last error'].map(function (h) { return el('th', null, h) }))),
          el('tbody', null, nodes)
        ]),
        p.nodes.length > MAX_NODES ? el('p', { class: 'note' }, '+' + (p.nodes.length - MAX_NODES) + ' more nodes') : null
      ]))
    }
    if (pools.length > MAX_POOLS) out.push(el('p', { class: 'note' }, '+' + (pools.length - MAX_POOLS) + ' more pools'))
    if (pools.length === 0) out.push(el('p', { class: 'muted' }, 'no pools (every route answers by itself)'))
    replace('pools', out)
  }

  function renderCache (cur, old) {
    if (cur.cache === null && cur.ops === null) {
      setText('cache-hit-ratio', '–')
      setText('cache-window', '–')
      setText('cache-note', 'no request on a cached route yet (or no cache)')
      replace('cache-ops', [])
      return
    }
    setText('cache-note', '')
    var total = 0
    var totalOld = 0
    for (var k in cur.cache) {
      total += cur.cache[k]
      if (old && old.cache) totalOld += old.cache[k] || 0
    }
    var hits = cur.cache ? (cur.cache.hit || 0) : 0
    setText('cache-hit-ratio', total > 0 ? fmtPct(hits / total) + ' of ' + total : '–')
    if (old && old.cache) {
      var dTotal = inc(total, totalOld)
      var dHits = inc(hits, old.cache.hit || 0)
      setText('cache-window', dTotal > 0 ? fmtPct(dHits / dTotal) + ' of ' + dTotal : 'no requests')
    } else setText('cache-window', '–')
    var items = []
    for (var op in cur.ops) items.push(el('tr', null, [el('td', null, op), el('td', { 'data-testid': 'cache-op-' + op }, String(cur.ops[op]))]))
    replace('cache-ops', items)
  }

  function renderReloads (cur, prev) {
    var ok = 0
    var failed = 0
    for (var k in cur.reloads) {
      if (k.indexOf('ok ') === 0) ok += cur.reloads[k]
      else failed += cur.reloads[k]
      var before = prev ? (prev.reloads[k] || 0) : null
      if (before !== null && cur.reloads[k] > before) {
        var parts = k.split(' ')
        reloads.unshift({ at: Date.now(), result: parts[0], source: parts[1], n: cur.reloads[k] - before })
      }
    }
    if (reloads.length > MAX_RELOADS) reloads.length = MAX_RELOADS
    setText('reload-ok', String(ok))
    setText('reload-failed', String(failed))
    setText('reload-last', cur.lastReload === null ? '–' : fmtTime(cur.lastReload * 1000) + ' (' + fmtAgo(Date.now() / 1000 - cur.lastReload) + ')')
    replace('reload-list', reloads.length === 0
      ? [el('li', { class: 'muted' }, 'none since this page opened')]
      : reloads.map(function (r) {
        return el('li', { 'data-testid': 'reload-entry', class: r.result === 'ok' ? 'ok' : 'bad' },
          fmtTime(r.at) + ' · ' + r.source + ' · ' + r.result + (r.n > 1 ? ' ×' + r.n : ''))
      }))
  }

  function renderProcess (cur, old, dt) {
    setText('proc-rss', fmtBytes(cur.rss))
    setText('proc-heap', fmtBytes(cur.heap))
    setText('proc-lag', fmtMs(cur.lag))
    setText('proc-lag-p99', fmtMs(cur.lagP99))
    setText('proc-cpu', old && old.cpu !== null && cur.cpu !== null && dt > 0 ? fmtPct(inc(cur.cpu, old.cpu) / dt) : '–')
    setText('proc-uptime', cur.start === null ? '–' : fmtAgo(Date.now() / 1000 - cur.start).replace(' ago', ''))
    setText('proc-inflight', cur.inflight === null ? '–' : String(cur.inflight))
    setText('proc-conns', cur.conns === null ? '–' : String(cur.conns))
  }

  function unauthorized () {
    stopped = true
    setText('status', 'sign-in needed')
    $('status').className = 'status bad'
    $('auth-needed').hidden = false
  }

  async function get (path, json) {
    var ctl = new AbortController()
    var timer = setTimeout(function () { ctl.abort() }, 5000)
    try {
      var res = await fetch(path, { cache: 'no-store', credentials: 'same-origin', signal: ctl.signal, headers: { accept: json ? 'application/json' : 'text/plain' } })
      if (res.status === 401 || res.status === 403) return { auth: true }
      if (!res.ok) return { status: res.status }
      return { body: json ? await res.json() : await res.text() }
    } finally {
      clearTimeout(timer)
    }
  }

  async function tick () {
    if (document.hidden) return
    var wantRoutes = routeTable === null || polls % ROUTES_EVERY === 0
    var results = await Promise.all([get('/metrics', false), get('/pools', true), wantRoutes ? get('/routes', true) : null])
    var m = results[0]
    var p = results[1]
    var r = results[2]
    if (m.auth || p.auth || (r && r.auth)) return unauthorized()
    if (r && r.body) routeTable = r.body
    if (p.body) renderPools(p.body)
    if (m.status === 404) {
      setText('metrics-note', 'metrics are off (admin.metrics: false): only pools are shown')
    } else if (m.body !== undefined) {
      setText('metrics-note', '')
      var cur = digest(parseMetrics(m.body), performance.now())
      var prev = history.length > 0 ? history[history.length - 1] : null
      // A reload may change the routes: read the table again.
      if (prev && JSON.stringify(prev.reloads) !== JSON.stringify(cur.reloads)) routeTable = null
      history.push(cur)
      if (history.length > WINDOW + 1) history.shift()
      var old = history.length > 1 ? history[0] : null
      var dt = old ? (cur.t - old.t) / 1000 : 0
      renderRoutes(cur, old, dt)
      renderCache(cur, old)
      renderReloads(cur, prev)
      renderProcess(cur, old, dt)
    }
    polls++
    setText('polls', String(polls))
    setText('updated', new Date().toLocaleTimeString())
    setText('status', m.status !== undefined && m.status !== 404 ? 'error: /metrics answered ' + m.status : p.status !== undefined ? 'error: /pools answered ' + p.status : 'live')
    $('status').className = 'status ' + ($('status').textContent === 'live' ? 'ok' : 'bad')
  }

  async function loop () {
    try {
      await tick()
    } catch (err) {
      setText('status', 'error: ' + (err && err.message ? err.message : String(err)))
      $('status').className = 'status bad'
    }
    if (!stopped) setTimeout(loop, POLL_MS)
  }
  loop()
})()
`

const SIGNIN_FORM = `<form class="signin" method="post" data-testid="login-form">
<label for="token">Admin token</label>
<input id="token" name="token" type="password" autocomplete="off" required data-testid="login-token">
<button type="submit" data-testid="login-submit">Sign in</button>
</form>`

const DASHBOARD_BODY = `<header>
<h1>Portico</h1>
<span data-testid="status" class="status muted">connecting…</span>
<span class="muted">updated <span data-testid="updated">–</span> · polls <span data-testid="polls">0</span> · every ${POLL_MS / 1000} s</span>
<span class="muted" data-testid="metrics-note"></span>
</header>
<section class="box" data-testid="auth-needed" hidden>
<h2>Sign-in needed</h2>
<p>The admin API answered 401: the session ended (it lasts 12 hours and does not survive a restart) or a token is required.</p>
${SIGNIN_FORM}
</section>
<main>
<section class="wide">
<h2>Routes</h2>
<dl class="kv"><dt>requests/s (all routes)</dt><dd class="big" data-testid="total-rps">–</dd><dt>requests since start</dt><dd data-testid="total-requests">–</dd></dl>
<table data-testid="routes-table">
<thead><tr><th>route</th><th>req/s</th><th>requests</th><th>5xx</th><th>Portico errors</th><th>p50</th><th>p90</th><th>p99</th></tr></thead>
<tbody data-testid="routes-body"></tbody>
</table>
<p class="note" data-testid="routes-more"></p>
<p class="note">Rates, error shares and percentiles cover the last ${5 * POLL_MS / 1000} s; percentiles are estimated from the
<code>portico_request_duration_seconds</code> buckets (linear inside a bucket). "Portico errors" are answers Portico made itself
(no route, refused, upstream failures…; <code>portico_errors_total</code>). "(none)" counts requests that matched no route.</p>
</section>
<section class="wide">
<h2>Pools and nodes</h2>
<div data-testid="pools"><p class="muted">–</p></div>
</section>
<section>
<h2>Cache</h2>
<dl class="kv"><dt>hit ratio since start</dt><dd data-testid="cache-hit-ratio">–</dd><dt>hit ratio, last ${5 * POLL_MS / 1000} s</dt><dd data-testid="cache-window">–</dd></dl>
<p class="note" data-testid="cache-note"></p>
<table><tbody data-testid="cache-ops"></tbody></table>
</section>
<section>
<h2>Config reloads</h2>
<dl class="kv"><dt>succeeded</dt><dd data-testid="reload-ok">–</dd><dt>failed</dt><dd data-testid="reload-failed">–</dd><dt>config in force since</dt><dd data-testid="reload-last">–</dd></dl>
<ul class="log" data-testid="reload-list"></ul>
</section>
<section>
<h2>Process</h2>
<dl class="kv">
<dt>resident memory</dt><dd data-testid="proc-rss">–</dd>
<dt>heap used</dt><dd data-testid="proc-heap">–</dd>
<dt>event-loop lag</dt><dd data-testid="proc-lag">–</dd>
<dt>event-loop lag p99</dt><dd data-testid="proc-lag-p99">–</dd>
<dt>CPU</dt><dd data-testid="proc-cpu">–</dd>
<dt>uptime</dt><dd data-testid="proc-uptime">–</dd>
<dt>requests in flight</dt><dd data-testid="proc-inflight">–</dd>
<dt>client connections</dt><dd data-testid="proc-conns">–</dd>
</dl>
</section>
</main>`

function hash (text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`
}

function htmlDocument (title: string, body: string, script: boolean): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${title}</title>
<style>${CSS}</style>
</head>
<body>
${body}
${script ? `<script>${JS}</script>\n` : ''}</body>
</html>
`
}

const COMMON_CSP = `default-src 'none'; style-src ${hash(CSS)}; form-action 'self'; base-uri 'none'; frame-ancestors 'none'`

/** The headers every page carries (the CSP says what the page may load and run). */
function headers (csp: string, body: string): Record<string, string> {
  return {
    'content-type': 'text/html; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
    'content-security-policy': csp,
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer'
  }
}

const DASHBOARD = htmlDocument('Portico dashboard', DASHBOARD_BODY, true)

/** The dashboard page and its headers. */
export const dashboardPage = {
  body: DASHBOARD,
  headers: headers(`${COMMON_CSP}; script-src ${hash(JS)}; connect-src 'self'`, DASHBOARD)
}

const SIGNIN = (message: string): string => htmlDocument('Portico: sign in', `<div class="box">
<h1>Portico admin</h1>
<p>This admin API needs its token (<code>admin.tokenEnv</code>). Signing in sets a session cookie for this browser (12 hours); the
token itself is not stored.</p>
${message === '' ? '' : `<p class="bad" data-testid="login-error">${message}</p>\n`}${SIGNIN_FORM}
</div>`, false)

const SIGNIN_PAGES = {
  ask: SIGNIN(''),
  wrong: SIGNIN('That token is not the admin token.')
}

/** The sign-in page (answered with 401): a form for the token, with or without "wrong token". */
export function signInPage (wrong: boolean): { body: string, headers: Record<string, string> } {
  const body = wrong ? SIGNIN_PAGES.wrong : SIGNIN_PAGES.ask
  return { body, headers: { ...headers(COMMON_CSP, body), 'www-authenticate': 'Bearer' } }
}
