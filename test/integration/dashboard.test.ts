/**
 * The dashboard (GET / on the admin listener) in a real Chromium driven by playwright-core: the page runs under
 * its Content-Security-Policy, and what it shows follows the traffic while bounded load runs (request counts, rates,
 * percentiles, 404s, node health, the cache hit ratio, a reload, the process); with `admin.tokenEnv`, a browser
 * without the token gets the sign-in form, signs in with `?token=` or the form, and a wrong token is refused.
 *
 * Chromium comes from the system (`apt-get install chromium`; CHROMIUM_PATH to use another). Without it the tests
 * skip with a banner, except under CI=true, where they fail.
 */
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { chromium, type Browser, type Page } from 'playwright-core'
import { createProxy, type PorticoConfig, type Proxy } from '../../src/index.js'
import { startOrigin, send } from '../helpers/servers.js'
import { load } from '../helpers/load.js'
import { eventually } from '../helpers/poll.js'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

interface Ctx { after: (fn: () => Promise<void>) => void, skip: (message?: string) => void, diagnostic: (message: string) => void }

let browser: Promise<Browser> | null = null
after(async () => { if (browser !== null) await (await browser).close() })

/** The shared browser, or null (the test skipped) when Chromium is missing; under CI=true a missing Chromium fails. */
async function chromiumOrSkip (t: Ctx): Promise<Browser | null> {
  if (!existsSync(CHROMIUM)) {
    const why = `Chromium not found at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH): the dashboard browser test did not run`
    if (process.env.CI === 'true') assert.fail(`${why}; CI=true requires it`)
    console.error(`\n${'!'.repeat(100)}\n!! SKIPPED: ${why}\n${'!'.repeat(100)}\n`)
    t.skip(why)
    return null
  }
  browser ??= chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], headless: true })
  return await browser
}

interface Running { proxy: Proxy, url: string, admin: string, config: PorticoConfig }

async function start (t: Ctx, config: PorticoConfig): Promise<Running> {
  const full: PorticoConfig = { listen: [{ host: '127.0.0.1', port: 0 }], admin: { port: 0 }, ...config }
  const proxy = createProxy(full)
  const [addr] = await proxy.listen()
  t.after(() => proxy.close({ drainTimeout: 500 }))
  return { proxy, url: addr.url, admin: proxy.adminAddress!.url, config: full }
}

/** What the page shows in the element with that data-testid (inside `within`, a CSS selector, when given). */
async function shown (page: Page, testid: string, within = ''): Promise<string> {
  const text = await page.locator(`${within} [data-testid="${testid}"]`.trim()).first().textContent({ timeout: 1000 })
  return (text ?? '').trim()
}

const row = (route: string): string => `[data-testid="route-row"][data-route="${route}"]`

