package realtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/madang-io/madang/protocol"
)

// CmdPresence {"ch"}: the channel's online count across nodes, {"ch",
// "count"} (users, not connections). Allowed on the channels the caller may
// subscribe to.
const CmdPresence = "rt.presence"

// TopicPositionLost is the push a subscriber gets on a channel when this
// node missed publications its history no longer holds (after a broker
// reconnect, see Hub.Resync): the payload is the channel's current
// position {"ch","offset","epoch"}; the client reloads the channel's state
// and follows it from there, as after a position_lost answer.
const TopicPositionLost = "position_lost"

// worldCountFresh is how long a world partition's presence count is reused
// by "world" joins on this node (counting the node's own joins on top)
// before it is read again.
const worldCountFresh = time.Second

type presenceState struct {
	p      Presence
	node   string
	seq    atomic.Uint64
	paused atomic.Bool // tests: a node that stopped heartbeating

	worldMu   sync.Mutex
	worldSeen map[int]worldCount
}

type worldCount struct {
	n  int
	at time.Time
}

// startBackground sets presence up and starts the heartbeat and resync
// goroutines (stopped by Shutdown).
func (h *Hub) startBackground() {
	h.presence.p = h.cfg.Presence
	if h.presence.p == nil {
		h.presence.p = NewMemoryPresence(PresenceConfig{})
	}
	h.presence.node = h.cfg.NodeID
	if h.presence.node == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		h.presence.node = hex.EncodeToString(b[:])
	}
	h.presence.worldSeen = make(map[int]worldCount)
	h.resyncCh = make(chan struct{}, 1)
	if n, ok := h.broker.(resubscribeNotifier); ok {
		n.notifyResubscribed(h.Resync)
	}
	h.bgWG.Add(2)
	go h.runHeartbeat()
	go h.runResync()
}

// NodeID returns the name of this node in Presence.
func (h *Hub) NodeID() string { return h.presence.node }

func (h *Hub) presenceConn(c *conn) PresenceConn {
	return PresenceConn{UserKey: c.sess.UserKey, Node: h.presence.node, ConnID: strconv.FormatUint(c.pid, 36)}
}

// presenceEntryLocked is c's heartbeat entry; c.subsMu is held.
func (h *Hub) presenceEntryLocked(c *conn) PresenceEntry {
	e := PresenceEntry{PresenceConn: h.presenceConn(c), Channels: make([]string, 0, len(c.subs))}
	for ch := range c.subs {
		e.Channels = append(e.Channels, ch)
	}
	return e
}

func (h *Hub) presenceCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), h.cfg.CommandTimeout)
}

// touchConn reports c online at once (it connected).
func (h *Hub) touchConn(c *conn) {
	c.subsMu.Lock()
	defer c.subsMu.Unlock()
	if c.subs != nil {
		h.touchConnLocked(c)
	}
}

// touchConnLocked reports c and its channels at once (c.subsMu held): a
// connect or subscribe is counted without waiting for the next heartbeat.
func (h *Hub) touchConnLocked(c *conn) {
	if h.presence.paused.Load() {
		return
	}
	ctx, cancel := h.presenceCtx()
	defer cancel()
	if err := h.presence.p.Touch(ctx, h.presenceEntryLocked(c)); err != nil {
		h.log.Warn("realtime: presence touch failed", "err", err)
	}
}

func (h *Hub) presenceLeave(ctx context.Context, c *conn, ch string) {
	if err := h.presence.p.Leave(ctx, c.sess.UserKey, ch); err != nil {
		h.log.Warn("realtime: presence leave failed", "ch", ch, "err", err)
	}
}

func (h *Hub) presenceDisconnect(c *conn, chans []string) {
	if h.presence.paused.Load() {
		return
	}
	ctx, cancel := h.presenceCtx()
	defer cancel()
	if err := h.presence.p.Disconnect(ctx, h.presenceConn(c), chans...); err != nil {
		h.log.Warn("realtime: presence disconnect failed", "err", err)
	}
}

