package session

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/madang-io/madang/protocol"
	"github.com/redis/go-redis/v9"
)

// RedisStore is a Store in Redis, shared by every server node. Keys (P is
// Config.Prefix, U the user key; all keys of a user share the hash tag
// {u:U}, so every script touches one slot):
//
//	P{u:U}:s:<sid>    hash: the session (fields below), or its tombstone
//	P{u:U}:u          set: the user's sids (for kicks and RevokeUser)
//	P session:events  pub/sub channel of kicks and revocations
//
// Expiry is logical: the hash holds the expiry time computed from
// Config.Now, checked by the scripts; Redis TTLs (up to 2*TTL+Tombstone
// after the last renewal) only collect garbage. A token is found by its
// session id and checked against the hash's copy of its secret part. Each
// call is one script (one round trip) on the user's node, plus one on the previous node while a Router
// migration is under way and the first missed.
type RedisStore struct {
	cfg    Config
	router *Router
	ch     string
	subs   subscribers

	ctr counters

	// noncePrefix (random per store) and nonceSeq make each GetFrame call's
	// nonce unique, so a resend of the same call is told from a replay.
	noncePrefix string
	nonceSeq    atomic.Uint64

	// Script arguments that never change, boxed once.
	argTTL, argTomb, argKeepAlive any

	mu     sync.Mutex
	closed bool
	subsc  []*subscription
}

var _ Store = (*RedisStore)(nil)

// NewRedisStore returns a store over the router's nodes.
func NewRedisStore(r *Router, cfg Config) (*RedisStore, error) {
	if r == nil {
		return nil, errors.New("session: nil router")
	}
	cfg = cfg.withDefaults()
	if strings.ContainsAny(cfg.Prefix, "{}") {
		return nil, fmt.Errorf("session: prefix %q contains a brace", cfg.Prefix)
	}
	s := &RedisStore{cfg: cfg, router: r, ch: cfg.Prefix + "session:events"}
	var nb [8]byte
	_, _ = rand.Read(nb[:]) // crypto/rand.Read never fails (Go 1.24+)
	s.noncePrefix = b64.EncodeToString(nb[:]) + "."
	s.argTTL, s.argTomb, s.argKeepAlive = msDur(cfg.TTL), msDur(cfg.Tombstone), msDur(s.keepAlive())
	return s, nil
}

// Close implements Store: it ends the pub/sub subscriptions and waits for
// their goroutines. The Redis clients stay open.
func (s *RedisStore) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	subsc := s.subsc
	s.subsc = nil
	s.mu.Unlock()
	for _, sub := range subsc {
		sub.stop()
	}
	s.subs.clear()
	return nil
}

func (s *RedisStore) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *RedisStore) userPrefix(uk int64) string {
	return s.cfg.Prefix + "{u:" + strconv.FormatInt(uk, 10) + "}:"
}

// The session hash has the fields st (state: absent while live, k kicked,
// r revoked), exp (live: expiry; ended: end of the tombstone, Unix ms), ls
// (last seen, Unix ms), ctr (highest accepted frame counter, decimal), cw
// (the replay window below it: 64 characters '0'/'1', the i-th (from 1)
// for counter ctr-i+1, as protocol.ReplayWindow.Seen; absent before the
// first frame and in sessions of older versions, read as all '1': the
// strict rule), fn and fc (the nonce of the last GetFrame call that
// accepted a counter, and that counter; fc absent in older sessions, where
// fn belongs to ctr), tk
// (the token's random part) and d (everything that never changes, encoded by
// encodeData; dropped when the session ends, so a tombstone keeps no
// secret).

