package realtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisBrokerConfig configures a RedisBroker. The zero value works.
type RedisBrokerConfig struct {
	// Prefix starts every key and pub/sub channel name the broker uses, so
	// several applications (or tests) can share one Redis. It must not
	// contain '{' or '}'. Default "madang:rt:".
	Prefix string
	// Buckets is, on Redis Cluster, the number of sharded pub/sub channels
	// (and hash slots) the broker's channels are spread over: channel c goes
	// to bucket fnv32a(c) mod Buckets, whose history keys and pub/sub channel
	// share the hash tag {b:<bucket>}. A node holds one pub/sub connection
	// per bucket it listens to and receives every publication of those
	// buckets (it drops the ones of channels it did not subscribe to).
	// Between 1 and 16384; default 16. Every node sharing a Prefix must use
	// the same value. Unused on a single node or Sentinel.
	Buckets int
	// PingInterval is how long a pub/sub connection may stay silent before
	// the broker pings it to check it is alive; after another interval
	// without an answer the broker replaces the connection (and
	// resubscribes). Default 10s.
	PingInterval time.Duration
	// ReconnectBackoff is the pause after a pub/sub connection failed before
	// the broker reconnects it (and resubscribes). Default 100ms.
	ReconnectBackoff time.Duration
	// OnResubscribed, when set, is called after a pub/sub connection that
	// failed (or whose Cluster slot moved) is subscribed again. Publications
	// made in between were not delivered on this node, and a channel whose
	// publishing then stopped shows no gap in its offsets: the caller may
	// compare its channels' positions with History. It runs on the broker's
	// goroutine and must not block. Nil: not called. A Hub whose
	// Config.Broker is this broker resyncs by itself (Hub.Resync) without
	// it.
	OnResubscribed func()
	// Logger receives pub/sub connection failures and reconnections. Nil:
	// silent.
	Logger *slog.Logger
}

func (c RedisBrokerConfig) withDefaults() RedisBrokerConfig {
	if c.Prefix == "" {
		c.Prefix = "madang:rt:"
	}
	if c.Buckets <= 0 {
		c.Buckets = 16
	}
	if c.PingInterval <= 0 {
		c.PingInterval = 10 * time.Second
	}
	if c.ReconnectBackoff <= 0 {
		c.ReconnectBackoff = 100 * time.Millisecond
	}
	return c
}

// RedisBroker is a Broker in Redis, for a single node, Sentinel (a
// failover client) or Redis Cluster.
//
// Each channel with history has two keys: a hash holding its epoch and
// latest offset, and a Redis Stream holding its latest publications with
// stream IDs "<offset>-0". Publish with history is one Lua script that
// creates the epoch if the hash is gone, increments the offset, appends to
// the stream (XADD MAXLEN HistorySize), sets both keys' TTL to HistoryTTL
// and publishes, so the stored publication and its delivery are atomic and
// the publications of a channel are delivered in offset order. With P the
// prefix and c the channel, keys and pub/sub channels are:
//
//	single node, Sentinel:  P{c:<c>}:m  P{c:<c>}:h   pub/sub P{c:<c>} (PUBLISH, one per channel)
//	Cluster:                P{b:<n>}:m:<c>  P{b:<n>}:h:<c>   sharded pub/sub P{b:<n>} (SPUBLISH)
//
// where n is the channel's bucket (RedisBrokerConfig.Buckets). On Cluster
// the broker uses sharded pub/sub: classic PUBLISH is broadcast over the
// cluster bus to every node, so its cost grows with the cluster, whereas
// SPUBLISH stays on the shard owning the slot. A script's keys and its
// SPUBLISH channel share the bucket's hash tag, so each script touches one
// slot. Sharded subscriptions must name channels of one slot per command,
// hence one pub/sub connection per bucket.
//
// A node holds one pub/sub connection (single node, Sentinel) or one per
// bucket in use (Cluster), read by one broker goroutine each. When a
// connection fails the broker reconnects it and resubscribes every channel:
// after an error (go-redis reconnects), after a ping unanswered for one
// PingInterval (a half-open connection), after a Sentinel or Cluster
// failover, and when a Cluster slot moves (Redis ends the sharded
// subscription, or answers MOVED). Publications made meanwhile are not
// delivered (at most once); History returns them, and
// RedisBrokerConfig.OnResubscribed says when to look.
//
// Epochs: a channel's epoch is created when its hash is missing (first
// publication, HistoryTTL expiry, a Redis restart without persistence), so
// offsets never repeat within an epoch unless Redis loses acknowledged
// writes while keeping the hash, as an asynchronous replica promoted
// before it caught up can: then offsets may be reused in the same epoch.
type RedisBroker struct {
	rc      redis.UniversalClient
	cfg     RedisBrokerConfig
	sharded bool

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	epochPrefix string
	epochSeq    atomic.Uint64

	published, delivered, foreign, malformed, reconnects, failures atomic.Uint64

	hubResync atomic.Pointer[func()] // set by the Hub using the broker

	mu      sync.RWMutex
	started bool
	closed  bool
	deliver func(Publication)
	subs    map[string]struct{} // channels this node subscribed to
	groups  map[int]*psGroup    // pub/sub connections: key 0, or the bucket on Cluster
	topics  map[string]int      // sharded: bucket topic -> number of subscribed channels in it
}

