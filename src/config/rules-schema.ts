/**
 * The shapes of the traffic rules (docs/rules.md): what a route (or the top level, as a default for every route)
 * may say about what happens to a request on its way — access control, rate limits, redirects and fixed answers,
 * path rewrites, header edits, CORS, redirect and cookie rewriting, compression and error pages. Shape only, as in
 * schema.ts: placeholders, regular expressions, CIDRs and files are checked by resolve-rules.ts.
 */
import { z } from 'zod'
import { duration, fieldName, size } from './schema-units.js'

const path = z.string().startsWith('/', 'expected a path starting with "/"')

/** Header edits in one direction: set (replace), add (append), remove. Values may hold placeholders. */
const headerEdits = z.strictObject({
  /** Fields set, replacing any the message carries. */
  set: z.record(fieldName, z.string()).optional(),
  /** Fields appended to those the message carries. */
  add: z.record(fieldName, z.string()).optional(),
  /** Fields removed. */
  remove: z.array(fieldName).optional()
})

/** `request` and `response` header edits, beside the forwarding-header options of schema.ts. */
export const headerRules = {
  /** Edits of the request sent to the node. */
  request: headerEdits.optional(),
  /** Edits of the response sent to the client. */
  response: headerEdits.optional()
}

/** A value a preset field may take: the value, or false to leave it out. */
const presetValue = z.union([z.string().min(1), z.literal(false)])

/** The response security preset. */
const securityHeaders = z.union([z.boolean(), z.strictObject({
  /** Strict-Transport-Security on TLS responses (a route's `hsts` wins). */
  hsts: presetValue.optional(),
  /** X-Content-Type-Options. */
  contentTypeOptions: presetValue.optional(),
  /** Referrer-Policy. */
  referrerPolicy: presetValue.optional(),
  /** X-Frame-Options. */
  frameOptions: presetValue.optional(),
  /** Content-Security-Policy (none by default: it depends on the application). */
  contentSecurityPolicy: presetValue.optional()
})])

const cors = z.union([z.literal(false), z.strictObject({
  /** Allowed origins: "https://app.example.com", "*", or a regular expression written /like this/. */
  origins: z.array(z.string().min(1)).min(1, 'expected at least one origin'),
  /** Methods allowed in a preflight. */
  methods: z.array(z.string().regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, 'expected a method')).optional(),
  /** Request fields allowed in a preflight; "*" allows whatever the preflight asks for. */
  headers: z.array(z.string().min(1)).optional(),
  /** Response fields the browser may expose to the page. */
  exposeHeaders: z.array(fieldName).optional(),
  /** Allow credentials (cookies, Authorization); then "*" is never sent, the origin is echoed. */
  credentials: z.boolean().optional(),
  /** How long a browser may cache a preflight. */
  maxAge: duration.optional()
})])

const redirect = z.strictObject({
  /** Where to: an absolute URL or a path, with placeholders and the `match` groups {1}…{9}. */
  to: z.string().min(1),
  /** 301, 302, 303, 307 or 308. */
  status: z.union([z.literal(301), z.literal(302), z.literal(303), z.literal(307), z.literal(308)]).optional(),
  /** A regular expression on the path: only matching requests are redirected, the others go upstream. */
  match: z.string().min(1).optional()
})

const respond = z.strictObject({
  /** The status of the answer. */
  status: z.number().int().min(200).max(599),
  /** The body (placeholders allowed). */
  body: z.string().optional(),
  /** Fields of the answer (placeholders allowed). */
  headers: z.record(fieldName, z.string()).optional()
})

const compress = z.union([z.boolean(), z.strictObject({
  /** The codings offered, in the server's order of preference (zstd only where this Node has it). */
  encodings: z.array(z.enum(['zstd', 'br', 'gzip', 'deflate'])).min(1).optional(),
  /** Bodies smaller than this are sent as they are. */
  minSize: size.optional(),
  /** Media types compressed ("text/*" patterns allowed). */
  types: z.array(z.string().min(1)).min(1).optional()
})])

const cidrList = z.union([z.literal(false), z.array(z.string().min(1))])

const basicAuth = z.union([z.literal(false), z.strictObject({
  /** A users file (htpasswd style, "name:hash" lines) or a list of "name:hash"; bcrypt or scrypt hashes only (`portico hash-password`). */
  users: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
  /** The realm of the challenge. */
  realm: z.string().optional()
})])

const forwardAuth = z.union([z.literal(false), z.strictObject({
  /** The auth service's URL (http or https), asked with GET before each request. */
  url: z.string().url('expected an http(s) URL'),
  /** Request fields sent to the auth service (default: every end-to-end field of the request). */
  copyRequestHeaders: z.array(fieldName).optional(),
  /** Fields of a 2xx answer copied onto the request sent to the node. */
  copyResponseHeaders: z.array(fieldName).optional(),
  /** How long the auth service has to answer. */
  timeout: duration.optional()
})])