func (h *Hub) runHeartbeat() {
	defer h.bgWG.Done()
	t := time.NewTicker(h.cfg.PresenceInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if !h.presence.paused.Load() {
				h.heartbeat()
			}
		case <-h.ctx.Done():
			return
		}
	}
}

// heartbeat reports every connection of this node, PresenceBatch per Touch.
func (h *Hub) heartbeat() {
	batch := make([]PresenceEntry, 0, h.cfg.PresenceBatch)
	flush := func() {
		if len(batch) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(h.ctx, h.cfg.CommandTimeout)
		err := h.presence.p.Touch(ctx, batch...)
		cancel()
		if err != nil && h.ctx.Err() == nil {
			h.log.Warn("realtime: presence heartbeat failed", "conns", len(batch), "err", err)
		}
		clear(batch)
		batch = batch[:0]
	}
	var conns []*conn
	for _, us := range h.users {
		conns = conns[:0]
		us.mu.Lock()
		for _, u := range us.users {
			conns = append(conns, u.conns...)
		}
		us.mu.Unlock()
		for _, c := range conns {
			c.subsMu.Lock()
			if c.subs != nil {
				batch = append(batch, h.presenceEntryLocked(c))
			}
			c.subsMu.Unlock()
			if len(batch) == cap(batch) {
				flush()
			}
		}
	}
	flush()
}

// Online reports whether the user has a live connection on any node, and
// the nodes (NodeID) holding one, according to Presence: a connection
// counts from its connect until its disconnect, or until the Presence TTL
// after its node last reported it (a node that died).
func (h *Hub) Online(ctx context.Context, userKey int64) (online bool, nodes []string, err error) {
	conns, err := h.presence.p.Where(ctx, userKey)
	if err != nil {
		return false, nil, err
	}
	for _, c := range conns {
		if len(nodes) == 0 || nodes[len(nodes)-1] != c.Node { // Where sorts by node
			nodes = append(nodes, c.Node)
		}
	}
	return len(conns) > 0, nodes, nil
}

// OnlineCount returns how many users are in the channel across nodes.
func (h *Hub) OnlineCount(ctx context.Context, channel string) (int, error) {
	return h.presence.p.Count(ctx, channel)
}

func (c *conn) presenceCount(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
	var in struct {
		Ch string `json:"ch"`
	}
	if err := decodeArgs(req, &in); err != nil {
		return nil, err
	}
	if err := c.checkChannel(ctx, in.Ch, ActionSubscribe); err != nil {
		return nil, err
	}
	n, err := c.hub.presence.p.Count(ctx, in.Ch)
	if err != nil {
		return nil, err
	}
	out, _ := json.Marshal(struct {
		Ch    string `json:"ch"`
		Count int    `json:"count"`
	}{in.Ch, n})
	return &protocol.Response{Payload: out}, nil
}

// pickWorld chooses the world partition for a "world" join: the first with
// fewer than WorldPartitionSize users across nodes (Presence.Count, reused
// for worldCountFresh with this node's joins added; this node's own count
// when Presence fails).
func (h *Hub) pickWorld(ctx context.Context) (int, bool) {
	ps := &h.presence
	for n := range h.cfg.MaxWorldPartitions {
		ps.worldMu.Lock()
		wc, ok := ps.worldSeen[n]
		ps.worldMu.Unlock()
		if !ok || time.Since(wc.at) > worldCountFresh {
			cnt, err := ps.p.Count(ctx, WorldChannel(n))
			if err != nil {
				h.log.Warn("realtime: presence count failed", "ch", WorldChannel(n), "err", err)
			}
			h.world.mu.Lock()
			cnt = max(cnt, h.world.counts[n])
			h.world.mu.Unlock()
			wc = worldCount{n: cnt, at: time.Now()}
		}
		full := wc.n >= h.cfg.WorldPartitionSize
		if !full {
			wc.n++
		}
		ps.worldMu.Lock()
		if len(ps.worldSeen) > h.cfg.MaxWorldPartitions {
			clear(ps.worldSeen)
		}
		ps.worldSeen[n] = wc
		ps.worldMu.Unlock()
		if !full {
			return n, true
		}
	}
	return 0, false
}