var _ Broker = (*RedisBroker)(nil)

// NewRedisBroker returns a broker over client, which may be a *redis.Client
// (single node or Sentinel failover client) or a *redis.ClusterClient
// (sharded pub/sub, see RedisBroker). A *redis.Ring is refused: its keys and
// pub/sub channels are placed by different rules. The broker does not close
// client.
func NewRedisBroker(client redis.UniversalClient, cfg RedisBrokerConfig) (*RedisBroker, error) {
	if client == nil {
		return nil, errors.New("realtime: nil redis client")
	}
	if _, ok := client.(*redis.Ring); ok {
		return nil, errors.New("realtime: redis.Ring is not supported by the broker")
	}
	cfg = cfg.withDefaults()
	if strings.ContainsAny(cfg.Prefix, "{}") {
		return nil, fmt.Errorf("realtime: broker prefix %q contains a brace", cfg.Prefix)
	}
	if cfg.Buckets > 16384 {
		return nil, fmt.Errorf("realtime: broker buckets %d above 16384", cfg.Buckets)
	}
	_, sharded := client.(*redis.ClusterClient)
	var eb [6]byte
	_, _ = rand.Read(eb[:]) // crypto/rand.Read never fails (Go 1.24+)
	ctx, cancel := context.WithCancel(context.Background())
	return &RedisBroker{
		rc: client, cfg: cfg, sharded: sharded,
		ctx: ctx, cancel: cancel,
		epochPrefix: hex.EncodeToString(eb[:]),
		subs:        make(map[string]struct{}),
		groups:      make(map[int]*psGroup),
		topics:      make(map[string]int),
	}, nil
}

// notifyResubscribed makes the broker call f (Hub.Resync) after a
// resubscription, besides RedisBrokerConfig.OnResubscribed.
func (b *RedisBroker) notifyResubscribed(f func()) { b.hubResync.Store(&f) }

// keys returns the group (bucket or 0), the meta and history keys and the
// pub/sub channel of channel ch.
func (b *RedisBroker) keys(ch string) (group int, meta, hist, topic string) {
	if !b.sharded {
		topic = b.cfg.Prefix + "{c:" + ch + "}"
		return 0, topic + ":m", topic + ":h", topic
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(ch))
	n := int(h.Sum32() % uint32(b.cfg.Buckets))
	topic = b.cfg.Prefix + "{b:" + strconv.Itoa(n) + "}"
	return n, topic + ":m:" + ch, topic + ":h:" + ch, topic
}

// newEpoch returns an epoch no other call of any broker returns: a random
// per-broker prefix and a counter. It is only stored when the channel has
// none.
func (b *RedisBroker) newEpoch() string {
	return b.epochPrefix + strconv.FormatUint(b.epochSeq.Add(1), 36)
}

