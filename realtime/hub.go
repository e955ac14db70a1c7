package realtime

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/session"
)

// Defaults for Config.
const (
	DefaultReadLimit          = 64 << 10
	DefaultSendQueueLen       = 128
	DefaultWriteTimeout       = 10 * time.Second
	DefaultPingInterval       = 25 * time.Second
	DefaultPongTimeout        = 10 * time.Second
	DefaultHandshakeTimeout   = 10 * time.Second
	DefaultSessionRefresh     = 5 * time.Minute
	DefaultCommandTimeout     = 10 * time.Second
	DefaultMaxChannels        = 64
	DefaultShards             = 64
	DefaultMaxBatchBytes      = 32 << 10
	DefaultHistorySize        = 100
	DefaultHistoryTTL         = 10 * time.Minute
	DefaultHistoryLimit       = 100
	DefaultWorldPartitionSize = 500
	DefaultMaxWorldPartitions = 1000
	DefaultChatRate           = 2
	DefaultChatBurst          = 10
	DefaultCommandRate        = 50
	DefaultCommandBurst       = 100
	DefaultMaxMessageSize     = 1024
	DefaultDeliveryQueueLen   = 1024
	DefaultPresenceInterval   = 20 * time.Second
	DefaultPresenceBatch      = 500
	DefaultMaxUserConns       = 8
)

// ChatLimitName is the name of the chat limit (Config.ChatRate) in
// Config.Limiter: the state key of a session.RedisLimiter ends with
// ":rl:rt.chat".
const ChatLimitName = "rt.chat"

// ConnRetryAfter is the retry hint (HTTP Retry-After, seconds) of a
// handshake refused by Config.MaxUserConns.
const ConnRetryAfter = 5 * time.Second

// ErrTooManyConns refuses a connection over Config.MaxUserConns: HTTP 429
// with the body "rate_limited" and Retry-After (ConnRetryAfter), before the
// websocket upgrade.
var ErrTooManyConns = &protocol.Error{Code: protocol.CodeRateLimited, Message: "realtime: too many connections for this user", RetryAfter: ConnRetryAfter}

// Built-in commands the hub answers itself. Every other command goes to
// Config.Handler.
const (
	// CmdSubscribe {"ch", "since":{"offset","epoch"}}: join a channel. The
	// reply {"ch","offset","epoch"} names the channel joined ("world" gives
	// a partition) and its position; then come the publications after
	// since (when given), then live ones, with no gap and no duplicate.
	// A since the history cannot fill fails with position_lost (not
	// subscribed: reload, then subscribe without since).
	CmdSubscribe = "rt.subscribe"
	// CmdUnsubscribe {"ch"}: leave a channel.
	CmdUnsubscribe = "rt.unsubscribe"
	// CmdPublish {"ch","data"}: chat on a subscribed channel. Subscribers get
	// the push "chat" with payload {"from":userKey,"data":data}. The reply
	// is the publication's position {"offset","epoch"}.
	CmdPublish = "rt.publish"
	// CmdWhisper {"to":userKey,"data"}: a private message, delivered on
	// any node as the push "whisper" {"from","data"} on the receiver's user
	// channel.
	CmdWhisper = "rt.whisper"
	// CmdHistory {"ch","since","limit"}: the kept publications after since
	// as a list of pushes, {"pubs":[...],"offset","epoch"}. Allowed on
	// subscribed channels and the caller's own user channel.
	CmdHistory = "rt.history"
)

// Push topics the hub writes.
const (
	TopicChat    = "chat"
	TopicWhisper = "whisper"
)