// resubscribeNotifier is a broker that can tell the hub when its
// subscriptions were restored after a failure (RedisBroker).
type resubscribeNotifier interface {
	notifyResubscribed(func())
}

// Resync makes the hub look for publications this node missed, without
// blocking (it runs on the hub's goroutine; calls while one runs are
// merged). For each channel with subscribers here, it reads the history
// after the last position the node delivered and delivers what is missing,
// in order and without duplicates; when the history no longer holds the
// gap, the channel's subscribers get a TopicPositionLost push. Channels on
// which the node has seen no position yet (a user channel that never got a
// message) are skipped: clients read their own channel with rt.history.
//
// A hub calls Resync by itself when its Config.Broker is a *RedisBroker
// whose pub/sub connection came back. A RedisBroker wrapped in another type
// is wired by hand, through a pointer set once NewHub returns:
//
//	var hub atomic.Pointer[realtime.Hub]
//	cfg := realtime.RedisBrokerConfig{OnResubscribed: func() {
//		if h := hub.Load(); h != nil {
//			h.Resync()
//		}
//	}}
//
// A live publication that arrives after a gap is filled the same way
// without Resync; Resync is for the channels that went quiet.
func (h *Hub) Resync() {
	select {
	case h.resyncCh <- struct{}{}:
	default:
	}
}

func (h *Hub) runResync() {
	defer h.bgWG.Done()
	for {
		select {
		case <-h.resyncCh:
			h.resync()
		case <-h.ctx.Done():
			return
		}
	}
}

func (h *Hub) resync() {
	type chanPos struct {
		ch  string
		pos StreamPosition
	}
	var todo []chanPos
	for _, s := range h.chans {
		s.posMu.Lock()
		for ch, pos := range s.pos {
			todo = append(todo, chanPos{ch, pos})
		}
		s.posMu.Unlock()
	}
	for _, t := range todo {
		if h.ctx.Err() != nil {
			return
		}
		ctx, cancel := context.WithTimeout(h.ctx, h.cfg.CommandTimeout)
		res, err := h.broker.History(ctx, t.ch, t.pos, h.cfg.HistoryLimit)
		cancel()
		switch {
		case errors.Is(err, ErrPositionLost):
			h.positionLost(t.ch)
		case err != nil:
			h.log.Warn("realtime: resync history failed", "ch", t.ch, "err", err)
		case res.Position.Offset > t.pos.Offset+uint64(len(res.Publications)):
			h.positionLost(t.ch) // more missed than one read returns
		default:
			for _, p := range res.Publications {
				h.deliver(p)
			}
		}
	}
}

// positionLost tells the node's subscribers of ch that publications were
// lost, and restarts the node's position at the channel's current one.
func (h *Hub) positionLost(ch string) {
	ctx, cancel := context.WithTimeout(h.ctx, h.cfg.CommandTimeout)
	res, err := h.broker.History(ctx, ch, StreamPosition{}, 0)
	cancel()
	if err != nil {
		h.log.Warn("realtime: resync position failed", "ch", ch, "err", err)
		return
	}
	s := h.chanShard(ch)
	s.posMu.Lock()
	if _, ok := s.pos[ch]; ok {
		s.pos[ch] = res.Position
	}
	s.posMu.Unlock()
	h.pushPositionLost(s, ch, res.Position)
}