// Start implements Broker. ctx bounds nothing after Start returns: Close
// stops delivery.
func (b *RedisBroker) Start(ctx context.Context, deliver func(Publication)) error {
	if deliver == nil {
		return errors.New("realtime: nil deliver func")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	if b.started {
		return errors.New("realtime: broker already started")
	}
	b.started = true
	b.deliver = deliver
	return ctx.Err()
}

// RedisBrokerStats are a RedisBroker's counters since it was created.
type RedisBrokerStats struct {
	Published  uint64 // successful Publish calls
	Delivered  uint64 // publications passed to the deliver func
	Foreign    uint64 // publications received for channels not subscribed here (other channels of a Cluster bucket, or in flight at Unsubscribe), dropped
	Malformed  uint64 // pub/sub messages that did not decode, dropped
	Reconnects uint64 // pub/sub connections that failed and were reconnected (each may have lost publications)
	Failures   uint64 // calls that failed with ErrUnavailable
}

// Stats returns the broker's counters.
func (b *RedisBroker) Stats() RedisBrokerStats {
	return RedisBrokerStats{
		Published: b.published.Load(), Delivered: b.delivered.Load(), Foreign: b.foreign.Load(),
		Malformed: b.malformed.Load(), Reconnects: b.reconnects.Load(), Failures: b.failures.Load(),
	}
}

func (b *RedisBroker) unavailable(op string, err error) error {
	if b.ctx.Err() != nil {
		return ErrClosed
	}
	b.failures.Add(1)
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, op, err)
}

// psGroup is one pub/sub connection and the goroutine reading it.
type psGroup struct {
	b  *RedisBroker
	ps *redis.PubSub

	// cmdMu serializes (un)subscribe commands with the wait for their
	// confirmation, so a confirmation always answers the command waiting.
	cmdMu sync.Mutex

	mu      sync.Mutex
	waiting map[string]chan struct{} // subscribed topic -> closed once its subscription is confirmed
	broken  bool                     // the connection failed: log the next resubscription
	closed  bool
	running bool // guarded by b.mu
}

// groupLocked returns the pub/sub group n, creating it. Its connection
// is made by its first subscribe command (on Cluster, to the node owning the
// bucket's slot) and its goroutine starts after that command. Called with
// b.mu held.
func (b *RedisBroker) groupLocked(n int) *psGroup {
	if g := b.groups[n]; g != nil {
		return g
	}
	g := &psGroup{b: b, waiting: make(map[string]chan struct{})}
	if b.sharded {
		g.ps = b.rc.SSubscribe(b.ctx)
	} else {
		g.ps = b.rc.Subscribe(b.ctx)
	}
	b.groups[n] = g
	return g
}

// start starts the group's goroutine once, unless the broker is closed.
func (g *psGroup) start() {
	b := g.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || g.running {
		return
	}
	g.running = true
	b.wg.Add(1)
	go g.run()
}

// close closes the group's connection; its goroutine ends.
func (g *psGroup) close() {
	g.mu.Lock()
	g.closed = true
	ps := g.ps
	for _, w := range g.waiting {
		closeOnce(w) // a Subscribe still waiting returns: the group is gone
	}
	g.mu.Unlock()
	_ = ps.Close()
}

// pubsub returns the group's current PubSub (rebuild replaces it).
func (g *psGroup) pubsub() *redis.PubSub {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ps
}

// rebuild replaces the group's connection with a new one and subscribes
// its topics there. go-redis reconnects a connection that failed, but not
// one that went silent (a half-open TCP connection: no answer to pings),
// and on Cluster it follows neither the end of a sharded subscription whose
// slot moved (an unsolicited sunsubscribe) nor a resubscription refused
// with MOVED after a failover: the broker does. It does not take cmdMu: a
// topic added to waiting before the swap is subscribed on the new
// connection, and a subscribe command sent after it uses the new one.
func (g *psGroup) rebuild() {
	b := g.b
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	old := g.ps
	if b.sharded {
		g.ps = b.rc.SSubscribe(b.ctx)
	} else {
		g.ps = b.rc.Subscribe(b.ctx)
	}
	ps := g.ps
	topics := make([]string, 0, len(g.waiting))
	for t := range g.waiting {
		topics = append(topics, t)
	}
	g.mu.Unlock()
	_ = old.Close()
	if len(topics) == 0 {
		return
	}
	// A failure shows in the next receive, which retries.
	if b.sharded {
		_ = ps.SSubscribe(b.ctx, topics...)
	} else {
		_ = ps.Subscribe(b.ctx, topics...)
	}
}