/** "100/s", "20/m", "1000/h", "5/10s". */
export const rate = z.string().regex(/^\s*[1-9]\d*\s*\/\s*(\d+(\.\d+)?\s*)?(ms|s|m|h|d)\s*$/i, 'expected a rate such as "100/s", "20/m" or "5/10s" (a whole number of requests)')

const rateLimit = z.union([z.literal(false), z.strictObject({
  /** What is counted: client-ip, header:NAME or route. */
  key: z.string().regex(/^(client-ip|route|header:[!#$%&'*+\-.^_`|~0-9A-Za-z]+)$/, 'expected client-ip, route or header:NAME').optional(),
  /** The sustained rate. */
  rate: rate.optional(),
  /** Requests allowed at once on top of the rate. */
  burst: z.number().int().min(0).optional(),
  /** memory (per process) or redis (shared by every instance). */
  store: z.enum(['memory', 'redis']).optional(),
  /** The Redis of `store: redis` (default: cache.redis's URL). */
  redis: z.strictObject({
    /** redis://host:port[/db]. */
    url: z.string().min(1).optional(),
    /** Prefix of the rate-limit keys. */
    prefix: z.string().optional()
  }).optional(),
  /** Most requests of one key in flight at once (over it: 429). */
  maxInFlight: z.number().int().positive().optional()
}).refine((r) => r.rate !== undefined || r.maxInFlight !== undefined, { message: 'a rate limit needs "rate" or "maxInFlight"' })])

/** Status or class ("502", "5xx") → page file; `intercept` also replaces the node's own error bodies. */
const errorPages = z.union([z.literal(false), z.record(z.string(), z.union([z.string().min(1), z.boolean()])).superRefine((v, ctx) => {
  for (const [k, page] of Object.entries(v)) {
    if (k === 'intercept') {
      if (typeof page !== 'boolean') ctx.addIssue({ code: 'custom', message: 'expected true or false', path: [k] })
    } else if (!/^[45](\d\d|xx)$/.test(k)) {
      ctx.addIssue({ code: 'custom', message: 'expected a status such as "502", a class such as "5xx", or "intercept"', path: [k] })
    } else if (typeof page !== 'string') {
      ctx.addIssue({ code: 'custom', message: 'expected the path of a page file', path: [k] })
    }
  }
})])

/** The rules any route may carry and the top level may set as a default for every route. */
export const sharedRules = {
  /** Response security headers: true for the preset, or fields to override (docs/rules.md). */
  securityHeaders: securityHeaders.optional(),
  /** CORS, answered by Portico (preflights included). */
  cors: cors.optional(),
  /** Compress responses on the way out. */
  compress: compress.optional(),
  /** Client addresses (CIDRs, "private", "loopback") allowed; everyone else gets 403. */
  allow: cidrList.optional(),
  /** Client addresses refused with 403 (checked before `allow`). */
  deny: cidrList.optional(),
  /** HTTP Basic authentication. */
  basicAuth: basicAuth.optional(),
  /** Ask an auth service before each request. */
  forwardAuth: forwardAuth.optional(),
  /** Requests per key over time (429 beyond). */
  rateLimit: rateLimit.optional(),
  /** Portico's own error bodies replaced by pages. */
  errorPages: errorPages.optional(),
  /** Rewrite Location, Content-Location and Refresh from the node's view to the client's (default: when the path or host differs). */
  rewriteRedirects: z.boolean().optional(),
  /** Rewrite Set-Cookie Path and Domain from the node's view to the client's (default: when the path or host differs). */
  rewriteCookies: z.boolean().optional()
}

/** The rules only a route carries. */
export const routeRules = {
  /** A prefix added to the path sent to the node (after stripPrefix). */
  addPrefix: path.optional(),
  /** The path sent to the node instead of the request's (the query is kept). */
  replacePath: path.optional(),
  /** A regular expression on the path and its replacement (with {1}…{9}); the query is kept unless the replacement has one. */
  rewrite: z.strictObject({
    /** The regular expression. */
    match: z.string().min(1),
    /** The replacement (placeholders allowed). */
    replace: z.string()
  }).optional(),
  /** Answer with a redirect. */
  redirect: redirect.optional(),
  /** Answer with a fixed response, without an upstream. */
  respond: respond.optional(),
  /** This route's limits. */
  limits: z.strictObject({
    /** Largest request body on this route; larger ones get 413. */
    maxRequestBody: size.optional()
  }).optional()
}
