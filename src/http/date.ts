/**
 * HTTP-date (RFC 9110 §5.6.7), parsed strictly: IMF-fixdate, or the obsolete RFC 850 and asctime forms, and nothing
 * else. Date.parse accepts far more ("UTC" zones, one-digit hours), which a cache must count as invalid. Pure.
 */

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
// RFC 9111 §4.2: a cache parses HTTP-date case-insensitively (names of days, months and GMT).
const IMF = /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d{2}) ([a-z]{3}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/i
const RFC850 = /^(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), (\d{2})-([a-z]{3})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) GMT$/i
const ASCTIME = /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) ([a-z]{3}) ( \d|\d{2}) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/i

/**
 * RFC 9110 §5.6.7 HTTP-date: IMF-fixdate, or the obsolete RFC 850 and asctime forms, exactly; epoch ms, or NaN
 * for anything else (Date.parse accepts far more, e.g. "UTC" zones or one-digit hours, which must count as
 * invalid). A two-digit RFC 850 year more than 50 years in the future is taken as the past century.
 */
export function httpDate (value: string | undefined): number {
  if (value === undefined) return NaN
  const v = value.trim()
  let day: string, mon: string, year: number, hh: string, mm: string, ss: string
  let m = IMF.exec(v)
  if (m !== null) {
    [, day, mon, , hh, mm, ss] = m
    year = Number(m[3])
  } else if ((m = RFC850.exec(v)) !== null) {
    [, day, mon, , hh, mm, ss] = m
    const now = new Date().getUTCFullYear()
    year = Math.floor(now / 100) * 100 + Number(m[3])
    if (year > now + 50) year -= 100
  } else if ((m = ASCTIME.exec(v)) !== null) {
    [, mon, day, hh, mm, ss] = m
    year = Number(m[6])
  } else {
    return NaN
  }
  const month = MONTHS.indexOf(mon.charAt(0).toUpperCase() + mon.slice(1).toLowerCase())
  const d = Number(day)
  if (month === -1 || d < 1 || d > 31 || Number(hh) > 23 || Number(mm) > 59 || Number(ss) > 60) return NaN
  return Date.UTC(year, month, d, Number(hh), Number(mm), Number(ss))
}

/** A date field in IMF-fixdate (the preferred form, and what other parsers read without surprises), or undefined when invalid. */
export function imfFixdate (value: string | undefined): string | undefined {
  const t = httpDate(value)
  return Number.isNaN(t) ? undefined : new Date(t).toUTCString()
}