// backoff waits ReconnectBackoff; false when the broker closed meanwhile.
func (g *psGroup) backoff() bool {
	select {
	case <-g.b.ctx.Done():
		return false
	case <-time.After(g.b.cfg.ReconnectBackoff):
		return true
	}
}

// failed counts and logs a connection failure once per outage.
func (g *psGroup) failed(err error) {
	g.mu.Lock()
	first := !g.broken
	g.broken = true
	g.mu.Unlock()
	if first {
		g.b.reconnects.Add(1)
		if g.b.cfg.Logger != nil {
			g.b.cfg.Logger.Warn("realtime: broker pub/sub connection failed; reconnecting", "err", err)
		}
	}
}

func (g *psGroup) isClosed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}

// closeOnce closes w unless it is nil or closed. Called with the group's
// mu held.
func closeOnce(w chan struct{}) {
	if w == nil {
		return
	}
	select {
	case <-w:
	default:
		close(w)
	}
}

// run reads the group's connection until Close.
func (g *psGroup) run() {
	defer g.b.wg.Done()
	b := g.b
	pinged := false
	for {
		ps := g.pubsub()
		msg, err := ps.ReceiveTimeout(b.ctx, b.cfg.PingInterval)
		if err != nil {
			if b.ctx.Err() != nil || g.isClosed() {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Silence: a ping checks the connection. A closed one
				// fails the write and go-redis reconnects; a half-open
				// one stays silent for another interval and is replaced.
				if pinged {
					pinged = false
					g.failed(fmt.Errorf("no answer to a ping within %v", b.cfg.PingInterval))
					g.rebuild()
					continue
				}
				pinged = true
				_ = ps.Ping(b.ctx)
				continue
			}
			pinged = false
			g.failed(err)
			if !g.backoff() {
				return
			}
			var re redis.Error
			if b.sharded && errors.As(err, &re) {
				// An error reply (MOVED after a failover): go-redis keeps
				// the connection, so replace it.
				g.rebuild()
			}
			continue
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Message:
			b.dispatch(m.Payload)
		case *redis.Subscription:
			g.mu.Lock()
			resubscribed := g.broken
			if g.broken {
				g.broken = false
				if b.cfg.Logger != nil {
					b.cfg.Logger.Info("realtime: broker pub/sub reconnected and resubscribed")
				}
			}
			if m.Kind == "subscribe" || m.Kind == "ssubscribe" {
				closeOnce(g.waiting[m.Channel])
			}
			// The broker never sends SUNSUBSCRIBE (it closes the group), so
			// this one is Redis ending the subscription: its slot moved.
			moved := m.Kind == "sunsubscribe" && g.waiting[m.Channel] != nil
			g.mu.Unlock()
			if resubscribed {
				if f := b.hubResync.Load(); f != nil {
					(*f)()
				}
				if b.cfg.OnResubscribed != nil {
					b.cfg.OnResubscribed()
				}
			}
			if moved {
				g.failed(fmt.Errorf("redis ended the sharded subscription to %q (its slot moved)", m.Channel))
				if cc, ok := b.rc.(*redis.ClusterClient); ok {
					cc.ReloadState(b.ctx)
				}
				if !g.backoff() {
					return
				}
				g.rebuild()
			}
		}
	}
}

// subscribe sends one subscribe command for the topics in send (not yet
// subscribed) and waits until Redis confirmed every topic of send and wait
// (subscribed by an earlier call, maybe still unconfirmed).
func (g *psGroup) subscribe(ctx context.Context, send, wait []string) error {
	if len(send) > 0 {
		g.cmdMu.Lock()
		g.mu.Lock()
		for _, t := range send {
			if g.waiting[t] == nil {
				g.waiting[t] = make(chan struct{})
			}
		}
		g.mu.Unlock()
		var err error
		if g.b.sharded {
			err = g.pubsub().SSubscribe(ctx, send...)
		} else {
			err = g.pubsub().Subscribe(ctx, send...)
		}
		// On a write error the topics stay in the PubSub's set and the
		// reconnection resubscribes them: their confirmation still comes.
		if err != nil && g.b.cfg.Logger != nil {
			g.b.cfg.Logger.Warn("realtime: broker subscribe", "err", err)
		}
		g.start()
		err = g.await(ctx, send)
		g.cmdMu.Unlock()
		if err != nil {
			return err
		}
	}
	return g.await(ctx, wait)
}