// endAllLua ends the live sessions of the user set KEYS[1] with state
// ARGV[1], publishing an event for each. ARGV: 1 state, 2 now ms, 3 tombstone
// ms, 4 tombstone end ms, 5 user prefix, 6 channel, 7 user key. Returns the
// number ended.
const endAllLua = `
local function endAll(uset, state, now, tomb, tombEnd, up, ch, uk)
  local n = 0
  for _, sid in ipairs(redis.call('SMEMBERS', uset)) do
    local hk = up .. 's:' .. sid
    local f = redis.call('HMGET', hk, 'st', 'exp')
    if not f[2] then
      redis.call('SREM', uset, sid)
    elseif not f[1] and now < tonumber(f[2]) then
      redis.call('HSET', hk, 'st', state, 'exp', tombEnd)
      redis.call('HDEL', hk, 'd')
      redis.call('PEXPIRE', hk, tomb)
      redis.call('PUBLISH', ch, state .. ' ' .. uk .. '.' .. sid)
      n = n + 1
    end
  end
  return n
end
`

var endAllScript = redis.NewScript(endAllLua + `
return endAll(KEYS[1], ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
`)

// createScript: KEYS 1 user set, 2 session hash. ARGV 1-7 as
// endAll (state 'k'; ARGV[1] is ” when multiple sessions are allowed), 8
// keep-alive ms (2*ttl+tombstone), 9 sid, 10 the token's random part, then
// field/value pairs. The session id and token are new for each Create call,
// so they are its nonce: if the session hash already holds this token, the
// call is a resend of one that ran (go-redis retries a command whose reply
// was lost) and the script returns 0 without kicking the session it made.
var createScript = redis.NewScript(endAllLua + `
if redis.call('HGET', KEYS[2], 'tk') == ARGV[10] then return 0 end
local kicked = 0
if ARGV[1] ~= '' then
  kicked = endAll(KEYS[1], ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
end
local fields = {}
for i = 11, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[2], unpack(fields))
redis.call('PEXPIRE', KEYS[2], ARGV[8])
redis.call('SADD', KEYS[1], ARGV[9])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[8]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[8])
end
return kicked
`)

// getScript validates a session and slides it. KEYS: 1 user set, 2 the
// session hash. ARGV: 1 mode (t token, f frame, s secret peek), 2 now ms, 3
// ttl ms, 4 tombstone ms, 5 keep-alive ms, 6 the token's secret part (mode
// t) or the frame counter (mode f), 7 (mode f) the call's nonce. A frame
// counter is accepted as protocol.ReplayWindow.Accept does; the counters
// are decimal strings of up to 20 digits, beyond Lua's exact doubles, so
// delta computes their difference from two halves of 10 digits (exact
// when it is below 1e10, which is all the window needs). A refused counter
// equal to the last accepted one with the same nonce is a resend of the
// call that accepted it (go-redis retries a command whose reply was
// lost): it succeeds again without a second advance. The keys' Redis TTLs are renewed only
// when they would end before the new expiry plus the tombstone, so most
// calls skip the PEXPIREs. Returns {status} or {0, ls, ctr, tk, d}; {5,
// last} for a replayed counter. Status: 0 ok, 1 not found, 2 expired, 3
// kicked, 4 revoked, 5 replayed. Times are Unix ms, exact in Lua's doubles
// (below 2^53).
var getScript = redis.NewScript(`
local function halves(x)
  local n = #x
  if n <= 10 then return 0, tonumber(x) end
  return tonumber(string.sub(x, 1, n - 10)), tonumber(string.sub(x, n - 9))
end
local function delta(a, b)
  local ah, al = halves(a)
  local bh, bl = halves(b)
  return (ah - bh) * 1e10 + (al - bl)
end
local mode = ARGV[1]
local hk = KEYS[2]
local f = redis.call('HMGET', hk, 'st', 'exp', 'ls', 'ctr', 'tk', 'd', 'gc', 'fn', 'cw', 'fc')
if not f[2] or (mode == 't' and f[5] ~= ARGV[6]) then return {1} end
local now = tonumber(ARGV[2])
local exp = tonumber(f[2])
local tomb = tonumber(ARGV[4])
if f[1] then
  if now >= exp then return {1} end
  if f[1] == 'k' then return {3} end
  return {4}
end
if now >= exp + tomb then return {1} end
if now >= exp then return {2} end
if mode == 's' then return {0, f[3], f[4], f[5], f[6]} end
local newExp = now + tonumber(ARGV[3])
if mode == 'f' then
  local c = ARGV[6]
  local last = f[4]
  local w = f[9] or string.rep('1', 64)
  local d = delta(c, last)
  if d > 0 then
    if d >= 64 then
      w = '1' .. string.rep('0', 63)
    else
      w = '1' .. string.rep('0', d - 1) .. string.sub(w, 1, 64 - d)
    end
    redis.call('HSET', hk, 'ctr', c, 'cw', w, 'fn', ARGV[7], 'fc', c, 'ls', ARGV[2], 'exp', string.format('%d', newExp))
  elseif d > -64 and string.sub(w, 1 - d, 1 - d) == '0' then
    w = string.sub(w, 1, -d) .. '1' .. string.sub(w, 2 - d)
    redis.call('HSET', hk, 'cw', w, 'fn', ARGV[7], 'fc', c, 'ls', ARGV[2], 'exp', string.format('%d', newExp))
  else
    if f[8] == ARGV[7] and (f[10] or last) == c then return {0, f[3], f[4], f[5], f[6]} end
    return {5, last}
  end
else
  redis.call('HSET', hk, 'ls', ARGV[2], 'exp', string.format('%d', newExp))
end
if not f[7] or tonumber(f[7]) < newExp + tomb then
  redis.call('HSET', hk, 'gc', string.format('%d', now + tonumber(ARGV[5])))
  redis.call('PEXPIRE', hk, ARGV[5])
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
end
return {0, f[3], f[4], f[5], f[6]}
`)

