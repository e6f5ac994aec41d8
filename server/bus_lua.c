/* bus_lua.c -- the Lua scripts of cluster mode (bus.h, docs/CLUSTER.md):
 * the presence directory, node liveness and the routing of events to the
 * node a user is on. Loaded with the engine's scripts on every connection
 * (redis_cmds.c) and called by SHA1 as reads that ride behind a batch's
 * EXEC (bus_redis.c), so a notice of a message is sent only after the
 * message itself is durable.
 *
 * Keys (every one hash-tagged, as the engine's):
 *   {u:NAME}:at      hash   node, epoch, status of NAME's live session
 *   {node:N}:users   set    users whose session is on node N
 *   {node:N}:alive   string N's instance id, with a short expiry that N
 *                           refreshes (CHAT__BUS_TICK_MS)
 *   {node:N}:inbox   stream events for node N: t (kind), u (user), a, b,
 *                           r (space-separated recipients)
 *   {chat}:nodes     set    every node that may still have users
 * Names never hold spaces (protocol/rules.c), so r is a plain list.
 *
 * The scripts name keys they do not declare (other users', other nodes'),
 * which a single Redis allows and Redis Cluster would not: CLUSTER.md says
 * what a move to Redis Cluster would change. */
#include "engine_redis_int.h"

/* Routes presence (user's new status) to the nodes of its contacts that
 * are logged in, one XADD per node; returns {contact, status, ...} of
 * those contacts. incl: also to this node (a reaper's own users). */
#define FANOUT                                                                 \
  "local function fanout(me, incl, u, st)\n"                                   \
  "  local by, out = {}, {}\n"                                                 \
  "  for _, c in ipairs(redis.call('ZRANGE', '{u:'..u..'}:contacts', 0, -1))"  \
  " do\n"                                                                      \
  "    local at = redis.call('HMGET', '{u:'..c..'}:at', 'node', 'status')\n"   \
  "    if at[1] then\n"                                                        \
  "      out[#out+1] = c; out[#out+1] = at[2]\n"                               \
  "      if incl or at[1] ~= me then\n"                                        \
  "        local l = by[at[1]]\n"                                              \
  "        if not l then l = {}; by[at[1]] = l end\n"                          \
  "        l[#l+1] = c\n"                                                      \
  "      end\n"                                                                \
  "    end\n"                                                                  \
  "  end\n"                                                                    \
  "  for n, l in pairs(by) do\n"                                               \
  "    redis.call('XADD', '{node:'..n..'}:inbox', 'MAXLEN', '~', '100000', "   \
  "'*', 't', 'p', 'u', u, 'a', st, 'r', table.concat(l, ' '))\n"               \
  "  end\n"                                                                    \
  "  return out\n"                                                             \
  "end\n"

/* A free slot (bus.h: a part of every seq this node makes), held by
 * value inst for ttl ms; -1 when all are taken. */
#define TAKE_SLOT                                                              \
  "local function take_slot(inst, ttl)\n"                                     \
  "  for k = 0, 1023 do\n"                                                    \
  "    if redis.call('SET', '{chat}:slot:'..k, inst, 'NX', 'PX', ttl) then\n"  \
  "      return k\n"                                                          \
  "    end\n"                                                                \
  "  end\n"                                                                  \
  "  return -1\n"                                                            \
  "end\n"

/* Tells every live node (but me, unless incl) to drop what its route
 * cache (route_cache.h) knows of users (space-separated): they logged in,
 * out, or were reaped, so a stale route is used for a few ms, not for the
 * cache's whole second. */
#define FORGET                                                                 \
  "local function forget(me, incl, users)\n"                                   \
  "  for _, n in ipairs(redis.call('SMEMBERS', '{chat}:nodes')) do\n"          \
  "    if (incl or n ~= me) and "                                              \
  "redis.call('EXISTS', '{node:'..n..'}:alive') == 1 then\n"                   \
  "      redis.call('XADD', '{node:'..n..'}:inbox', 'MAXLEN', '~', '100000', " \
  "'*', 't', 'f', 'r', users)\n"                                              \
  "    end\n"                                                                  \
  "  end\n"                                                                    \
  "end\n"