// pushPositionLost sends the TopicPositionLost push at pos to the node's
// subscribers of ch.
func (h *Hub) pushPositionLost(s *chanShard, ch string, pos StreamPosition) {
	payload, _ := json.Marshal(posJSON{Channel: ch, Offset: pos.Offset, Epoch: pos.Epoch})
	body := protocol.AppendPush(nil, &protocol.Push{Topic: TopicPositionLost, Channel: ch, ServerTime: h.cfg.Now().UnixMilli(), Payload: payload})
	prep, err := h.codec.Prepare(body)
	if err != nil {
		h.log.Warn("realtime: cannot encode a push", "ch", ch, "err", err)
		return
	}
	for _, sb := range s.subscribers(ch) {
		sb.deliver(outMsg{prep: prep})
	}
}

// notePosition records a subscribe's position of ch as this node's, when
// the node has none yet for the channel (its first subscriber).
func (h *Hub) notePosition(ch string, pos StreamPosition) {
	s := h.chanShard(ch)
	s.posMu.Lock()
	if _, ok := s.pos[ch]; !ok {
		if s.subscribed(ch) {
			s.pos[ch] = pos
		}
	}
	s.posMu.Unlock()
}

// check compares p with the channel's position on this node: ok false for
// a duplicate (not after the position); gap true when publications between
// the position (after) and p were not delivered here.
func (s *chanShard) check(p *Publication) (ok bool, after StreamPosition, gap bool) {
	if p.Offset == 0 {
		return true, StreamPosition{}, false
	}
	s.posMu.Lock()
	last, known := s.pos[p.Channel]
	s.posMu.Unlock()
	if !known || last.Epoch != p.Epoch {
		return true, StreamPosition{}, false
	}
	if p.Offset <= last.Offset {
		return false, StreamPosition{}, false
	}
	return true, last, p.Offset > last.Offset+1
}

// setPos records p as the channel's latest position on this node (while
// the channel has subscribers here).
func (s *chanShard) setPos(p *Publication) {
	if p.Offset == 0 {
		return
	}
	s.posMu.Lock()
	defer s.posMu.Unlock()
	if _, ok := s.pos[p.Channel]; !ok {
		if !s.subscribed(p.Channel) {
			return // unsubscribed meanwhile: no position to keep
		}
	}
	s.pos[p.Channel] = StreamPosition{Offset: p.Offset, Epoch: p.Epoch}
}

// fillGap runs on the shard's goroutine when a live publication p comes
// after a gap (publications this node missed, e.g. while its broker
// connection was down): it reads the missing ones from history and
// delivers them first, or sends position_lost when the history no longer
// holds them. The shard waits for that one History call.
func (h *Hub) fillGap(s *chanShard, p *Publication, after StreamPosition) {
	ctx, cancel := context.WithTimeout(h.ctx, h.cfg.CommandTimeout)
	res, err := h.broker.History(ctx, p.Channel, after, h.cfg.HistoryLimit)
	cancel()
	missing := p.Offset - after.Offset - 1
	var pubs []Publication
	if err == nil {
		for _, q := range res.Publications {
			if q.Epoch == p.Epoch && q.Offset > after.Offset && q.Offset < p.Offset {
				pubs = append(pubs, q)
			}
		}
	}
	if err != nil || uint64(len(pubs)) != missing {
		if err != nil && !errors.Is(err, ErrPositionLost) {
			h.log.Warn("realtime: gap fill history failed", "ch", p.Channel, "err", err)
		}
		// The node's position moves to p (fanout delivers it next) before
		// the push: a Resync that runs once a client has the push would
		// otherwise still see the gap and report it again. (Pushes are
		// written at once by this goroutine when nothing is queued.)
		s.setPos(p)
		h.pushPositionLost(s, p.Channel, StreamPosition{Offset: p.Offset - 1, Epoch: p.Epoch})
		return
	}
	subs := s.subscribers(p.Channel)
	for _, q := range pubs {
		s.setPos(&q)
		h.fanoutTo(s, subs, q)
	}
}