// revokeScript: KEYS 1 session hash. ARGV 1 now ms, 2 tombstone ms, 3
// tombstone end ms, 4 channel, 5 key id. Returns 1 if it revoked a live
// session.
var revokeScript = redis.NewScript(`
local f = redis.call('HMGET', KEYS[1], 'st', 'exp')
if not f[2] or f[1] or tonumber(ARGV[1]) >= tonumber(f[2]) then return 0 end
redis.call('HSET', KEYS[1], 'st', 'r', 'exp', ARGV[3])
redis.call('HDEL', KEYS[1], 'd')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PUBLISH', ARGV[4], 'r ' .. ARGV[5])
return 1
`)

// Modes of getScript.
const (
	modeToken  = "t"
	modeFrame  = "f"
	modeSecret = "s"
)

func ms(t time.Time) string        { return strconv.FormatInt(t.UnixMilli(), 10) }
func msDur(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }

// Create implements Store.
func (s *RedisStore) Create(ctx context.Context, n CreateParams) (*Session, error) {
	if err := n.validate(); err != nil {
		return nil, err
	}
	if s.isClosed() {
		return nil, ErrClosed
	}
	token, id, secret := newToken(n.UserKey)
	_, _, tokRand, _ := splitToken(token)
	_, sid, _ := split(id)
	now := s.cfg.Now()
	up := s.userPrefix(n.UserKey)
	state := "k"
	if s.cfg.AllowMultiple {
		state = ""
	}
	end := s.endArgs(state, now, n.UserKey)
	args := append(end,
		msDur(s.keepAlive()), sid, tokRand,
		"exp", ms(now.Add(s.cfg.TTL)), "gc", ms(now.Add(s.keepAlive())), "ls", ms(now), "ctr", "0", "tk", tokRand,
		"d", encodeData(&n, now.UnixMilli(), secret))
	keys := []string{up + "u", up + "s:" + sid}
	kicked, err := createScript.Run(ctx, s.router.Node(n.UserKey), keys, args...).Uint64()
	if err != nil {
		err = unavailable("create", err)
		s.ctr.failed(err)
		return nil, err
	}
	s.ctr.created.Add(1)
	s.ctr.kicked.Add(kicked)
	if old := s.router.Moving(n.UserKey); old != nil && !s.cfg.AllowMultiple {
		// The user may still have a session on the node of the previous
		// layout: kick it there too.
		kicked, err := endAllScript.Run(ctx, old, []string{up + "u"}, end...).Uint64()
		if err != nil {
			err = unavailable("create: kick on the previous node", err)
			s.ctr.failed(err)
			return nil, err
		}
		s.ctr.kicked.Add(kicked)
	}
	return &Session{
		Token: token, ID: id, UserKey: n.UserKey, ShardID: n.ShardID,
		ClientVersion: n.ClientVersion, Platform: n.Platform, DeviceID: n.DeviceID,
		Country: n.Country, Language: n.Language,
		Created: time.UnixMilli(now.UnixMilli()), LastSeen: time.UnixMilli(now.UnixMilli()),
		Secret: secret, Attrs: cloneAttrs(n.Attrs),
	}, nil
}