// await waits until the topics' subscriptions are confirmed.
func (g *psGroup) await(ctx context.Context, topics []string) error {
	for _, t := range topics {
		g.mu.Lock()
		w := g.waiting[t]
		g.mu.Unlock()
		if w == nil {
			continue // unsubscribed meanwhile
		}
		select {
		case <-w:
		case <-ctx.Done():
			return ctx.Err()
		case <-g.b.ctx.Done():
			return ErrClosed
		}
	}
	return nil
}

func (g *psGroup) unsubscribe(ctx context.Context, topics []string) error {
	g.cmdMu.Lock()
	defer g.cmdMu.Unlock()
	g.mu.Lock()
	for _, t := range topics {
		// Release any Subscribe still waiting: the topic is gone.
		closeOnce(g.waiting[t])
		delete(g.waiting, t)
	}
	g.mu.Unlock()
	if g.b.sharded {
		return g.pubsub().SUnsubscribe(ctx, topics...)
	}
	return g.pubsub().Unsubscribe(ctx, topics...)
}

// Subscribe implements Broker. It returns when Redis confirmed every new
// subscription, so while Redis is unreachable it waits for ctx: give it a
// deadline.
func (b *RedisBroker) Subscribe(ctx context.Context, channels ...string) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	if !b.started {
		b.mu.Unlock()
		return errors.New("realtime: broker Subscribe before Start")
	}
	type todo struct{ send, wait []string }
	byGroup := map[*psGroup]*todo{}
	var added []string
	for _, ch := range channels {
		n, _, _, topic := b.keys(ch)
		g := b.groupLocked(n)
		td := byGroup[g]
		if td == nil {
			td = &todo{}
			byGroup[g] = td
		}
		if _, ok := b.subs[ch]; ok {
			td.wait = append(td.wait, topic)
			continue
		}
		b.subs[ch] = struct{}{}
		added = append(added, ch)
		if b.sharded {
			b.topics[topic]++
			if b.topics[topic] > 1 {
				td.wait = append(td.wait, topic)
				continue
			}
		}
		td.send = append(td.send, topic)
	}
	b.mu.Unlock()
	for g, td := range byGroup {
		if err := g.subscribe(ctx, td.send, td.wait); err != nil {
			_ = b.Unsubscribe(context.Background(), added...)
			if errors.Is(err, ErrClosed) {
				return err
			}
			return b.unavailable("subscribe", err)
		}
	}
	return nil
}

// Unsubscribe implements Broker.
func (b *RedisBroker) Unsubscribe(ctx context.Context, channels ...string) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	byGroup := map[*psGroup][]string{}
	var drop []*psGroup
	for _, ch := range channels {
		if _, ok := b.subs[ch]; !ok {
			continue
		}
		delete(b.subs, ch)
		n, _, _, topic := b.keys(ch)
		if b.sharded {
			b.topics[topic]--
			if b.topics[topic] > 0 {
				continue
			}
			delete(b.topics, topic)
			// The bucket's last channel: close its connection rather
			// than keep one with no subscription, which a reconnection
			// would make to a random node.
			if g := b.groups[n]; g != nil {
				delete(b.groups, n)
				drop = append(drop, g)
			}
			continue
		}
		if g := b.groups[n]; g != nil {
			byGroup[g] = append(byGroup[g], topic)
		}
	}
	b.mu.Unlock()
	for _, g := range drop {
		g.close()
	}
	var first error
	for g, topics := range byGroup {
		// Deliveries stop at once (dispatch checks b.subs); a failed
		// command leaves Redis sending what dispatch drops.
		if err := g.unsubscribe(ctx, topics); err != nil && first == nil {
			first = b.unavailable("unsubscribe", err)
		}
	}
	return first
}