// Config configures a Hub. The zero value works: every default is on its
// field.
type Config struct {
	// Handler serves every command that is not a built-in rt.* command: the
	// same chain as HTTP. The hub fills Request.Principal from the
	// connection's session (and Request.Token with the connection's token
	// when the envelope has none, so a chain that starts with
	// session.Middleware authenticates as over HTTP). Nil: other commands
	// answer unknown_command.
	//
	// On an authenticated connection the hub accepts the frame counter of
	// each command it serves itself in the session store (Sessions.GetFrame,
	// one round trip), so every frame runs once per session whatever the
	// connection; the frames it passes to Handler keep their key id and
	// counter (Request.KeyID, Request.Counter) for Handler to accept, as
	// session.Middleware does. A Handler without it leaves the game
	// commands' counters checked on their connection only.
	Handler protocol.Handler
	// Broker carries publications between nodes. The hub Starts it (a
	// broker serves one hub) and does not Close it: close it after
	// Shutdown. Nil: a MemoryBroker the hub owns and closes (single node).
	Broker Broker
	// Codec configures the frame codec (XOR key, compression, limits); its
	// Role is ignored (always RoleServer). Its MaxUnauthenticatedBodySize
	// (64 KiB by default) limits the decoded body of frames on plain and XOR
	// connections, MaxBodySize (4 MiB) that on authenticated ones.
	Codec protocol.Config
	// DecodeBudget bounds the bytes that decoded client frames hold at once
	// (protocol.DecodeBudget): a frame's body is charged from before it is
	// allocated until its command is answered; a frame that gets no room
	// within the budget's wait is answered rate_limited with a retry hint
	// (the connection stays open). Frames of plain and XOR connections are
	// charged as unauthenticated. Give the hub the budget the process's
	// HTTP handlers use (protocol.HTTPConfig.DecodeBudget), so both
	// transports share one bound. Default: a budget of the hub's own with
	// the protocol.DecodeBudgetConfig defaults (64 MiB).
	DecodeBudget *protocol.DecodeBudget
	// RefusePlain refuses connections with mode=plain (HTTP 403 before the
	// upgrade), for production configs that require XOR or authenticated
	// frames. Default false: plain frames are accepted (development).
	RefusePlain bool
	// ReadLimit is the largest websocket message a client may send; a larger
	// one closes the connection (websocket status 1009). Default 64 KiB.
	ReadLimit int64
	// SendQueueLen is how many messages (replies and pushes) may wait for a
	// connection's writer. A connection whose queue is full is closed with
	// slow_consumer, so it never slows the others. The queue is allocated
	// the first time a message has to wait (a message to a connection with
	// nothing waiting is written at once). Default 128.
	SendQueueLen int
	// MaxBatchBytes is how many bytes of queued frames the writer puts in
	// one websocket message at most (one frame alone may be larger).
	// Default 32 KiB.
	MaxBatchBytes int
	// WriteTimeout bounds one websocket write; a client that does not take
	// the bytes in time is disconnected. Default 10 s.
	WriteTimeout time.Duration
	// PingInterval is how often the server pings an idle-or-not connection;
	// PongTimeout how long it waits for the pong before closing it (with
	// timeout). A ping is not sent while a command runs, and one whose wait
	// overlapped a command does not count (the pong waits behind it): the
	// next ping decides. Defaults 25 s and 10 s.
	PingInterval time.Duration
	PongTimeout  time.Duration
	// SessionRefresh is how often each connection re-validates its session
	// with Store.Get: that slides the session's TTL while the player is only
	// connected (chatting, no HTTP requests) and closes the connection with
	// the store's code when the session ended without an event (expired).
	// Default 5 minutes; negative turns it off.
	SessionRefresh time.Duration
	// HandshakeTimeout bounds the token check and websocket upgrade.
	// Default 10 s.
	HandshakeTimeout time.Duration
	// CommandTimeout bounds one command's handling. Default 10 s.
	CommandTimeout time.Duration
	// MaxChannels is how many channels one connection may subscribe to
	// (its user channel not counted); more fail with bad_request. Default
	// 64.
	MaxChannels int
	// Shards splits the channel → subscribers and user → connections maps
	// (and their locks and delivery goroutines) by hash. Default 64.
	Shards int
	// DeliveryQueueLen is how many publications may wait for each shard's
	// delivery goroutine; when full the broker's delivery waits. Default
	// 1024.
	DeliveryQueueLen int
	// HistorySize and HistoryTTL are how publications are kept for
	// resuming (PublishOptions); HistoryLimit is the most one subscribe or
	// history call returns. Defaults 100, 10 minutes, 100. A negative
	// HistorySize keeps none (live only).
	HistorySize  int
	HistoryTTL   time.Duration
	HistoryLimit int
	// WorldPartitionSize is how many members a world chat partition takes
	// (counted across nodes by Presence) before "world" sends newcomers to
	// the next; at most MaxWorldPartitions partitions. Defaults 500 and
	// 1000.
	WorldPartitionSize int
	MaxWorldPartitions int
	// ChatRate (per second) and ChatBurst limit each user's rt.publish and
	// rt.whisper, counted in Limiter under ChatLimitName: per user, not per
	// connection, so closing and reopening connections gives nothing back.
	// Over it the command answers rate_limited with retry_ms. Defaults 2/s
	// and 10.
	ChatRate  float64
	ChatBurst int
	// Limiter keeps the users' chat rate. Nodes that share a Broker should
	// share one (a session.RedisLimiter on the sessions' Redis), so the
	// limit holds across nodes too. When it fails (its Redis is down) chat
	// passes unlimited (fail open), counted in Stats.LimiterErrors and
	// logged at most once a minute. Nil: a session.MemoryLimiter of the
	// hub's own (this node's users, across their reconnects).
	Limiter session.Limiter
	// MaxUserConns is how many websocket connections one user may hold on
	// this node; one more is refused at the handshake (ErrTooManyConns:
	// HTTP 429 "rate_limited", Retry-After 5 s) and counted in
	// Stats.ConnsRefused. With a Presence shared by several nodes
	// (Config.Presence), the user's connections on the other nodes count
	// too: one Presence.Where per handshake (fail open when it fails;
	// connections of a node that died count until the Presence TTL; two
	// handshakes racing on two nodes may both pass). Default 8
	// (DefaultMaxUserConns); negative: no cap.
	MaxUserConns int
	// CommandRate (per second) and CommandBurst limit every frame a
	// connection sends: over it the frame answers rate_limited; a client
	// that keeps sending until it owes another CommandBurst frames is
	// disconnected with rate_limited. Defaults 50/s and 100.
	CommandRate  float64
	CommandBurst int
	// MaxMessageSize bounds a chat message's data (JSON bytes); larger ones
	// answer too_large. Default 1 KiB.
	MaxMessageSize int
	// Authorize decides who may subscribe to, publish on or read the
	// history of guild and custom channels (world, user and system channels
	// follow fixed rules). Nil refuses guild and custom channels.
	Authorize AuthorizeFunc
	// Validate checks (and may rewrite) each chat message and whisper before
	// it is published: an error is answered with its code (CodeOf).
	// Nil: no check beyond MaxMessageSize.
	Validate func(ctx context.Context, m *ChatMessage) error
	// Presence tracks who is online and each channel's online count across
	// nodes (Hub.Online, rt.presence, world partition choice). Nodes that
	// share a Broker should share one Presence (a RedisPresence on the same
	// Redis). Nil: a MemoryPresence with the default TTL, owned by the hub
	// (one node).
	Presence Presence
	// NodeID names this node in Presence (Hub.Online's nodes). Default: a
	// random hex string per Hub.
	NodeID string
	// PresenceInterval is how often the hub reports all its connections to
	// Presence (Touch, PresenceBatch connections per call: one round trip
	// per batch). It must be well below the Presence's TTL (default TTL
	// 60 s): a connection not reported within the TTL is offline. Default
	// 20 s.
	PresenceInterval time.Duration
	// PresenceBatch is how many connections one heartbeat Touch carries.
	// Default 500.
	PresenceBatch int
	// OriginPatterns are the browser origins allowed besides the request's
	// own host (websocket.AcceptOptions). Native clients send no Origin.
	OriginPatterns []string
	// Logger receives connection and backend failures. Nil: silent.
	Logger *slog.Logger
	// Now is the server clock (push and reply times). Default time.Now.
	Now func() time.Time
}