// keepAlive is the Redis TTL given to a live session's keys: the logical
// lifetime plus the tombstone, plus one more TTL of slack so a Get renews it
// only about once per TTL instead of on every call.
func (s *RedisStore) keepAlive() time.Duration { return 2*s.cfg.TTL + s.cfg.Tombstone }

// endArgs are the ARGV of endAll.
func (s *RedisStore) endArgs(state string, now time.Time, uk int64) []any {
	return []any{state, ms(now), msDur(s.cfg.Tombstone), ms(now.Add(s.cfg.Tombstone)),
		s.userPrefix(uk), s.ch, strconv.FormatInt(uk, 10)}
}

// Stats returns the store's counters.
func (s *RedisStore) Stats() Stats { return s.ctr.stats() }

// Get implements Store.
func (s *RedisStore) Get(ctx context.Context, token string) (*Session, error) {
	uk, id, secretPart, err := splitToken(token)
	if err != nil {
		s.ctr.lookup(err)
		return nil, err
	}
	sess, err := s.get(ctx, uk, modeToken, id[len(id)-sidLen:], secretPart, 0, "")
	s.ctr.lookup(err)
	return sess, err
}

// GetFrame implements Store.
func (s *RedisStore) GetFrame(ctx context.Context, keyID string, counter uint64) (*Session, error) {
	uk, sid, err := split(keyID)
	if err != nil {
		s.ctr.lookup(err)
		return nil, err
	}
	nonce := s.noncePrefix + strconv.FormatUint(s.nonceSeq.Add(1), 36)
	sess, err := s.get(ctx, uk, modeFrame, sid, strconv.FormatUint(counter, 10), counter, nonce)
	s.ctr.lookup(err)
	return sess, err
}

// Secret implements Store.
func (s *RedisStore) Secret(ctx context.Context, keyID string) ([]byte, error) {
	uk, sid, err := split(keyID)
	if err != nil {
		return nil, err
	}
	sess, err := s.get(ctx, uk, modeSecret, sid, "", 0, "")
	if err != nil {
		return nil, err
	}
	return sess.Secret, nil
}

func (s *RedisStore) get(ctx context.Context, uk int64, mode, sid, arg string, counter uint64, nonce string) (*Session, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	sess, err := s.getOn(ctx, s.router.Node(uk), uk, mode, sid, arg, counter, nonce)
	if errors.Is(err, ErrNotFound) {
		if old := s.router.Moving(uk); old != nil {
			return s.getOn(ctx, old, uk, mode, sid, arg, counter, nonce)
		}
	}
	return sess, err
}