// dispatch decodes a pub/sub payload and delivers it when its channel is
// subscribed on this node.
func (b *RedisBroker) dispatch(payload string) {
	p, ok := decodePayload(payload)
	if !ok {
		b.malformed.Add(1)
		if b.cfg.Logger != nil {
			b.cfg.Logger.Warn("realtime: malformed broker message", "len", len(payload))
		}
		return
	}
	b.mu.RLock()
	_, sub := b.subs[p.Channel]
	deliver := b.deliver
	closed := b.closed
	b.mu.RUnlock()
	if sub && !closed {
		b.delivered.Add(1)
		deliver(p)
	} else {
		b.foreign.Add(1)
	}
}

// The pub/sub payload is "<offset>:<epoch>:<len(channel)>:<channel><data>"
// (offset 0 and an empty epoch without history); publishScript builds the
// same with history.
func encodePayload(p Publication) string {
	return strconv.FormatUint(p.Offset, 10) + ":" + p.Epoch + ":" + strconv.Itoa(len(p.Channel)) + ":" + p.Channel + string(p.Data)
}

// decodePayload decodes encodePayload's result. Epochs never contain ':'.
func decodePayload(s string) (Publication, bool) {
	var p Publication
	off, rest, ok := strings.Cut(s, ":")
	if !ok {
		return p, false
	}
	o, err := strconv.ParseUint(off, 10, 64)
	if err != nil {
		return p, false
	}
	epoch, rest, ok := strings.Cut(rest, ":")
	if !ok {
		return p, false
	}
	cl, rest, ok := strings.Cut(rest, ":")
	if !ok {
		return p, false
	}
	n, err := strconv.Atoi(cl)
	if err != nil || n < 0 || n > len(rest) {
		return p, false
	}
	p.Offset, p.Epoch, p.Channel, p.Data = o, epoch, rest[:n], []byte(rest[n:])
	return p, true
}

// publishScript: KEYS 1 meta hash, 2 history stream. ARGV 1 pub/sub
// channel, 2 channel, 3 data, 4 history size, 5 history TTL ms, 6 epoch to
// use if the channel has none, 7 publish command (publish or spublish).
// Returns {offset, epoch}.
var publishScript = redis.NewScript(`
local e = redis.call('HGET', KEYS[1], 'e')
if not e then
  e = ARGV[6]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'e', e)
end
local o = redis.call('HINCRBY', KEYS[1], 'o', 1)
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[4], o .. '-0', 'd', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call(ARGV[7], ARGV[1], o .. ':' .. e .. ':' .. string.len(ARGV[2]) .. ':' .. ARGV[2] .. ARGV[3])
return {o, e}
`)

// Publish implements Broker.
func (b *RedisBroker) Publish(ctx context.Context, channel string, data []byte, opts PublishOptions) (StreamPosition, error) {
	if b.ctx.Err() != nil {
		return StreamPosition{}, ErrClosed
	}
	if opts.HistorySize < 0 {
		return StreamPosition{}, fmt.Errorf("realtime: negative HistorySize %d", opts.HistorySize)
	}
	_, meta, hist, topic := b.keys(channel)
	if opts.HistorySize == 0 {
		payload := encodePayload(Publication{Channel: channel, Data: data})
		var err error
		if b.sharded {
			err = b.rc.SPublish(ctx, topic, payload).Err()
		} else {
			err = b.rc.Publish(ctx, topic, payload).Err()
		}
		if err != nil {
			return StreamPosition{}, b.unavailable("publish", err)
		}
		b.published.Add(1)
		return StreamPosition{}, nil
	}
	ttl := opts.HistoryTTL.Milliseconds()
	if ttl <= 0 {
		return StreamPosition{}, fmt.Errorf("realtime: HistorySize %d needs a HistoryTTL of at least 1ms, got %v", opts.HistorySize, opts.HistoryTTL)
	}
	cmd := "publish"
	if b.sharded {
		cmd = "spublish"
	}
	res, err := publishScript.Run(ctx, b.rc, []string{meta, hist},
		topic, channel, data, opts.HistorySize, ttl, b.newEpoch(), cmd).Slice()
	if err != nil {
		return StreamPosition{}, b.unavailable("publish", err)
	}
	if len(res) != 2 {
		return StreamPosition{}, b.unavailable("publish", fmt.Errorf("unexpected script reply %v", res))
	}
	o, _ := res[0].(int64)
	e, _ := res[1].(string)
	b.published.Add(1)
	return StreamPosition{Offset: uint64(o), Epoch: e}, nil
}