func (c *Config) applyDefaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if c.ReadLimit <= 0 {
		c.ReadLimit = DefaultReadLimit
	}
	if c.DecodeBudget == nil {
		c.DecodeBudget = protocol.NewDecodeBudget(protocol.DecodeBudgetConfig{})
	}
	def(&c.SendQueueLen, DefaultSendQueueLen)
	def(&c.MaxBatchBytes, DefaultMaxBatchBytes)
	defDur(&c.WriteTimeout, DefaultWriteTimeout)
	defDur(&c.PingInterval, DefaultPingInterval)
	defDur(&c.PongTimeout, DefaultPongTimeout)
	defDur(&c.HandshakeTimeout, DefaultHandshakeTimeout)
	if c.SessionRefresh == 0 {
		c.SessionRefresh = DefaultSessionRefresh
	}
	defDur(&c.CommandTimeout, DefaultCommandTimeout)
	def(&c.MaxChannels, DefaultMaxChannels)
	def(&c.Shards, DefaultShards)
	def(&c.DeliveryQueueLen, DefaultDeliveryQueueLen)
	if c.HistorySize == 0 {
		c.HistorySize = DefaultHistorySize
	}
	if c.HistorySize < 0 {
		c.HistorySize = 0
	}
	defDur(&c.HistoryTTL, DefaultHistoryTTL)
	def(&c.HistoryLimit, DefaultHistoryLimit)
	def(&c.WorldPartitionSize, DefaultWorldPartitionSize)
	def(&c.MaxWorldPartitions, DefaultMaxWorldPartitions)
	if c.ChatRate <= 0 {
		c.ChatRate = DefaultChatRate
	}
	def(&c.ChatBurst, DefaultChatBurst)
	if c.CommandRate <= 0 {
		c.CommandRate = DefaultCommandRate
	}
	def(&c.CommandBurst, DefaultCommandBurst)
	if c.MaxUserConns == 0 {
		c.MaxUserConns = DefaultMaxUserConns
	}
	def(&c.MaxMessageSize, DefaultMaxMessageSize)
	defDur(&c.PresenceInterval, DefaultPresenceInterval)
	def(&c.PresenceBatch, DefaultPresenceBatch)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Limiter == nil {
		c.Limiter = session.NewMemoryLimiter(session.LimiterConfig{Now: c.Now})
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Hub is a realtime node: it accepts websocket connections (it is an
// http.Handler), authenticates them with session tokens, runs their
// commands and fans publications out to them. Several hubs share channels
// through a Broker.
//
// Structure: channel → subscribers and user → connections maps are split
// over Config.Shards shards by hash, each with its own lock and delivery
// goroutine (a channel's publications are delivered in order by its shard).
// A publication is turned into a push, marshalled and compressed once per
// node (protocol.Codec.Prepare) and the same bytes are queued to every
// subscriber; only XOR or sealing is done per connection, by its writer.
type Hub struct {
	cfg        Config
	store      Sessions
	broker     Broker
	ownsBroker bool
	codec      *protocol.Codec
	log        *slog.Logger
	seed       maphash.Seed
	pubOpts    PublishOptions
	writerIdle time.Duration
	// fanoutChunk: the fewest subscribers a goroutine of a fan-out serves
	fanoutChunk int

	chans []*chanShard
	users []*userShard
	world worldPartitions

	presence presenceState
	resyncCh chan struct{}

	ctx        context.Context // ends at Shutdown: every connection's parent
	cancel     context.CancelFunc
	unsubEvent func()
	shutting   atomic.Bool
	connWG     sync.WaitGroup
	shardWG    sync.WaitGroup
	bgWG       sync.WaitGroup // presence heartbeat and resync goroutines

	stats hubStats

	rooms atomic.Pointer[Rooms] // set by NewRooms
}

type hubStats struct {
	conns, published, delivered, slow atomic.Int64
	refused, limiterErrors            atomic.Int64
	limiterLogged                     atomic.Int64 // Unix ns of the last limiter failure logged
	inline                            atomic.Int64 // frames conn.sendInline wrote itself (tests)
}

// Stats are a hub's counters, for metrics.
type Stats struct {
	Connections int64 // open connections now
	Published   int64 // publications delivered to this node by the broker
	Delivered   int64 // pushes queued to (or written at once on) connections
	SlowClosed  int64 // connections closed with slow_consumer
	// ConnsRefused counts handshakes refused by Config.MaxUserConns.
	ConnsRefused int64
	// LimiterErrors counts chat messages let through because
	// Config.Limiter failed.
	LimiterErrors int64
}

// Stats returns the hub's counters.
func (h *Hub) Stats() Stats {
	return Stats{
		Connections: h.stats.conns.Load(),
		Published:   h.stats.published.Load(),
		Delivered:   h.stats.delivered.Load(),
		SlowClosed:  h.stats.slow.Load(),

		ConnsRefused:  h.stats.refused.Load(),
		LimiterErrors: h.stats.limiterErrors.Load(),
	}
}

type chanShard struct {
	subMu sync.Mutex // serializes membership changes (and broker subscribes)
	mu    sync.RWMutex
	chans map[string]*subSet // guarded by mu; written by subMu holders only
	in    chan Publication
	body  []byte // the delivery goroutine's scratch

	// pos is the last position this node delivered (or a subscribe read)
	// for each channel with subscribers here: fanout drops a publication
	// not after it (a duplicate, e.g. after Resync), and Resync reads the
	// missed ones after it.
	posMu sync.Mutex
	pos   map[string]StreamPosition
}

// subSet is one channel's subscribers on this node. A subscribe appends
// and an unsubscribe swaps the last member into the leaver's place (each
// sub knows its index): O(1), nothing copied. Fan-out iterates a snapshot,
// an immutable copy of members made by the first publication after a
// change (snapshot), so a channel that only gains members (connections
// subscribing, idle) copies nothing, and one that changes between
// publications copies its list once per publication, no more than the
// fan-out itself touches. All fields are guarded by the shard's mu.
type subSet struct {
	members []*sub
	snap    []*sub // nil: stale (members changed since it was taken)
}

// add appends sb (sb.idx is its position from then on).
func (set *subSet) add(sb *sub) {
	sb.idx = len(set.members)
	set.members = append(set.members, sb)
	set.snap = nil
}

// remove takes sb out (the last member takes its place); false when sb is
// not a member. The list shrinks when mostly empty, so a channel that was
// large once does not keep its peak.
func (set *subSet) remove(sb *sub) bool {
	i := sb.idx
	if i < 0 || i >= len(set.members) || set.members[i] != sb {
		return false
	}
	last := len(set.members) - 1
	if i != last {
		moved := set.members[last]
		set.members[i], moved.idx = moved, i
	}
	set.members[last] = nil
	set.members = set.members[:last]
	sb.idx = -1
	if c := cap(set.members); c > 64 && len(set.members) < c/4 {
		set.members = append(make([]*sub, 0, 2*len(set.members)), set.members...)
	}
	set.snap = nil
	return true
}

// subscribers returns the channel's subscribers on this node, to iterate
// without the lock: the snapshot, taken now when the set changed since the
// last one. Nil when none.
func (s *chanShard) subscribers(ch string) []*sub {
	s.mu.RLock()
	set := s.chans[ch]
	var snap []*sub
	if set != nil {
		snap = set.snap
	}
	s.mu.RUnlock()
	if set == nil || snap != nil {
		return snap
	}
	s.mu.Lock()
	if set = s.chans[ch]; set != nil {
		if set.snap == nil {
			set.snap = slices.Clone(set.members)
		}
		snap = set.snap
	}
	s.mu.Unlock()
	return snap
}

// subscribed reports whether ch has subscribers on this node.
func (s *chanShard) subscribed(ch string) bool {
	s.mu.RLock()
	_, ok := s.chans[ch]
	s.mu.RUnlock()
	return ok
}

type userShard struct {
	mu    sync.Mutex
	users map[int64]*userState
	ended map[string]time.Time // session ids ended recently (kick/revoke race at connect)
}

type userState struct {
	conns []*conn
}

// Sessions is what a Hub needs of a session store: every session.Store
// (session.MemoryStore, session.RedisStore) is one. A studio with its own
// session service wraps it in these three methods.
type Sessions interface {
	// Get validates a bearer token (the handshake, and the periodic
	// re-check every Config.SessionRefresh): a *session.Session, or an
	// error whose protocol code says why not (session.ErrNotFound,
	// ErrExpired, ErrKicked, ErrRevoked, ErrUnavailable).
	Get(ctx context.Context, token string) (*session.Session, error)
	// GetFrame accepts an authenticated frame's counter for the session
	// with key id keyID (Session.ID), once, as session.Store.GetFrame does:
	// the hub calls it for the commands it serves itself, so a frame
	// replayed on another connection or over HTTP is refused
	// (protocol.ErrReplayed).
	GetFrame(ctx context.Context, keyID string, counter uint64) (*session.Session, error)
	// Subscribe calls fn for every kick and revocation, from any node,
	// until the returned cancel func is called; the hub closes the
	// session's connections. fn must not block.
	Subscribe(fn func(session.Event)) (cancel func())
}

var (
	_ Sessions = (session.Store)(nil)
	_ Sessions = (*session.MemoryStore)(nil)
	_ Sessions = (*session.RedisStore)(nil)
)

// NewHub returns a Hub that authenticates connections against store (any
// session.Store) and starts its delivery goroutines (and the broker).
// Shutdown stops them.
func NewHub(store Sessions, cfg Config) (*Hub, error) {
	if store == nil {
		return nil, errors.New("realtime: NewHub: nil session store")
	}
	cfg.applyDefaults()
	cc := cfg.Codec
	cc.Role = protocol.RoleServer
	codec, err := protocol.NewCodec(cc)
	if err != nil {
		return nil, fmt.Errorf("realtime: %w", err)
	}
	h := &Hub{cfg: cfg, store: store, broker: cfg.Broker, codec: codec, log: cfg.Logger, seed: maphash.MakeSeed(), writerIdle: defaultWriterIdle, fanoutChunk: fanoutChunk}
	if cfg.HistorySize > 0 {
		h.pubOpts = PublishOptions{HistorySize: cfg.HistorySize, HistoryTTL: cfg.HistoryTTL}
	}
	if h.broker == nil {
		h.broker = NewMemoryBroker(MemoryBrokerConfig{})
		h.ownsBroker = true
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.chans = make([]*chanShard, cfg.Shards)
	h.users = make([]*userShard, cfg.Shards)
	for i := range h.chans {
		h.chans[i] = &chanShard{chans: make(map[string]*subSet), in: make(chan Publication, cfg.DeliveryQueueLen), pos: make(map[string]StreamPosition)}
		h.users[i] = &userShard{users: make(map[int64]*userState), ended: make(map[string]time.Time)}
	}
	for _, s := range h.chans {
		h.shardWG.Add(1)
		go h.runShard(s)
	}
	if err := h.broker.Start(h.ctx, h.deliver); err != nil {
		h.cancel()
		h.shardWG.Wait()
		return nil, fmt.Errorf("realtime: start broker: %w", err)
	}
	h.unsubEvent = store.Subscribe(h.onSessionEvent)
	h.startBackground()
	return h, nil
}

func (h *Hub) chanShard(channel string) *chanShard {
	return h.chans[maphash.String(h.seed, channel)%uint64(len(h.chans))]
}

func (h *Hub) userShard(userKey int64) *userShard {
	u := uint64(userKey)
	return h.users[(u^u>>17)%uint64(len(h.users))]
}

// deliver is the broker's callback: it queues the publication to its
// channel's shard (waiting when that queue is full).
func (h *Hub) deliver(p Publication) {
	if r := h.rooms.Load(); r != nil {
		if p.Channel == r.nodeChan {
			r.inboxPut(p)
			return
		}
		r.seen(p) // before this node's members get it
	}
	s := h.chanShard(p.Channel)
	select {
	case s.in <- p:
	case <-h.ctx.Done():
	}
}

func (h *Hub) runShard(s *chanShard) {
	defer h.shardWG.Done()
	for {
		select {
		case p := <-s.in:
			h.fanout(s, p)
		case <-h.ctx.Done():
			return
		}
	}
}

// fanout delivers one publication to this node's subscribers: one push
// body, one prepared (compressed) frame, shared by all.
func (h *Hub) fanout(s *chanShard, p Publication) {
	h.stats.published.Add(1)
	subs := s.subscribers(p.Channel)
	if len(subs) == 0 {
		return
	}
	ok, gapAfter, gap := s.check(&p)
	if !ok {
		return // a duplicate (already delivered, e.g. by Resync)
	}
	if gap {
		h.fillGap(s, &p, gapAfter)
		subs = s.subscribers(p.Channel)
	}
	s.setPos(&p)
	h.fanoutTo(s, subs, p)
}

// fanoutTo delivers p to subs (the channel's subscribers on this node).
func (h *Hub) fanoutTo(s *chanShard, subs []*sub, p Publication) {
	var m message
	if err := parseMessage(p.Data, &m); err != nil {
		h.log.Warn("realtime: dropped a malformed broker message", "ch", p.Channel, "err", err)
		return
	}
	var prep protocol.Prepared
	var err error
	s.body, err = h.pushBody(s.body[:0], &p, &m)
	if err == nil {
		err = h.codec.PrepareInto(&prep, s.body)
	}
	if err != nil {
		h.log.Warn("realtime: cannot encode a push", "ch", p.Channel, "err", err)
		return
	}
	out := outMsg{prep: &prep, offset: p.Offset, epoch: p.Epoch}
	deliver := func(subs []*sub) {
		for _, sb := range subs {
			if m.hasFilter && !matchFilter(&m.filter, sb.c.principal) {
				continue
			}
			sb.deliver(out)
		}
	}
	// A connection with nothing queued is written to by the delivering
	// goroutine itself (conn.sendInline): a large channel's subscribers
	// are split among up to GOMAXPROCS goroutines, and the next
	// publication waits for all of them (each connection gets a channel's
	// publications in order).
	workers := min(runtime.GOMAXPROCS(0), len(subs)/h.fanoutChunk)
	if workers <= 1 {
		deliver(subs)
		return
	}
	per := (len(subs) + workers - 1) / workers
	var wg sync.WaitGroup
	for lo := per; lo < len(subs); lo += per {
		part := subs[lo:min(lo+per, len(subs))]
		wg.Go(func() { deliver(part) })
	}
	deliver(subs[:per])
	wg.Wait()
}

// fanoutChunk is the fewest subscribers of one publication a goroutine of
// its fan-out serves (Hub.fanoutChunk, changed by tests).
const fanoutChunk = 512

// pushBody appends the protocol.Push JSON of a publication.
func (h *Hub) pushBody(dst []byte, p *Publication, m *message) ([]byte, error) {
	push := protocol.Push{Topic: string(m.topic), Channel: p.Channel, ID: p.Offset, ServerTime: m.stime, Payload: m.payload}
	if p.Offset == 1 {
		push.Epoch = p.Epoch
	}
	if len(push.Payload) > 0 && !json.Valid(push.Payload) {
		return dst, errMessage
	}
	return protocol.AppendPush(dst, &push), nil
}

// Publish publishes a server push on channel, to its subscribers on every
// node: they get a protocol.Push with topic, the channel, the publication's
// offset as id, and payload (JSON; nil for none). It returns the channel's
// position after it.
func (h *Hub) Publish(ctx context.Context, channel, topic string, payload json.RawMessage) (StreamPosition, error) {
	return h.publish(ctx, channel, topic, nil, payload)
}

// PushUser sends a push to every connection of one user, on any node,
// through the user's channel (UserChannel).
func (h *Hub) PushUser(ctx context.Context, userKey int64, topic string, payload json.RawMessage) error {
	_, err := h.publish(ctx, UserChannel(userKey), topic, nil, payload)
	return err
}

// Broadcast sends a push on the system channel to every connection that
// subscribed to it, on every node, whose session matches f (the zero Filter
// matches all): notices, events, maintenance announcements.
func (h *Hub) Broadcast(ctx context.Context, f Filter, topic string, payload json.RawMessage) (StreamPosition, error) {
	return h.publish(ctx, ChannelSystem, topic, &f, payload)
}

func (h *Hub) publish(ctx context.Context, channel, topic string, f *Filter, payload json.RawMessage) (StreamPosition, error) {
	if !validChannel(channel) {
		return StreamPosition{}, fmt.Errorf("realtime: publish: invalid channel name %q", channel)
	}
	if len(payload) > 0 && !json.Valid(payload) {
		return StreamPosition{}, fmt.Errorf("realtime: publish on %q: payload is not valid JSON", channel)
	}
	size := 10 + 2*binary.MaxVarintLen16 + len(topic) + len(payload)
	if f != nil {
		size += 4*binary.MaxVarintLen16 + len(f.ClientVersion) + len(f.Country) + len(f.Language) + len(f.Platform)
	}
	data := appendMessage(make([]byte, 0, size), h.cfg.Now().UnixMilli(), topic, f, payload)
	pos, err := h.broker.Publish(ctx, channel, data, h.pubOpts)
	if err != nil {
		return pos, fmt.Errorf("realtime: publish on %q: %w", channel, err)
	}
	return pos, nil
}

// onSessionEvent closes the connections of a kicked or revoked session.
func (h *Hub) onSessionEvent(ev session.Event) {
	code := protocol.CodeSessionRevoked
	if ev.Kind == session.EventKicked {
		code = protocol.CodeKicked
	}
	us := h.userShard(ev.UserKey)
	us.mu.Lock()
	now := time.Now()
	if len(us.ended) > 1000 {
		for id, t := range us.ended {
			if now.Sub(t) > time.Minute {
				delete(us.ended, id)
			}
		}
	}
	us.ended[ev.SessionID] = now
	var victims []*conn
	if u := us.users[ev.UserKey]; u != nil {
		for _, c := range u.conns {
			if c.sess.ID == ev.SessionID {
				victims = append(victims, c)
			}
		}
	}
	us.mu.Unlock()
	for _, c := range victims {
		c.close(code, code.String())
	}
}

// ServeHTTP upgrades the request to a websocket connection after checking
// its session token (query parameter "token" or "Authorization: Bearer").
// The query parameter "mode" (plain, xor, authenticated; default plain)
// chooses how the connection's frames are protected, both ways. A missing
// or refused token answers HTTP 401 (403 for kicked or revoked sessions)
// before the upgrade, with the result code name as the body. After the
// upgrade ServeHTTP returns: the connection is served on goroutines of its
// own until it closes (Shutdown waits for them).
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.shutting.Load() {
		http.Error(w, protocol.CodeGoingAway.String(), http.StatusServiceUnavailable)
		return
	}
	h.connWG.Add(1)
	defer h.connWG.Done()
	if h.shutting.Load() { // Shutdown may have started waiting before Add
		http.Error(w, protocol.CodeGoingAway.String(), http.StatusServiceUnavailable)
		return
	}
	token := r.URL.Query().Get("token")
	if a := r.Header.Get("Authorization"); token == "" && len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		token = a[7:]
	}
	mode, ok := parseMode(r.URL.Query().Get("mode"))
	switch {
	case !ok:
		http.Error(w, protocol.CodeBadRequest.String()+": unknown mode", http.StatusBadRequest)
		return
	case mode == protocol.ModeXOR && h.cfg.Codec.XORKey == nil:
		http.Error(w, protocol.CodeBadRequest.String()+": xor mode not configured", http.StatusBadRequest)
		return
	case mode == protocol.ModePlain && h.cfg.RefusePlain:
		http.Error(w, protocol.CodeForbidden.String()+": plain frames refused", http.StatusForbidden)
		return
	case token == "" || len(token) > protocol.MaxTokenLen:
		http.Error(w, protocol.CodeUnauthorized.String(), http.StatusUnauthorized)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.HandshakeTimeout)
	sess, err := h.store.Get(ctx, token)
	cancel()
	if err != nil {
		code := protocol.CodeOf(err)
		status := http.StatusUnauthorized
		switch code {
		case protocol.CodeKicked, protocol.CodeSessionRevoked:
			status = http.StatusForbidden
		case protocol.CodeUnavailable, protocol.CodeTimeout, protocol.CodeInternal:
			status = http.StatusServiceUnavailable
		}
		http.Error(w, code.String(), status)
		return
	}
	c, err := h.newConn(sess, token, mode, r.RemoteAddr)
	if errors.Is(err, ErrTooManyConns) {
		w.Header().Set("Retry-After", strconv.Itoa(int(ConnRetryAfter/time.Second)))
		http.Error(w, protocol.CodeRateLimited.String(), http.StatusTooManyRequests)
		return
	}
	if err != nil {
		http.Error(w, protocol.CodeOf(err).String(), http.StatusBadRequest)
		return
	}
	c.serve(w, r)
}

func parseMode(s string) (protocol.Mode, bool) {
	switch s {
	case "", "plain":
		return protocol.ModePlain, true
	case "xor":
		return protocol.ModeXOR, true
	case "authenticated", "auth":
		return protocol.ModeAuthenticated, true
	}
	return 0, false
}

// Shutdown stops accepting connections, closes every connection with
// going_away (after its queued messages), waits for them until ctx ends
// (then closes the rest at once), stops the delivery goroutines and, when
// the hub created it, the broker.
func (h *Hub) Shutdown(ctx context.Context) error {
	if h.shutting.Swap(true) {
		return errors.New("realtime: Shutdown called twice")
	}
	h.unsubEvent()
	if r := h.rooms.Load(); r != nil {
		_ = r.Close() // members on other nodes get room.end going_away
	}
	for _, us := range h.users {
		us.mu.Lock()
		var all []*conn
		for _, u := range us.users {
			all = append(all, u.conns...)
		}
		us.mu.Unlock()
		for _, c := range all {
			c.close(protocol.CodeGoingAway, "going_away")
		}
	}
	done := make(chan struct{})
	go func() { h.connWG.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		h.cancel() // every connection's context: their reads and writes end now
		<-done
	}
	h.cancel()
	h.shardWG.Wait()
	h.bgWG.Wait()
	if h.ownsBroker {
		h.broker.Close()
	}
	return err
}

// addSub adds sb to its channel on this node, subscribing the node on the
// broker for the channel's first subscriber.
func (h *Hub) addSub(ctx context.Context, sb *sub) error {
	s := h.chanShard(sb.channel)
	s.subMu.Lock()
	defer s.subMu.Unlock()
	s.mu.RLock()
	set := s.chans[sb.channel]
	s.mu.RUnlock()
	if set == nil {
		if err := h.broker.Subscribe(ctx, sb.channel); err != nil {
			return fmt.Errorf("realtime: subscribe %q: %w", sb.channel, err)
		}
		set = &subSet{}
	}
	s.mu.Lock()
	set.add(sb)
	s.chans[sb.channel] = set
	s.mu.Unlock()
	if KindOf(sb.channel) == KindWorld {
		h.world.add(sb.channel, 1)
	}
	return nil
}

func (h *Hub) removeSub(sb *sub) {
	s := h.chanShard(sb.channel)
	s.subMu.Lock()
	defer s.subMu.Unlock()
	s.mu.Lock()
	set := s.chans[sb.channel]
	if set == nil || !set.remove(sb) {
		s.mu.Unlock()
		return
	}
	last := len(set.members) == 0
	if last {
		delete(s.chans, sb.channel)
	}
	s.mu.Unlock()
	if KindOf(sb.channel) == KindWorld {
		h.world.add(sb.channel, -1)
	}
	if !last {
		return
	}
	s.posMu.Lock()
	delete(s.pos, sb.channel)
	s.posMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.CommandTimeout)
	if err := h.broker.Unsubscribe(ctx, sb.channel); err != nil {
		h.log.Warn("realtime: broker unsubscribe failed", "ch", sb.channel, "err", err)
	}
	cancel()
}
