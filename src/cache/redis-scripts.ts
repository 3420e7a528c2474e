/**
 * The Lua scripts of the Redis store (redis-store.ts has the key layout they work on): commit, update (304) and the
 * per-key purge, each atomic on the server. They build body keys from a prefix they are given, which is fine for a
 * single Redis and rules out Cluster.
 */

/** Shared Lua: give a retired body list at most `grace` ms more (it may be streaming to someone). */
const LUA_RETIRE = `
local function retire (k, grace)
  local t = redis.call('PTTL', k)
  if t == -1 or t > grace then redis.call('PEXPIRE', k, grace) end
end
local function decode (s)
  local ok, m = pcall(cjson.decode, s)
  if ok and type(m) == 'table' then return m end
  return nil
end
-- Integral ms as a plain decimal string (a Lua number could be formatted with an exponent).
local function ms (n)
  return string.format('%.0f', math.ceil(n))
end
local function extend (k, member, exp, now)
  redis.call('SADD', k, member)
  local t = redis.call('PTTL', k)
  if t < 0 or t < exp - now then redis.call('PEXPIREAT', k, ms(exp)) end
end
`

/**
 * KEYS: hash, writer list, body list, host set, tag sets...
 * ARGV: variant, meta JSON, expires, now, chunk count, primary key, body key prefix, bodyId, grace
 * Returns 1, or 0 when the writer list does not hold the expected chunks (nothing is changed then).
 */
export const LUA_COMMIT = LUA_RETIRE + `
local exp = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local n = tonumber(ARGV[5])
if redis.call('LLEN', KEYS[2]) ~= n then return 0 end
local maxexp = exp
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  local m = decode(fields[i + 1])
  local replaced = fields[i] == ARGV[1]
  if replaced or m == nil or type(m.expires) ~= 'number' or m.expires <= now then
    redis.call('HDEL', KEYS[1], fields[i])
    if m ~= nil and type(m.bodyId) == 'string' and m.bodyId ~= ARGV[8] then
      if replaced then retire(ARGV[7] .. m.bodyId, tonumber(ARGV[9])) else redis.call('DEL', ARGV[7] .. m.bodyId) end
    end
  elseif m.expires > maxexp then
    maxexp = m.expires
  end
end
if n > 0 then
  redis.call('RENAME', KEYS[2], KEYS[3])
  redis.call('PEXPIREAT', KEYS[3], ARGV[3])
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIREAT', KEYS[1], ms(maxexp))
for i = 4, #KEYS do extend(KEYS[i], ARGV[6], maxexp, now) end
return 1
`

/**
 * KEYS: hash, body list, host set, tag sets...
 * ARGV: variant, meta JSON, expires, now, bodyId, primary key
 * Replaces the head whose bodyId matches, keeps the body (its expiry follows the new head). Returns 1, or 0 when
 * no stored variant has that body.
 */
export const LUA_UPDATE = LUA_RETIRE + `
local exp = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local fields = redis.call('HGETALL', KEYS[1])
local found = nil
local maxexp = exp
for i = 1, #fields, 2 do
  local m = decode(fields[i + 1])
  if m ~= nil and m.bodyId == ARGV[5] then
    found = fields[i]
  elseif m ~= nil and type(m.expires) == 'number' and m.expires > maxexp then
    maxexp = m.expires
  end
end
if found == nil then return 0 end
if found ~= ARGV[1] then redis.call('HDEL', KEYS[1], found) end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIREAT', KEYS[1], ms(maxexp))
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('PEXPIREAT', KEYS[2], ARGV[3]) end
for i = 3, #KEYS do extend(KEYS[i], ARGV[6], maxexp, now) end
return 1
`

/**
 * KEYS: hash [, set the primary key is a member of]
 * ARGV: mode ("all", "tag" or "path"), tag or path prefix, host, body key prefix, now, primary key
 * Deletes the matching variants (and any expired or unreadable one) with their bodies; returns how many live
 * variants matched. Drops the key from the set once it no longer belongs there.
 */
export const LUA_PURGE_KEY = LUA_RETIRE + `
local mode = ARGV[1]
local arg = ARGV[2]
local now = tonumber(ARGV[5])
local fields = redis.call('HGETALL', KEYS[1])
local removed = 0
local kept = 0
for i = 1, #fields, 2 do
  local m = decode(fields[i + 1])
  local hit = true
  if m ~= nil and mode == 'tag' then
    hit = false
    if type(m.tags) == 'table' then
      for _, t in ipairs(m.tags) do
        if t == arg then hit = true break end
      end
    end
  elseif m ~= nil and mode == 'path' then
    hit = m.host == ARGV[3] and type(m.path) == 'string' and string.sub(m.path, 1, #arg) == arg
  end
  local expired = m == nil or type(m.expires) ~= 'number' or m.expires <= now
  if hit or expired then
    redis.call('HDEL', KEYS[1], fields[i])
    if m ~= nil and type(m.bodyId) == 'string' then redis.call('DEL', ARGV[4] .. m.bodyId) end
    if hit and not expired then removed = removed + 1 end
  else
    kept = kept + 1
  end
end
if #KEYS > 1 and (mode == 'tag' or kept == 0) then redis.call('SREM', KEYS[2], ARGV[6]) end
return removed
`

export interface Scripts {
  porticoCommit (numKeys: number, ...args: (string | number)[]): Promise<number>
  porticoUpdate (numKeys: number, ...args: (string | number)[]): Promise<number>
  porticoPurgeKey (numKeys: number, ...args: (string | number)[]): Promise<number>
}