// getOn runs getScript on node c; arg is the token's secret part (mode
// token) or the counter (mode frame); nonce (mode frame) is unique to the
// GetFrame call.
func (s *RedisStore) getOn(ctx context.Context, c redis.UniversalClient, uk int64, mode, sid, arg string, counter uint64, nonce string) (*Session, error) {
	up := s.userPrefix(uk)
	keys := []string{up + "u", up + "s:" + sid}
	now := ms(s.cfg.Now())
	var cmd *redis.Cmd
	if mode == modeFrame {
		cmd = getScript.Run(ctx, c, keys, mode, now, s.argTTL, s.argTomb, s.argKeepAlive, arg, nonce)
	} else {
		cmd = getScript.Run(ctx, c, keys, mode, now, s.argTTL, s.argTomb, s.argKeepAlive, arg)
	}
	res, err := cmd.Slice()
	if err != nil {
		return nil, unavailable("get", err)
	}
	if len(res) == 0 {
		return nil, unavailable("get", errors.New("empty script reply"))
	}
	status, _ := res[0].(int64)
	switch status {
	case 0:
	case 1:
		return nil, ErrNotFound
	case 2:
		return nil, ErrExpired
	case 3:
		return nil, ErrKicked
	case 4:
		return nil, ErrRevoked
	case 5:
		last := ""
		if len(res) > 1 {
			last, _ = res[1].(string)
		}
		return nil, fmt.Errorf("session: counter %d, highest accepted %s: %w", counter, last, protocol.ErrReplayed)
	default:
		return nil, unavailable("get", fmt.Errorf("script status %d", status))
	}
	if len(res) != 5 {
		return nil, unavailable("get", fmt.Errorf("script reply of %d elements", len(res)))
	}
	str := func(i int) string { v, _ := res[i].(string); return v }
	id := strconv.FormatInt(uk, 10) + "." + sid
	sess := &Session{Token: id + str(3), ID: id, UserKey: uk}
	ls, _ := strconv.ParseInt(str(1), 10, 64)
	sess.LastSeen = time.UnixMilli(ls)
	sess.Counter, _ = strconv.ParseUint(str(2), 10, 64)
	if err := decodeData(str(4), sess); err != nil {
		return nil, unavailable("get", err)
	}
	if mode == modeFrame {
		sess.Counter = counter
	}
	return sess, nil
}

// encodeData encodes the fields of a session that never change: each as a
// uvarint length and its bytes, in a fixed order; then the attributes as a
// count and key/value pairs.
func encodeData(n *CreateParams, created int64, secret []byte) string {
	b := make([]byte, 0, 128)
	put := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	put(strconv.Itoa(n.ShardID))
	put(n.ClientVersion)
	put(n.Platform)
	put(n.DeviceID)
	put(n.Country)
	put(n.Language)
	put(strconv.FormatInt(created, 10))
	put(string(secret))
	b = binary.AppendUvarint(b, uint64(len(n.Attrs)))
	for k, v := range n.Attrs {
		put(k)
		put(v)
	}
	return string(b)
}

var errData = errors.New("session: corrupt session data")

// decodeData fills s from encodeData's output. The strings share d's
// memory.
func decodeData(d string, s *Session) error {
	next := func() (string, bool) {
		n, w := binary.Uvarint([]byte(d[:min(len(d), binary.MaxVarintLen64)]))
		if w <= 0 || uint64(len(d)-w) < n {
			return "", false
		}
		v := d[w : w+int(n)]
		d = d[w+int(n):]
		return v, true
	}
	var f [8]string
	for i := range f {
		v, ok := next()
		if !ok {
			return errData
		}
		f[i] = v
	}
	shard, err1 := strconv.Atoi(f[0])
	created, err2 := strconv.ParseInt(f[6], 10, 64)
	if err1 != nil || err2 != nil {
		return errData
	}
	s.ShardID, s.ClientVersion, s.Platform, s.DeviceID = shard, f[1], f[2], f[3]
	s.Country, s.Language, s.Created, s.Secret = f[4], f[5], time.UnixMilli(created), []byte(f[7])
	na, w := binary.Uvarint([]byte(d[:min(len(d), binary.MaxVarintLen64)]))
	if w <= 0 || na > MaxAttrs {
		return errData
	}
	d = d[w:]
	if na > 0 {
		s.Attrs = make(map[string]string, na)
		for range na {
			k, ok1 := next()
			v, ok2 := next()
			if !ok1 || !ok2 {
				return errData
			}
			s.Attrs[k] = v
		}
	}
	return nil
}

// Revoke implements Store.
func (s *RedisStore) Revoke(ctx context.Context, keyID string) error {
	uk, sid, err := split(keyID)
	if err != nil {
		return nil // nothing to revoke
	}
	if s.isClosed() {
		return ErrClosed
	}
	now := s.cfg.Now()
	up := s.userPrefix(uk)
	for _, c := range s.homes(uk) {
		n, err := revokeScript.Run(ctx, c, []string{up + "s:" + sid},
			ms(now), msDur(s.cfg.Tombstone), ms(now.Add(s.cfg.Tombstone)), s.ch, keyID).Uint64()
		if err != nil {
			err = unavailable("revoke", err)
			s.ctr.failed(err)
			return err
		}
		s.ctr.revoked.Add(n)
	}
	return nil
}