/** Collects what would say the page does not run as it should: script errors and CSP violations. */
function watch (page: Page): string[] {
  const problems: string[] = []
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`))
  page.on('console', (m) => { if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) problems.push(`console: ${m.text()}`) })
  return problems
}

test('the dashboard follows the traffic: counts, rates, percentiles, 404s, node health, cache, a reload, the process', async (t) => {
  const b = await chromiumOrSkip(t)
  if (b === null) return
  const origin = await startOrigin((req, res) => {
    req.resume()
    if (req.url?.startsWith('/cached') === true) res.setHeader('cache-control', 'max-age=60')
    res.end('ok')
  })
  t.after(() => origin.close())
  const p = await start(t, {
    routes: [
      { host: '*', path: '/app', upstream: [origin.url] },
      { host: '*', path: '/cached', upstream: [origin.url], cache: true }
    ]
  })

  // The page as served: one response, its own CSP, nothing inline allowed but what the hashes name.
  const head = await send(`${p.admin}/`, { method: 'HEAD' })
  assert.equal(head.status, 200)
  assert.equal(head.body.length, 0)
  const csp = String(head.headers['content-security-policy'])
  assert.match(csp, /default-src 'none'/)
  assert.match(csp, /script-src 'sha256-[A-Za-z0-9+/=]+'/)
  assert.match(csp, /connect-src 'self'/)
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:/)
  const html = (await send(`${p.admin}/dashboard`)).body.toString()
  assert.doesNotMatch(html, /<script[^>]+src=|<link[^>]+href=|https?:\/\//, 'nothing is loaded from elsewhere')

  const context = await b.newContext()
  t.after(() => context.close())
  const page = await context.newPage()
  const problems = watch(page)
  const opened = await page.goto(`${p.admin}/`)
  assert.equal(opened?.status(), 200)

  await eventually('the page polls and says it is live', async () => await shown(page, 'status') === 'live', { ms: 10_000, every: 100 })
  await eventually('the route shows with no request yet', async () => await shown(page, 'route-count', row('*/app')) === '0', { ms: 10_000, every: 100 })
  const pool = '[data-testid="pool"][data-pool="*/app"]'
  await eventually('the node shows healthy', async () => await shown(page, 'node-status', pool) === 'healthy', { ms: 10_000, every: 100 })
  const pollsBefore = Number(await shown(page, 'polls'))

  // First half of the load: the page's count reaches it while the page stays open.
  const first = await load(p.url, { total: 150, concurrency: 4, path: '/app/x' })
  assert.equal(first.statuses['200'], 150)
  await eventually('the page counts the first 150 requests', async () => await shown(page, 'route-count', row('*/app')) === '150', { ms: 10_000, every: 100 })
  let rpsSeen = ''
  await eventually('requests/s becomes non-zero', async () => {
    rpsSeen = await shown(page, 'route-rps', row('*/app'))
    return Number(rpsSeen) > 0
  }, { ms: 10_000, every: 100 })

  // Second half, with requests that match no route.
  const [second, missing] = await Promise.all([
    load(p.url, { total: 150, concurrency: 4, path: '/app/y' }),
    load(p.url, { total: 20, concurrency: 2, path: '/nowhere' })
  ])
  assert.equal(second.statuses['200'], 150)
  assert.equal(missing.statuses['404'], 20)
  await eventually('the count moves on to 300', async () => await shown(page, 'route-count', row('*/app')) === '300', { ms: 10_000, every: 100 })
  await eventually('the 404s show under (none), all Portico-made', async () =>
    await shown(page, 'route-count', row('(none)')) === '20' && await shown(page, 'route-errors', row('(none)')) === '100 %', { ms: 10_000, every: 100 })
  const seen: Record<string, string> = {}
  await eventually('latency percentiles show for the route', async () => {
    for (const f of ['rps', 'p50', 'p90', 'p99', '5xx', 'errors']) seen[f] = await shown(page, `route-${f}`, row('*/app'))
    return /ms$/.test(seen.p50) && /ms$/.test(seen.p99)
  }, { ms: 10_000, every: 100 })
  assert.ok(Number.parseFloat(seen.p50) <= Number.parseFloat(seen.p90) && Number.parseFloat(seen.p90) <= Number.parseFloat(seen.p99), `p50 ≤ p90 ≤ p99: ${JSON.stringify(seen)}`)
  assert.equal(seen['5xx'], '0 %')
  const total = await shown(page, 'total-requests')

  // The cache: one miss, then hits.
  const cached = await load(p.url, { total: 10, concurrency: 1, path: '/cached/a' })
  assert.equal(cached.statuses['200'], 10)
  await eventually('the cache hit ratio shows 9 hits of 10', async () => await shown(page, 'cache-hit-ratio') === '90.0 % of 10', { ms: 10_000, every: 100 })

  // A reload, seen by the page as it happens.
  await p.proxy.reload(p.config)
  await eventually('the reload is listed', async () =>
    await shown(page, 'reload-ok') === '1' && /api · ok/.test(await shown(page, 'reload-entry')), { ms: 10_000, every: 100 })

  const proc = { rss: await shown(page, 'proc-rss'), heap: await shown(page, 'proc-heap'), lag: await shown(page, 'proc-lag'), cpu: await shown(page, 'proc-cpu') }
  assert.match(proc.rss, /^\d+(\.\d)? (KiB|MiB|GiB)$/)
  assert.match(proc.lag, / ms$/)

  // The load is over: the rate falls back to zero once the window has passed.
  await eventually('requests/s falls back to 0 after the load', async () => await shown(page, 'route-rps', row('*/app')) === '0.00', { ms: 15_000, every: 200 })
  const pollsAfter = Number(await shown(page, 'polls'))
  assert.ok(pollsAfter > pollsBefore, 'the page kept polling')
  assert.deepEqual(problems, [])
  t.diagnostic(`the page showed: */app count 0 → 150 → 300, req/s ${rpsSeen} during load → 0.00 after; p50 ${seen.p50}, p90 ${seen.p90}, p99 ${seen.p99}, ` +
    `5xx ${seen['5xx']}, Portico errors ${seen.errors}; total requests ${total}; (none) 20 at 100 % Portico errors; node healthy; cache 90.0 % of 10; ` +
    `reload api ok; process rss ${proc.rss}, heap ${proc.heap}, lag ${proc.lag}, cpu ${proc.cpu}; ${pollsAfter} polls`)
})

test('with admin.tokenEnv: the sign-in form without the token, a session cookie after ?token= or the form, a wrong token refused', async (t) => {
  const b = await chromiumOrSkip(t)
  if (b === null) return
  const token = `dash-${randomBytes(12).toString('hex')}`
  process.env.PORTICO_TEST_DASHBOARD_TOKEN = token
  t.after(async () => { delete process.env.PORTICO_TEST_DASHBOARD_TOKEN })
  const origin = await startOrigin()
  t.after(() => origin.close())
  const p = await start(t, { admin: { port: 0, tokenEnv: 'PORTICO_TEST_DASHBOARD_TOKEN' }, routes: [{ host: '*', upstream: [origin.url] }] })

  const context = await b.newContext()
  t.after(() => context.close())
  const page = await context.newPage()
  const problems = watch(page)

  // No token: 401 and the form, no figures.
  const bare = await page.goto(`${p.admin}/`)
  assert.equal(bare?.status(), 401)
  assert.equal(await page.getByTestId('login-form').isVisible(), true)
  assert.equal(await page.getByTestId('routes-table').count(), 0, 'no figures without the token')

  // A wrong token: 401 again, said so, no cookie.
  const wrong = await page.goto(`${p.admin}/?token=not-the-token`)
  assert.equal(wrong?.status(), 401)
  assert.match(await shown(page, 'login-error'), /not the admin token/)
  assert.deepEqual((await context.cookies()).map((c) => c.name), [])

  // The right one: a 303 to / (the token leaves the URL) with an HttpOnly, SameSite=Strict cookie that is not the token.
  const right = await page.goto(`${p.admin}/?token=${token}`)
  assert.equal(right?.status(), 200)
  assert.equal(page.url(), `${p.admin}/`)
  const [cookie] = await context.cookies()
  assert.equal(cookie.name, 'portico_admin')
  assert.equal(cookie.httpOnly, true)
  assert.equal(cookie.sameSite, 'Strict')
  assert.equal(cookie.path, '/')
  assert.equal(cookie.value.includes(token), false, 'the cookie is not the token')
  await eventually('the page is live with the cookie', async () => await shown(page, 'status') === 'live', { ms: 10_000, every: 100 })
  const done = await load(p.url, { total: 50, concurrency: 2, path: '/x' })
  assert.equal(done.statuses['200'], 50)
  await eventually('the page counts the requests', async () => await shown(page, 'route-count', row('*')) === '50', { ms: 10_000, every: 100 })
  const rps = await shown(page, 'route-rps', row('*'))

  // The cookie reads; it does not act, and a forged one is nothing.
  const jar = { cookie: `portico_admin=${cookie.value}` }
  assert.equal((await send(`${p.admin}/metrics`, { headers: jar })).status, 200)
  assert.equal((await send(`${p.admin}/pools`, { headers: jar })).status, 200)
  assert.equal((await send(`${p.admin}/config/reload`, { method: 'POST', headers: jar })).status, 403)
  const forged = `${cookie.value.split('.')[0]}.${'A'.repeat(43)}`
  assert.equal((await send(`${p.admin}/metrics`, { headers: { cookie: `portico_admin=${forged}` } })).status, 401)
  assert.equal((await send(`${p.admin}/metrics`, { headers: { authorization: `Bearer ${token}` } })).status, 200, 'the bearer token works as before')

  // The form (POST /): a wrong token is refused, the right one signs this second browser in.
  const other = await b.newContext()
  t.after(() => other.close())
  const formPage = await other.newPage()
  problems.push(...watch(formPage))
  await formPage.goto(`${p.admin}/dashboard`)
  await formPage.getByTestId('login-token').fill('wrong')
  await formPage.getByTestId('login-submit').click()
  await eventually('the form says the token is wrong', async () => /not the admin token/.test(await shown(formPage, 'login-error')), { ms: 10_000, every: 100 })
  assert.deepEqual((await other.cookies()).map((c) => c.name), [])
  await formPage.getByTestId('login-token').fill(token)
  await formPage.getByTestId('login-submit').click()
  await eventually('the form signs in and the page goes live', async () => await shown(formPage, 'status') === 'live', { ms: 10_000, every: 100 })
  assert.equal(formPage.url(), `${p.admin}/dashboard`)
  assert.equal(await shown(formPage, 'route-count', row('*')), '50')
  assert.deepEqual(problems, [])
  t.diagnostic(`with a token: 401 + form, wrong token 401, ?token= → 303 → live page; * count 50, req/s ${rps}; the cookie reads (200) but cannot reload (403)`)
})