/* A carried message (an inbox entry of kind M) put among its recipient's
 * held messages as PUT_MSG would (redis_cmds.c: the seq first, then the
 * netstrings of the record; the sender's msg_id claimed; max_seq raised).
 * Seqs stay strings: Lua's numbers are doubles. Returns 1 when added. */
#define STASH                                                                  \
  "local function ns(x) return #x .. ':' .. x end\n"                          \
  "local function fields(e)\n"                                                \
  "  local f = {}\n"                                                          \
  "  for i = 1, #e[2], 2 do f[e[2][i]] = e[2][i + 1] end\n"                   \
  "  return f\n"                                                              \
  "end\n"                                                                     \
  "local function stash(f)\n"                                                 \
  "  if not (f.u and f.a and f.b and f.s and f.w) then return 0 end\n"        \
  "  local seq = string.rep('0', 20 - #f.s) .. f.s\n"                         \
  "  local held = '{u:'..f.u..'}:held'\n"                                     \
  "  local cur = redis.call('GET', '{chat}:max_seq')\n"                       \
  "  if not cur or cur < seq then redis.call('SET', '{chat}:max_seq', seq) "   \
  "end\n"                                                                     \
  "  if redis.call('ZRANGEBYLEX', held, '['..seq, '('..seq..';', 'LIMIT', 0, " \
  "1)[1] then return 0 end\n"                                                 \
  "  if redis.call('HSETNX', '{u:'..f.a..'}:sent', f.b, seq..' '..f.u) == 0 "  \
  "then return 0 end\n"                                                       \
  "  redis.call('ZADD', held, 0, seq..ns(f.u)..ns(f.a)..ns('')..ns(f.b).."     \
  "ns(f.w)..ns('0')..ns(f.x or ''))\n"                                        \
  "  return 1\n"                                                              \
  "end\n"                                                                     \
  "local function nsget(x, p)\n"                                              \
  "  local c = string.find(x, ':', p, true)\n"                                \
  "  if not c then return nil, #x + 1 end\n"                                  \
  "  local n = tonumber(string.sub(x, p, c - 1)) or 0\n"                      \
  "  return string.sub(x, c + 1, c + n), c + n + 1\n"                         \
  "end\n"                                                                     \
  "local names = {'t', 'u', 'a', 'b', 's', 'w', 'x'}\n"                       \
  "local function carried(e)\n"                                               \
  "  local f = fields(e)\n"                                                   \
  "  if f.t == 'M' then return {f} end\n"                                     \
  "  local out = {}\n"                                                        \
  "  if f.t ~= 'B' then return out end\n"                                     \
  "  for i = 1, #e[2], 2 do\n"                                                \
  "    local x = e[2][i] == 'x' and e[2][i + 1] or ''\n"                      \
  "    local p = 1\n"                                                         \
  "    while p <= #x do\n"                                                    \
  "      local item, q\n"                                                     \
  "      item, p = nsget(x, p)\n"                                             \
  "      if not item then break end\n"                                        \
  "      local g, v = {}, nil\n"                                              \
  "      q = 1\n"                                                             \
  "      for k = 1, 7 do v, q = nsget(item, q); g[names[k]] = v end\n"        \
  "      if g.t == 'M' then out[#out + 1] = g end\n"                          \
  "    end\n"                                                                 \
  "  end\n"                                                                   \
  "  return out\n"                                                            \
  "end\n"