// RevokeUser implements Store.
func (s *RedisStore) RevokeUser(ctx context.Context, userKey int64) error {
	if s.isClosed() {
		return ErrClosed
	}
	args := s.endArgs("r", s.cfg.Now(), userKey)
	for _, c := range s.homes(userKey) {
		n, err := endAllScript.Run(ctx, c, []string{s.userPrefix(userKey) + "u"}, args...).Uint64()
		if err != nil {
			err = unavailable("revoke user", err)
			s.ctr.failed(err)
			return err
		}
		s.ctr.revoked.Add(n)
	}
	return nil
}

// homes returns the user's node and, during a migration, the previous one.
func (s *RedisStore) homes(uk int64) []redis.UniversalClient {
	if old := s.router.Moving(uk); old != nil {
		return []redis.UniversalClient{s.router.Node(uk), old}
	}
	return []redis.UniversalClient{s.router.Node(uk)}
}

// Subscribe implements Store. The first call subscribes to the events
// channel on every node of the router, waiting (up to 5 s) for each node to
// confirm. A subscription follows its node's commands to another server
// (after a Sentinel failover, the new master) within about three
// Config.ProbeInterval, and an event may then arrive twice; events published
// while a node's subscription is reconnecting are lost (go-redis
// resubscribes by itself).
func (s *RedisStore) Subscribe(fn func(Event)) (cancel func()) {
	cancel = s.subs.add(fn)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.subsc != nil {
		return cancel
	}
	for _, n := range s.router.Nodes() {
		ctx, stop := context.WithTimeout(context.Background(), 5*time.Second)
		sub, err := subscribe(ctx, n, []string{s.ch}, s.cfg.Prefix+"session:probe:", s.cfg.ProbeInterval,
			s.onEvent, s.cfg.Logger, &s.ctr.resubscribed)
		stop()
		if err != nil {
			s.cfg.Logger.Warn("session: subscribe to events", "err", err)
		}
		s.subsc = append(s.subsc, sub)
	}
	return cancel
}

func (s *RedisStore) onEvent(m *redis.Message) {
	ev, ok := parseEvent(m.Payload)
	if !ok {
		s.cfg.Logger.Warn("session: malformed event", "payload", m.Payload)
		return
	}
	s.subs.emit(ev)
}

// parseEvent decodes "<k|r> <keyID>".
func parseEvent(p string) (Event, bool) {
	kind, id, ok := strings.Cut(p, " ")
	if !ok {
		return Event{}, false
	}
	uk, _, err := split(id)
	if err != nil {
		return Event{}, false
	}
	switch kind {
	case "k":
		return Event{Kind: EventKicked, UserKey: uk, SessionID: id}, true
	case "r":
		return Event{Kind: EventRevoked, UserKey: uk, SessionID: id}, true
	}
	return Event{}, false
}

// UserSessions implements SessionLister: one SMEMBERS of the user's set,
// then each session read as Secret reads it (no TTL slid), on the user's
// node and, while keys move, the previous one.
func (s *RedisStore) UserSessions(ctx context.Context, userKey int64) ([]*Session, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	seen := map[string]bool{}
	var out []*Session
	for _, c := range s.homes(userKey) {
		sids, err := c.SMembers(ctx, s.userPrefix(userKey)+"u").Result()
		if err != nil {
			return nil, unavailable("user sessions", err)
		}
		for _, sid := range sids {
			if seen[sid] {
				continue
			}
			sess, err := s.getOn(ctx, c, userKey, modeSecret, sid, "", 0, "")
			switch {
			case err == nil:
				seen[sid] = true
				out = append(out, listed(sess))
			case errors.Is(err, ErrNotFound), errors.Is(err, ErrExpired), errors.Is(err, ErrKicked), errors.Is(err, ErrRevoked):
			default:
				return nil, err
			}
		}
	}
	sortSessions(out)
	return out, nil
}