// historyScript: KEYS 1 meta hash, 2 history stream. ARGV 1 since offset, 2
// since epoch, 3 limit (>= 1: one entry is read to check the gap even when
// the caller wants none). Returns {lost (0/1), offset, epoch, entries}.
var historyScript = redis.NewScript(`
local m = redis.call('HMGET', KEYS[1], 'e', 'o')
local e, o = m[1], tonumber(m[2] or '0')
local since = tonumber(ARGV[1])
if not e then
  if since > 0 or ARGV[2] ~= '' then return {1, 0, ''} end
  return {0, 0, ''}
end
local zero = since == 0 and ARGV[2] == ''
if not zero and (ARGV[2] ~= e or since > o) then return {1, o, e} end
if since >= o then return {0, o, e} end
local r = redis.call('XRANGE', KEYS[2], (since + 1) .. '-0', '+', 'COUNT', ARGV[3])
if not zero then
  if #r == 0 or r[1][1] ~= (since + 1) .. '-0' then return {1, o, e} end
end
return {0, o, e, r}
`)

// History implements Broker.
func (b *RedisBroker) History(ctx context.Context, channel string, since StreamPosition, limit int) (HistoryResult, error) {
	if b.ctx.Err() != nil {
		return HistoryResult{}, ErrClosed
	}
	_, meta, hist, _ := b.keys(channel)
	count := max(limit, 1)
	res, err := historyScript.Run(ctx, b.rc, []string{meta, hist},
		strconv.FormatUint(since.Offset, 10), since.Epoch, count).Slice()
	if err != nil {
		return HistoryResult{}, b.unavailable("history", err)
	}
	if len(res) < 3 {
		return HistoryResult{}, b.unavailable("history", fmt.Errorf("unexpected script reply %v", res))
	}
	lost, _ := res[0].(int64)
	o, _ := res[1].(int64)
	e, _ := res[2].(string)
	out := HistoryResult{Position: StreamPosition{Offset: uint64(o), Epoch: e}}
	if lost == 1 {
		return out, fmt.Errorf("%w: channel %q from offset %d epoch %q (now %d %q)", ErrPositionLost, channel, since.Offset, since.Epoch, o, e)
	}
	if limit <= 0 || len(res) < 4 {
		return out, nil
	}
	entries, _ := res[3].([]any)
	out.Publications = make([]Publication, 0, len(entries))
	for _, x := range entries {
		p, ok := decodeEntry(channel, e, x)
		if !ok {
			return HistoryResult{}, b.unavailable("history", fmt.Errorf("malformed stream entry %v", x))
		}
		out.Publications = append(out.Publications, p)
	}
	return out, nil
}

// decodeEntry decodes an XRANGE entry {"<offset>-0", {"d", data}}.
func decodeEntry(channel, epoch string, x any) (Publication, bool) {
	ent, ok := x.([]any)
	if !ok || len(ent) != 2 {
		return Publication{}, false
	}
	id, _ := ent[0].(string)
	fields, _ := ent[1].([]any)
	off, ok := strings.CutSuffix(id, "-0")
	if !ok || len(fields) != 2 {
		return Publication{}, false
	}
	o, err := strconv.ParseUint(off, 10, 64)
	if err != nil {
		return Publication{}, false
	}
	d, _ := fields[1].(string)
	return Publication{Channel: channel, Offset: o, Epoch: epoch, Data: []byte(d)}, true
}

// Close implements Broker: it closes the pub/sub connections and waits for
// their goroutines. After Close no deliver call starts.
func (b *RedisBroker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.cancel()
	groups := b.groups
	b.groups = map[int]*psGroup{}
	b.mu.Unlock()
	for _, g := range groups {
		g.close()
	}
	b.wg.Wait()
	return nil
}