const char *const chat__bus_lua[CHAT__SC_COUNT] = {
    /* ARGV: me, user, epoch, status, host, p2p_port, key. The session on
     * me is the user's now; an older one elsewhere is told to go (k).
     * host, p2p_port and key are what a connect from another node hands
     * out (CONNECT). Messages carried to the older session's node and not
     * yet settled there (acked, or written) are put among the user's held
     * messages, so that its new session reads them first, in seq order.
     * Returns {max_seq, moved, contact, status, ...}. */
    [CHAT__SC_BUS_LOGIN] =
        "#!lua\n" FANOUT STASH FORGET
        "local me, u, ep, st = ARGV[1], ARGV[2], ARGV[3], ARGV[4]\n"
        "local key = '{u:'..u..'}:at'\n"
        "local old = redis.call('HMGET', key, 'node', 'epoch')\n"
        "redis.call('HSET', key, 'node', me, 'epoch', ep, 'status', st, "
        "'host', ARGV[5], 'port', ARGV[6], 'key', ARGV[7])\n"
        "redis.call('SADD', '{node:'..me..'}:users', u)\n"
        "local moved = 0\n"
        "if old[1] and old[1] ~= me then\n"
        "  local inbox = '{node:'..old[1]..'}:inbox'\n"
        "  redis.call('SREM', '{node:'..old[1]..'}:users', u)\n"
        "  local done = '{node:'..old[1]..'}:stashed'\n"
        "  for _, e in ipairs(redis.call('XRANGE', inbox, '-', '+')) do\n"
        "    local fresh = nil\n"
        "    for _, f in ipairs(carried(e)) do\n"
        "      if f.u == u then\n"
        "        if fresh == nil then\n"
        "          fresh = redis.call('SADD', done, e[1]..'/'..u) == 1\n"
        "        end\n"
        "        if fresh then moved = moved + stash(f) end\n"
        "      end\n"
        "    end\n"
        "  end\n"
        "  if moved > 0 then redis.call('PEXPIRE', done, 600000) end\n"
        "  redis.call('XADD', inbox, 'MAXLEN', '~', '100000', '*', 't', 'k', "
        "'u', u, 'a', old[2])\n"
        "end\n"
        "if old[1] then forget(me, false, u) end\n"
        "local out = fanout(me, false, u, st)\n"
        "table.insert(out, 1, tostring(moved))\n"
        "table.insert(out, 1, redis.call('GET', '{chat}:max_seq') or '0')\n"
        "return out\n",
    /* ARGV: me, user, epoch, status, host, p2p_port, key: this node was
     * taken for dead (TICK), and its live session asserts itself again.
     * Returns 0 when the user has a newer session elsewhere (this one must
     * go), else 1; an entry a reaper removed is written again, with the
     * presence fanned out (here too: the reaper told our contacts). */
    [CHAT__SC_BUS_REJOIN] =
        "#!lua\n" FANOUT
        "local me, u, ep, st = ARGV[1], ARGV[2], ARGV[3], ARGV[4]\n"
        "local key = '{u:'..u..'}:at'\n"
        "local cur = redis.call('HMGET', key, 'node', 'epoch')\n"
        "if cur[1] and (cur[1] ~= me or cur[2] ~= ep) then return 0 end\n"
        "redis.call('SADD', '{node:'..me..'}:users', u)\n"
        "if not cur[1] then\n"
        "  redis.call('HSET', key, 'node', me, 'epoch', ep, 'status', st, "
        "'host', ARGV[5], 'port', ARGV[6], 'key', ARGV[7])\n"
        "  fanout(me, true, u, st)\n"
        "end\n"
        "return 1\n",
    /* ARGV: me, user, epoch, status: a status change of the live session */
    [CHAT__SC_BUS_STATUS] =
        "#!lua\n" FANOUT
        "local me, u, ep, st = ARGV[1], ARGV[2], ARGV[3], ARGV[4]\n"
        "local key = '{u:'..u..'}:at'\n"
        "if redis.call('HGET', key, 'epoch') ~= ep then return {} end\n"
        "redis.call('HSET', key, 'status', st)\n"
        "return fanout(me, false, u, st)\n",
    /* ARGV: me, user, epoch: the session ended; only the live one's end
     * clears the entry (a later login elsewhere keeps it) */
    [CHAT__SC_BUS_LOGOUT] =
        "#!lua\n" FANOUT FORGET
        "local me, u, ep = ARGV[1], ARGV[2], ARGV[3]\n"
        "local key = '{u:'..u..'}:at'\n"
        "if redis.call('HGET', key, 'epoch') ~= ep then return 0 end\n"
        "redis.call('DEL', key)\n"
        "redis.call('SREM', '{node:'..me..'}:users', u)\n"
        "fanout(me, false, u, 'offline')\n"
        "forget(me, false, u)\n"
        "return 1\n",
    /* ARGV: me, user, kind, a, b: an event for user's node, if it is on
     * one and that is not me. Returns the node, or nil (not logged in). */
    [CHAT__SC_BUS_ROUTE] =
        "#!lua\n"
        "local me, u = ARGV[1], ARGV[2]\n"
        "local n = redis.call('HGET', '{u:'..u..'}:at', 'node')\n"
        "if not n then return false end\n"
        "if n ~= me then\n"
        "  redis.call('XADD', '{node:'..n..'}:inbox', 'MAXLEN', '~', "
        "'100000', '*', 't', ARGV[3], 'u', u, 'a', ARGV[4], 'b', ARGV[5])\n"
        "end\n"
        "return n\n",
    /* ARGV: me, then names: each one's status ('' when logged in
     * nowhere), read afresh for a `contacts` request. */
    [CHAT__SC_BUS_STATUSES] =
        "#!lua\n"
        "local out = {}\n"
        "for i = 2, #ARGV do\n"
        "  out[#out + 1] = redis.call('HGET', '{u:'..ARGV[i]..'}:at', "
        "'status') or ''\n"
        "end\n"
        "return out\n",
    /* ARGV: me, then pairs (recipient, items): a loop turn's carried
     * messages and receipts (bus_batch.c), grouped per recipient in C, each
     * group's items already packed as netstrings (kind, to, a, b, seq, ts,
     * body). One HGET per recipient, then one inbox entry (B) per target
     * node holding its groups, each as a field x, in the order given: no
     * concatenation, since Redis's Lua hashes every byte of every string
     * it makes (46 % of Redis's CPU at 1 KiB when the groups were
     * joined). Looking up and appending in one script means nothing lands
     * in the inbox of a node the recipient has left (a login elsewhere
     * moves what that inbox holds for it). Returns each recipient's node
     * ('' for nowhere); the caller keeps what is for itself or for
     * nobody. */
    [CHAT__SC_BUS_CARRY] =
        "#!lua\n"
        "local me, out, by, order = ARGV[1], {}, {}, {}\n"
        "for i = 2, #ARGV, 2 do\n"
        "  local n = redis.call('HGET', '{u:'..ARGV[i]..'}:at', 'node') "
        "or ''\n"
        "  out[#out + 1] = n\n"
        "  if n ~= '' and n ~= me then\n"
        "    local t = by[n]\n"
        "    if not t then\n"
        "      t = {'{node:'..n..'}:inbox', 'MAXLEN', '~', '100000', '*', "
        "'t', 'B'}\n"
        "      by[n] = t; order[#order + 1] = n\n"
        "    end\n"
        "    t[#t + 1] = 'x'; t[#t + 1] = ARGV[i + 1]\n"
        "  end\n"
        "end\n"
        "for _, n in ipairs(order) do redis.call('XADD', unpack(by[n])) end\n"
        "return out\n",
    /* ARGV: me, user, expect line: a connect to user on another node.
     * Returns nil when user is not logged in, else {node, host, port,
     * key}; the expect goes to its node only when it listens (port). */
    [CHAT__SC_BUS_CONNECT] =
        "#!lua\n"
        "local me, u = ARGV[1], ARGV[2]\n"
        "local at = redis.call('HMGET', '{u:'..u..'}:at', 'node', 'host', "
        "'port', 'key')\n"
        "if not at[1] then return false end\n"
        "if at[1] ~= me and (at[3] or '0') ~= '0' then\n"
        "  redis.call('XADD', '{node:'..at[1]..'}:inbox', 'MAXLEN', '~', "
        "'100000', '*', 't', 'e', 'u', u, 'a', ARGV[3])\n"
        "end\n"
        "return {at[1], at[2] or '', at[3] or '0', at[4] or ''}\n",
    /* ARGV: me, group, seq: messages were stored for the group's members
     * (seq the lowest); each other node with members on it is told once,
     * with its members (m). Returns the members told. */
    [CHAT__SC_BUS_GROUP] =
        "#!lua\n"
        "local me, g = ARGV[1], ARGV[2]\n"
        "local by, told = {}, {}\n"
        "for _, m in ipairs(redis.call('ZRANGE', '{g:'..g..'}:members', 0, -1))"
        " do\n"
        "  local n = redis.call('HGET', '{u:'..m..'}:at', 'node')\n"
        "  if n and n ~= me then\n"
        "    local l = by[n]\n"
        "    if not l then l = {}; by[n] = l end\n"
        "    l[#l+1] = m\n"
        "    told[#told+1] = m\n"
        "  end\n"
        "end\n"
        "for n, l in pairs(by) do\n"
        "  redis.call('XADD', '{node:'..n..'}:inbox', 'MAXLEN', '~', '100000', "
        "'*', 't', 'm', 'u', '', 'a', ARGV[3], 'r', table.concat(l, ' '))\n"
        "end\n"
        "return told\n",
    /* ARGV: me, instance, ttl_ms, chunk, slot, grace_ms. Refreshes me's
     * liveness, and cleans up after nodes whose key expired: their users'
     * entries go and those users' contacts hear offline (here too); then
     * the messages carried to them and never settled are put among their
     * recipients' held messages (and a recipient logged in elsewhere is
     * told). Only one survivor takes each user (SPOP). A drained node is
     * forgotten grace_ms after it was first found drained, not at once:
     * a node may still carry to it on a stale route (route_cache.h), and
     * what lands there meanwhile is moved as the rest. Returns -1 when
     * me's own key had expired or
     * was another instance's (me was taken for dead: its sessions assert
     * themselves again), else how many users it cleaned up; and me's slot
     * (ARGV[5], kept, or a new one when it was lost; -1: none free). */
    [CHAT__SC_BUS_TICK] =
        "#!lua\n" FANOUT TAKE_SLOT STASH FORGET
        "local me, inst, ttl, chunk = ARGV[1], ARGV[2], ARGV[3], ARGV[4]\n"
        "local grace = tonumber(ARGV[6]) or 0\n"
        "local alive = '{node:'..me..'}:alive'\n"
        "local prev = redis.call('GET', alive)\n"
        "redis.call('SET', alive, inst, 'PX', ttl)\n"
        "redis.call('SADD', '{chat}:nodes', me)\n"
        "local slot = tonumber(ARGV[5])\n"
        "if redis.call('GET', '{chat}:slot:'..slot) == inst then\n"
        "  redis.call('PEXPIRE', '{chat}:slot:'..slot, ttl)\n"
        "else\n"
        "  slot = take_slot(inst, ttl)\n"
        "end\n"
        "if prev ~= inst then return {-1, slot} end\n"
        "local k = 0\n"
        "for _, n in ipairs(redis.call('SMEMBERS', '{chat}:nodes')) do\n"
        "  if n ~= me and redis.call('EXISTS', '{node:'..n..'}:alive') == 0 "
        "then\n"
        "    local gone = {}\n"
        "    for _, u in ipairs(redis.call('SPOP', '{node:'..n..'}:users', "
        "chunk)) do\n"
        "      local key = '{u:'..u..'}:at'\n"
        "      if redis.call('HGET', key, 'node') == n then\n"
        "        redis.call('DEL', key)\n"
        "        fanout(me, true, u, 'offline')\n"
        "        gone[#gone + 1] = u\n"
        "        k = k + 1\n"
        "      end\n"
        "    end\n"
        "    if #gone > 0 then forget(me, true, table.concat(gone, ' ')) end\n"
        "    local inbox = '{node:'..n..'}:inbox'\n"
        "    if redis.call('SCARD', '{node:'..n..'}:users') == 0 then\n"
        "      for _, e in ipairs(redis.call('XRANGE', inbox, '-', '+', "
        "'COUNT', chunk)) do\n"
        "        for _, f in ipairs(carried(e)) do\n"
        "          if redis.call('SISMEMBER', '{node:'..n..'}:stashed', "
        "e[1]..'/'..f.u) == 0 and stash(f) == 1 then\n"
        "            local at = redis.call('HGET', '{u:'..f.u..'}:at', 'node')\n"
        "            if at then\n"
        "              redis.call('XADD', '{node:'..at..'}:inbox', 'MAXLEN', "
        "'~', '100000', '*', 't', 'm', 'u', f.u, 'a', f.s)\n"
        "            end\n"
        "          end\n"
        "        end\n"
        "        redis.call('XDEL', inbox, e[1])\n"
        "      end\n"
        "      if redis.call('XLEN', inbox) == 0 then\n"
        "        local d = '{node:'..n..'}:drained'\n"
        "        local t = redis.call('TIME')\n"
        "        local now = tonumber(t[1]) * 1000 + "
        "math.floor(tonumber(t[2]) / 1000)\n"
        "        local since = tonumber(redis.call('GET', d) or '')\n"
        "        if not since then\n"
        "          redis.call('SET', d, tostring(now), 'PX', 10 * grace)\n"
        "        elseif now - since >= grace then\n"
        "          redis.call('SREM', '{chat}:nodes', n)\n"
        "          redis.call('DEL', inbox, '{node:'..n..'}:stashed', d)\n"
        "        end\n"
        "      end\n"
        "    end\n"
        "  end\n"
        "end\n"
        "return {k, slot}\n",
    /* ARGV: me, instance, ttl_ms, force. A node's start: while me's key
     * is another instance's (and not force), {value, pttl} is returned and
     * nothing done; else what an earlier life of me left is cleaned up
     * (its users offline to their contacts), me is alive, and {slot}. */
    [CHAT__SC_BUS_START] =
        "#!lua\n" FANOUT TAKE_SLOT STASH
        "local me, inst, ttl = ARGV[1], ARGV[2], ARGV[3]\n"
        "local alive = '{node:'..me..'}:alive'\n"
        "local cur = redis.call('GET', alive)\n"
        "if cur and cur ~= inst and ARGV[4] ~= '1' then\n"
        "  return {cur, tostring(redis.call('PTTL', alive))}\n"
        "end\n"
        "for _, u in ipairs(redis.call('SMEMBERS', '{node:'..me..'}:users')) "
        "do\n"
        "  local key = '{u:'..u..'}:at'\n"
        "  if redis.call('HGET', key, 'node') == me then\n"
        "    redis.call('DEL', key)\n"
        "    fanout(me, false, u, 'offline')\n"
        "  end\n"
        "end\n"
        "for _, e in ipairs(redis.call('XRANGE', '{node:'..me..'}:inbox', "
        "'-', '+')) do\n"
        "  for _, f in ipairs(carried(e)) do\n"
        "    if redis.call('SISMEMBER', '{node:'..me..'}:stashed', "
        "e[1]..'/'..f.u) == 0 and stash(f) == 1 then\n"
        "      local at = redis.call('HGET', '{u:'..f.u..'}:at', 'node')\n"
        "      if at and at ~= me then\n"
        "        redis.call('XADD', '{node:'..at..'}:inbox', 'MAXLEN', '~', "
        "'100000', '*', 't', 'm', 'u', f.u, 'a', f.s)\n"
        "      end\n"
        "    end\n"
        "  end\n"
        "end\n"
        "redis.call('DEL', '{node:'..me..'}:users', '{node:'..me..'}:inbox', "
        "'{node:'..me..'}:stashed', '{node:'..me..'}:drained')\n"
        "redis.call('SET', alive, inst, 'PX', ttl)\n"
        "redis.call('SADD', '{chat}:nodes', me)\n"
        "return {take_slot(inst, ttl)}\n",
};
