package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/madang-io/madang/internal/backend"
	"github.com/madang-io/madang/protocol"
)

// Defaults for RoomConfig.
const (
	DefaultTickRate       = 10
	DefaultInputQueueLen  = 64
	DefaultRoomGrace      = 30 * time.Second
	DefaultRoomLeaseTTL   = 15 * time.Second
	DefaultRoomRequest    = 5 * time.Second
	DefaultMaxRooms       = 1000
	DefaultMaxInputSize   = 1024
	DefaultRoomInboxLen   = 4096
	DefaultMatchRoomSize  = 2
	prefixRoom            = "room."
	prefixRoomNode        = "roomnode."
	maxRoomKindLen        = 32
	maxRoomIDLen          = 100
	roomMsgJoin           = "join"
	roomMsgLeave          = "leave"
	roomMsgInput          = "input"
	roomMsgDisconnect     = "disconnect"
	roomMsgReply          = "reply"
	roomMsgTouch          = "touch" // data: [userKey...] still connected through the sender
	roomReasonDone        = "done"
	roomReasonGoingAway   = "going_away"
	roomOpsExtra          = 64 // room.ops capacity beyond InputQueueLen (joins, leaves)
	roomDisconnectTimeout = 5 * time.Second
)

// RoomConfig configures Rooms. Only NewLogic is required; every other
// default is on its field.
type RoomConfig struct {
	// Node names this node in the Directory and on the broker (its channel
	// "roomnode.<Node>"); unique per node, [A-Za-z0-9_.:-]. Default random.
	Node string
	// NewLogic makes the logic of a new room of kind (room.create's kind,
	// or the matched kind) with room.create's params (nil for matches). An
	// error refuses the room with its code. Required.
	NewLogic func(kind string, params json.RawMessage) (RoomLogic, error)
	// Matchmaker serves room.match. Default NewFIFOMatchmaker(MatchSize,
	// 0): players of this node only. With several nodes give each its own
	// RedisMatchmaker on the shared Redis (players of every node meet);
	// Rooms does not close it (close it after Hub.Shutdown).
	Matchmaker Matchmaker
	// MatchSize is the default matchmaker's group size (a Matchmaker given
	// above has its own). Default 2.
	MatchSize int
	// TickRate is how many ticks per second each room runs. Default 10.
	TickRate float64
	// InputQueueLen bounds the inputs waiting for a room's next tick (all
	// members together); room.input over it answers rate_limited. Default
	// 64.
	InputQueueLen int
	// MaxInputSize bounds one input (JSON bytes); larger ones answer
	// too_large. Default 1 KiB.
	MaxInputSize int
	// Grace is how long a member whose connection dropped stays a member
	// (rejoining with room.join from any node); then it is removed
	// (RoomLogic.Leave). Default 30 s. Nodes tell the owner every Grace/3
	// which of its members they still serve: a member whose node went
	// silent (crashed) for Grace counts as disconnected from its last
	// heartbeat, so it is removed within 2×Grace. Use the same Grace on
	// every node.
	Grace time.Duration
	// LeaseTTL is the room's Directory lease, renewed every LeaseTTL/3 by
	// the room's goroutine. A room whose node dies is gone after it.
	// Default 15 s.
	LeaseTTL time.Duration
	// RequestTimeout bounds a request to a room on another node (its
	// owner must answer through the broker in time, else unavailable).
	// Default 5 s.
	RequestTimeout time.Duration
	// MaxRooms bounds the rooms running on this node; room.create over it
	// answers unavailable. Default 1000.
	MaxRooms int
	// InboxLen bounds the broker messages (requests and replies) waiting
	// for this node's room dispatcher; over it they are dropped (the
	// sender times out). Default 4096.
	InboxLen int
	// OwnerCacheTTL is how long this node remembers which node owns a room
	// it forwards requests to (room.join, room.input, room.leave of its
	// players, disconnect notices and heartbeats), instead of asking the
	// Directory (one Redis round trip in Redis mode) each time. An entry is
	// dropped sooner when that node answers it has no such room (the room
	// ended, or its lease was lost), then the request looks the room up
	// again once; or when the node does not answer in RequestTimeout.
	// Default 1 s; negative: no cache (a Directory lookup per request).
	OwnerCacheTTL time.Duration
	// OwnerCacheSize bounds the rooms whose owner this node remembers (about
	// 150 bytes each); a new one over it replaces an arbitrary one. Default
	// 10,000.
	OwnerCacheSize int
	// Logger receives room failures. Nil: the hub's.
	Logger *slog.Logger
}

// Rooms runs server-ticked rooms (raids, PvP matches) on a Hub: each room
// lives on the node that created it, claimed in a Directory, and players on
// any node join it; their requests reach the owner, and its snapshots reach
// them, through the hub's Broker. A room whose node dies is lost once its
// lease expires (no migration): its members' room.join then answers
// not_member.
//
// A node remembers for a short while which node owns a room its players
// are in (RoomConfig.OwnerCacheTTL), so their inputs cost no Directory
// lookup; a node that no longer runs the room says so and the request
// looks the room up again.
//
// Messages between nodes go on one channel per node ("roomnode.<Node>",
// live, no history); snapshots on the room's channel ("room.<id>", live),
// which only members are subscribed to (clients cannot rt.subscribe to
// room channels).
type Rooms struct {
	hub      *Hub
	dir      Directory
	cfg      RoomConfig
	mm       Matchmaker
	log      *slog.Logger
	nodeChan string
	owners   *ownerCache // owners of other nodes' rooms

	mu     sync.Mutex
	rooms  map[string]*room              // owned by this node
	local  map[string]map[*conn]struct{} // room → this node's joined connections
	closed bool

	seq     atomic.Uint64
	pendMu  sync.Mutex
	pending map[uint64]chan roomReply

	inbox  chan Publication
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewRooms attaches rooms to a hub (one Rooms per hub): the hub then serves
// the room.* commands. Close them before (or through) Hub.Shutdown, which
// calls Close.
func NewRooms(h *Hub, dir Directory, cfg RoomConfig) (*Rooms, error) {
	if h == nil || dir == nil || cfg.NewLogic == nil {
		return nil, errors.New("realtime: NewRooms: hub, directory and NewLogic are required")
	}
	if cfg.Node == "" {
		cfg.Node = newToken()[:16]
	}
	if !validChannel(prefixRoomNode + cfg.Node) {
		return nil, fmt.Errorf("realtime: NewRooms: invalid node name %q", cfg.Node)
	}
	if cfg.MatchSize <= 0 {
		cfg.MatchSize = DefaultMatchRoomSize
	}
	if cfg.TickRate <= 0 {
		cfg.TickRate = DefaultTickRate
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&cfg.InputQueueLen, DefaultInputQueueLen)
	def(&cfg.MaxInputSize, DefaultMaxInputSize)
	def(&cfg.MaxRooms, DefaultMaxRooms)
	def(&cfg.InboxLen, DefaultRoomInboxLen)
	def(&cfg.OwnerCacheSize, DefaultOwnerCacheSize)
	if cfg.OwnerCacheTTL == 0 {
		cfg.OwnerCacheTTL = DefaultOwnerCacheTTL
	}
	if cfg.Grace <= 0 {
		cfg.Grace = DefaultRoomGrace
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = DefaultRoomLeaseTTL
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRoomRequest
	}
	if cfg.Logger == nil {
		cfg.Logger = h.log
	}
	r := &Rooms{
		hub: h, dir: dir, cfg: cfg, mm: cfg.Matchmaker, log: cfg.Logger, nodeChan: prefixRoomNode + cfg.Node,
		rooms: make(map[string]*room), local: make(map[string]map[*conn]struct{}),
		pending: make(map[uint64]chan roomReply), inbox: make(chan Publication, cfg.InboxLen),
		owners: newOwnerCache(cfg.OwnerCacheTTL, cfg.OwnerCacheSize, time.Now),
	}
	if r.mm == nil {
		r.mm = NewFIFOMatchmaker(cfg.MatchSize, 0)
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	if !h.rooms.CompareAndSwap(nil, r) {
		r.cancel()
		return nil, errors.New("realtime: NewRooms: the hub has rooms already")
	}
	ctx, cancel := context.WithTimeout(r.ctx, h.cfg.HandshakeTimeout)
	err := h.broker.Subscribe(ctx, r.nodeChan)
	cancel()
	if err != nil {
		h.rooms.Store(nil)
		r.cancel()
		return nil, fmt.Errorf("realtime: rooms: subscribe %q: %w", r.nodeChan, err)
	}
	r.wg.Add(2)
	go r.dispatch()
	go r.heartbeat()
	return r, nil
}

// Node returns this node's name.
func (r *Rooms) Node() string { return r.cfg.Node }

// RoomChannel returns a room's broker channel ("room.<id>").
func RoomChannel(room string) string { return prefixRoom + room }

func isRoomChannel(ch string) bool {
	return strings.HasPrefix(ch, prefixRoom) || strings.HasPrefix(ch, prefixRoomNode)
}

// Close ends this node's rooms (their members get room.end with reason
// going_away and their leases are released) and stops the dispatcher. Safe
// to call more than once.
//
// Members connected through this node to rooms of other nodes are reported
// disconnected to those rooms first (their grace periods start: they may
// reconnect through another node).
func (r *Rooms) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	type member struct {
		room string
		user int64
	}
	var away []member
	for id, m := range r.local {
		seen := make(map[int64]bool)
		for c := range m {
			if u := c.sess.UserKey; !seen[u] {
				seen[u] = true
				away = append(away, member{id, u})
			}
		}
	}
	clear(r.local)
	rooms := make([]*room, 0, len(r.rooms))
	for _, rm := range r.rooms {
		rooms = append(rooms, rm)
	}
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(r.ctx, roomDisconnectTimeout)
	for _, m := range away {
		r.notifyDisconnect(ctx, m.room, m.user)
	}
	cancel()
	for _, rm := range rooms {
		rm.stop()
	}
	for _, rm := range rooms {
		<-rm.done
	}
	r.cancel()
	r.wg.Wait()
	ctx, cancel = context.WithTimeout(context.Background(), roomDisconnectTimeout)
	defer cancel()
	if err := r.hub.broker.Unsubscribe(ctx, r.nodeChan); err != nil {
		r.log.Warn("realtime: rooms: unsubscribe node channel", "err", err)
	}
	return nil
}

// inboxPut is the hub's delivery of this node's channel (never blocks).
func (r *Rooms) inboxPut(p Publication) {
	select {
	case r.inbox <- p:
	default:
		r.log.Warn("realtime: room inbox full, dropped a message")
	}
}

// roomMsg is a message between nodes on a node channel.
type roomMsg struct {
	Op   string          `json:"op"`
	Room string          `json:"room,omitempty"`
	User int64           `json:"user,omitempty"`
	Node string          `json:"node,omitempty"` // sender (replies go to its channel)
	Seq  uint64          `json:"seq,omitempty"`
	Code protocol.Code   `json:"code,omitempty"`
	Msg  string          `json:"msg,omitempty"`
	Gone bool            `json:"gone,omitempty"` // reply: the node runs no room of that id
	Data json.RawMessage `json:"data,omitempty"`
}

var errRoomMsg = errors.New("realtime: malformed room message")

// decodeRoomMsg parses a node channel message.
func decodeRoomMsg(b []byte, m *roomMsg) error {
	if err := json.Unmarshal(b, m); err != nil {
		return fmt.Errorf("%w: %v", errRoomMsg, err)
	}
	switch m.Op {
	case roomMsgJoin, roomMsgLeave, roomMsgInput, roomMsgDisconnect, roomMsgTouch:
		if !validRoomID(m.Room) || m.Node == "" || !validChannel(prefixRoomNode+m.Node) {
			return fmt.Errorf("%w: bad room or node", errRoomMsg)
		}
	case roomMsgReply:
		if m.Seq == 0 {
			return fmt.Errorf("%w: reply without seq", errRoomMsg)
		}
	default:
		return fmt.Errorf("%w: unknown op %q", errRoomMsg, m.Op)
	}
	if len(m.Data) > 0 && !json.Valid(m.Data) {
		return fmt.Errorf("%w: data is not JSON", errRoomMsg)
	}
	return nil
}

func validRoomID(id string) bool {
	return id != "" && len(id) <= maxRoomIDLen && validChannel(prefixRoom+id)
}

// dispatch serves this node's channel: requests for the rooms it owns and
// replies to its own requests.
func (r *Rooms) dispatch() {
	defer r.wg.Done()
	for {
		select {
		case p := <-r.inbox:
			var m roomMsg
			if err := decodeRoomMsg(p.Data, &m); err != nil {
				r.log.Warn("realtime: dropped a room message", "err", err)
				continue
			}
			if m.Op == roomMsgReply {
				r.pendMu.Lock()
				ch := r.pending[m.Seq]
				delete(r.pending, m.Seq)
				r.pendMu.Unlock()
				if ch != nil {
					ch <- roomReply{code: m.Code, msg: m.Msg, gone: m.Gone, data: m.Data}
				}
				continue
			}
			r.serveRemote(m)
		case <-r.ctx.Done():
			return
		}
	}
}

func (r *Rooms) serveRemote(m roomMsg) {
	var reply func(roomReply)
	if m.Op != roomMsgDisconnect && m.Op != roomMsgTouch {
		to, seq := m.Node, m.Seq
		reply = func(rep roomReply) { r.sendReply(to, seq, rep) }
	}
	r.mu.Lock()
	rm := r.rooms[m.Room]
	r.mu.Unlock()
	if rm == nil {
		if reply != nil {
			reply(replyErr(ErrRoomNotFound))
		}
		return
	}
	rm.submit(roomOp{kind: m.Op, user: m.User, node: m.Node, data: m.Data, reply: reply})
}

func (r *Rooms) sendReply(node string, seq uint64, rep roomReply) {
	b, _ := json.Marshal(roomMsg{Op: roomMsgReply, Seq: seq, Code: rep.code, Msg: rep.msg, Gone: rep.gone, Data: rep.data})
	ctx, cancel := context.WithTimeout(r.ctx, r.cfg.RequestTimeout)
	defer cancel()
	if _, err := r.hub.broker.Publish(ctx, prefixRoomNode+node, b, PublishOptions{}); err != nil {
		r.log.Warn("realtime: room reply failed", "node", node, "err", err)
	}
}

type roomReply struct {
	code protocol.Code
	msg  string
	gone bool // ErrRoomNotFound: the room does not run there (any more)
	data json.RawMessage
}

func replyErr(err error) roomReply {
	var pe *protocol.Error
	msg := err.Error()
	if errors.As(err, &pe) {
		msg = pe.Message
	}
	return roomReply{code: backend.Code(err), msg: msg, gone: errors.Is(err, ErrRoomNotFound)}
}

func (rep roomReply) err() error {
	switch {
	case rep.code == protocol.CodeOK:
		return nil
	case rep.gone:
		return ErrRoomNotFound
	}
	return &protocol.Error{Code: rep.code, Message: rep.msg}
}

// call sends an op to a room wherever it runs and waits for its answer.
func (r *Rooms) call(ctx context.Context, roomID, op string, user int64, data json.RawMessage) (json.RawMessage, error) {
	r.mu.Lock()
	rm := r.rooms[roomID]
	r.mu.Unlock()
	if rm != nil {
		ch := make(chan roomReply, 1)
		rm.submit(roomOp{kind: op, user: user, node: r.cfg.Node, data: data, reply: func(rep roomReply) { ch <- rep }})
		select {
		case rep := <-ch:
			return rep.data, rep.err()
		case <-rm.done:
			select {
			case rep := <-ch:
				return rep.data, rep.err()
			default:
			}
			return nil, ErrRoomNotFound
		case <-ctx.Done():
			return nil, errRoomTimeout
		}
	}
	node, cached, err := r.owner(ctx, roomID)
	if err != nil {
		return nil, err
	}
	rep, err := r.callNode(ctx, node, roomID, op, user, data)
	if err == nil && rep.gone && cached {
		// The cached owner has no such room (it ended, or moved): ask the
		// Directory once more. The node answered without running the op.
		r.owners.drop(roomID, node)
		old := node
		if node, err = r.lookupOwner(ctx, roomID); err != nil {
			return nil, err
		}
		if node == old { // the Directory still names it: a lease not yet released
			r.owners.drop(roomID, node)
			return nil, ErrRoomNotFound
		}
		rep, err = r.callNode(ctx, node, roomID, op, user, data)
	}
	if err != nil || rep.gone {
		// No answer (the node may be dead) or no such room: look it up
		// next time.
		r.owners.drop(roomID, node)
	}
	if err != nil {
		return nil, err
	}
	return rep.data, rep.err()
}

// callNode sends an op to the room's owner node and waits for the answer.
// Its error is only for no answer (or a broker failure).
func (r *Rooms) callNode(ctx context.Context, node, roomID, op string, user int64, data json.RawMessage) (roomReply, error) {
	seq := r.seq.Add(1)
	ch := make(chan roomReply, 1)
	r.pendMu.Lock()
	r.pending[seq] = ch
	r.pendMu.Unlock()
	defer func() {
		r.pendMu.Lock()
		delete(r.pending, seq)
		r.pendMu.Unlock()
	}()
	b, _ := json.Marshal(roomMsg{Op: op, Room: roomID, User: user, Node: r.cfg.Node, Seq: seq, Data: data})
	if _, err := r.hub.broker.Publish(ctx, prefixRoomNode+node, b, PublishOptions{}); err != nil {
		return roomReply{}, fmt.Errorf("realtime: room %q: %w", roomID, err)
	}
	t := time.NewTimer(r.cfg.RequestTimeout)
	defer t.Stop()
	select {
	case rep := <-ch:
		return rep, nil
	case <-t.C:
		return roomReply{}, &protocol.Error{Code: protocol.CodeUnavailable, Message: "realtime: the room's node did not answer"}
	case <-ctx.Done():
		return roomReply{}, errRoomTimeout
	}
}

// Create starts a room of kind on this node, claims it in the Directory
// and returns its id. Members join with room.join.
func (r *Rooms) Create(ctx context.Context, kind string, params json.RawMessage) (string, error) {
	if kind == "" || len(kind) > maxRoomKindLen || !validChannel(kind) || strings.Contains(kind, ".") {
		return "", badRequest("realtime: invalid room kind")
	}
	return r.create(ctx, kind+"-"+newToken()[:20], kind, params)
}

// create starts a room with the given id (Create's random one).
func (r *Rooms) create(ctx context.Context, id, kind string, params json.RawMessage) (string, error) {
	logic, err := r.cfg.NewLogic(kind, params)
	if err != nil {
		return "", err
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return "", ErrClosed
	}
	if len(r.rooms) >= r.cfg.MaxRooms {
		r.mu.Unlock()
		return "", &protocol.Error{Code: protocol.CodeUnavailable, Message: "realtime: too many rooms on this node"}
	}
	rm := newRoom(r, id, logic)
	r.rooms[id] = rm // reserved before the claim: Close waits for it
	r.mu.Unlock()
	lease, err := r.dir.Claim(ctx, id, r.cfg.Node, r.cfg.LeaseTTL)
	if err != nil {
		r.mu.Lock()
		delete(r.rooms, id)
		r.mu.Unlock()
		close(rm.done)
		return "", fmt.Errorf("realtime: claim room: %w", err)
	}
	rm.lease = lease
	r.wg.Add(1)
	go rm.run()
	return id, nil
}

func (r *Rooms) removeRoom(rm *room) {
	r.mu.Lock()
	if r.rooms[rm.id] == rm {
		delete(r.rooms, rm.id)
	}
	r.mu.Unlock()
}

// publishRoom sends a push on a room's channel (live only).
func (r *Rooms) publishRoom(ctx context.Context, id, topic string, payload any) {
	b, err := json.Marshal(payload)
	if err != nil {
		return
	}
	data := appendMessage(nil, r.hub.cfg.Now().UnixMilli(), topic, nil, b)
	if _, err := r.hub.broker.Publish(ctx, RoomChannel(id), data, PublishOptions{}); err != nil {
		r.log.Warn("realtime: room push failed", "room", id, "err", err)
	}
}

// serve runs a room.* command from a connection of this node.
func (r *Rooms) serve(ctx context.Context, c *conn, req *protocol.Request) (*protocol.Response, error) {
	user := c.sess.UserKey
	switch req.Command {
	case CmdRoomCreate:
		var in struct {
			Kind   string          `json:"kind"`
			Params json.RawMessage `json:"params"`
		}
		if err := decodeArgs(req, &in); err != nil {
			return nil, err
		}
		id, err := r.Create(ctx, in.Kind, in.Params)
		if err != nil {
			return nil, err
		}
		return r.join(ctx, c, id)
	case CmdRoomJoin:
		var in struct {
			Room string `json:"room"`
		}
		if err := decodeArgs(req, &in); err != nil {
			return nil, err
		}
		if !validRoomID(in.Room) {
			return nil, badRequest("realtime: invalid room id")
		}
		return r.join(ctx, c, in.Room)
	case CmdRoomInput:
		var in struct {
			Room  string          `json:"room"`
			Input json.RawMessage `json:"input"`
		}
		if err := decodeArgs(req, &in); err != nil {
			return nil, err
		}
		if len(in.Input) > r.cfg.MaxInputSize {
			return nil, &protocol.Error{Code: protocol.CodeTooLarge, Message: "realtime: input too large"}
		}
		if !r.joined(in.Room, c) {
			return nil, errRoomNotMember
		}
		if _, err := r.call(ctx, in.Room, roomMsgInput, user, in.Input); err != nil {
			if errors.Is(err, ErrRoomNotFound) || protocol.CodeOf(err) == protocol.CodeNotMember {
				r.forget(in.Room, c) // the room ended or dropped this member: stop its pushes here
			}
			return nil, err
		}
		return &protocol.Response{}, nil
	case CmdRoomLeave:
		var in struct {
			Room string `json:"room"`
		}
		if err := decodeArgs(req, &in); err != nil {
			return nil, err
		}
		if !r.joined(in.Room, c) {
			return nil, errRoomNotMember
		}
		r.forget(in.Room, c)
		if _, err := r.call(ctx, in.Room, roomMsgLeave, user, nil); err != nil && protocol.CodeOf(err) != protocol.CodeNotMember {
			return nil, err
		}
		return &protocol.Response{}, nil
	case CmdRoomMatch:
		var in struct {
			Kind string `json:"kind"`
		}
		if err := decodeArgs(req, &in); err != nil {
			return nil, err
		}
		if in.Kind == "" || len(in.Kind) > maxRoomKindLen || !validChannel(in.Kind) {
			return nil, badRequest("realtime: invalid room kind")
		}
		group, err := r.mm.Add(ctx, in.Kind, user)
		if err != nil {
			return nil, err
		}
		if group == nil {
			return &protocol.Response{Payload: json.RawMessage(`{"queued":true}`)}, nil
		}
		id, err := r.Create(ctx, in.Kind, nil)
		if err != nil { // the others wait on (at the back of the queue); the caller is told
			for _, u := range group {
				if u != user {
					if _, err := r.mm.Add(ctx, in.Kind, u); err != nil {
						r.log.Warn("realtime: cannot requeue a matched player", "user", u, "err", err)
					}
				}
			}
			return nil, err
		}
		note, _ := json.Marshal(map[string]any{"room": id, "kind": in.Kind, "players": group})
		for _, u := range group {
			if err := r.hub.PushUser(ctx, u, TopicRoomMatched, note); err != nil {
				r.log.Warn("realtime: room.matched push failed", "user", u, "err", err)
			}
		}
		out, _ := json.Marshal(map[string]string{"room": id})
		return &protocol.Response{Payload: out}, nil
	}
	return nil, &protocol.Error{Code: protocol.CodeUnknownCommand, Message: "unknown command"}
}

var errRoomNotMember = &protocol.Error{Code: protocol.CodeNotMember, Message: "realtime: not a member of the room (room.join first)"}

// join subscribes the connection to the room's channel, then asks the room.
func (r *Rooms) join(ctx context.Context, c *conn, id string) (*protocol.Response, error) {
	ch := RoomChannel(id)
	c.subsMu.Lock()
	if c.subs == nil {
		c.subsMu.Unlock()
		return nil, ErrClosed
	}
	sb, had := c.subs[ch]
	if !had && len(c.subs) >= r.hub.cfg.MaxChannels {
		c.subsMu.Unlock()
		return nil, badRequest("realtime: at most %d channels and rooms per connection", r.hub.cfg.MaxChannels)
	}
	if !had {
		sb = &sub{c: c, channel: ch}
		c.subs[ch] = sb
	}
	c.subsMu.Unlock()
	if !had {
		if err := r.hub.addSub(ctx, sb); err != nil {
			r.dropSub(c, sb)
			return nil, err
		}
	}
	data, err := r.call(ctx, id, roomMsgJoin, c.sess.UserKey, nil)
	if err != nil {
		switch {
		case !had:
			r.dropSub(c, sb)
		case protocol.CodeOf(err) == protocol.CodeNotMember: // the room ended
			r.forget(id, c)
		}
		return nil, err
	}
	r.mu.Lock()
	m := r.local[id]
	if m == nil {
		m = make(map[*conn]struct{})
		r.local[id] = m
	}
	m[c] = struct{}{}
	r.mu.Unlock()
	return &protocol.Response{Payload: data}, nil
}

func (r *Rooms) dropSub(c *conn, sb *sub) {
	c.subsMu.Lock()
	if c.subs != nil && c.subs[sb.channel] == sb {
		delete(c.subs, sb.channel)
	}
	c.subsMu.Unlock()
	r.hub.removeSub(sb)
}

func (r *Rooms) joined(id string, c *conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.local[id][c]
	return ok
}

// forget removes a connection from a room on this node (room.leave).
func (r *Rooms) forget(id string, c *conn) {
	r.mu.Lock()
	delete(r.local[id], c)
	if len(r.local[id]) == 0 {
		delete(r.local, id)
	}
	r.mu.Unlock()
	c.subsMu.Lock()
	sb := c.subs[RoomChannel(id)]
	c.subsMu.Unlock()
	if sb != nil {
		r.dropSub(c, sb)
	}
}

// connClosed is called by the hub when a connection ends: its rooms are
// told the member disconnected (its grace period starts) unless another
// connection of the same user on this node is in the room.
func (r *Rooms) connClosed(c *conn) {
	user := c.sess.UserKey
	var gone []string
	r.mu.Lock()
	for id, m := range r.local {
		if _, ok := m[c]; !ok {
			continue
		}
		delete(m, c)
		other := false
		for o := range m {
			if o.sess.UserKey == user {
				other = true
				break
			}
		}
		if len(m) == 0 {
			delete(r.local, id)
		}
		if !other {
			gone = append(gone, id)
		}
	}
	closed := r.closed
	if !closed {
		r.wg.Add(1)
	}
	r.mu.Unlock()
	if closed {
		return
	}
	go func() {
		defer r.wg.Done()
		ctx, cancel := context.WithTimeout(r.ctx, roomDisconnectTimeout)
		defer cancel()
		r.mm.Remove(ctx, user)
		for _, id := range gone {
			r.notifyDisconnect(ctx, id, user)
		}
	}()
}

func (r *Rooms) notifyDisconnect(ctx context.Context, id string, user int64) {
	r.mu.Lock()
	rm := r.rooms[id]
	r.mu.Unlock()
	if rm != nil {
		rm.submit(roomOp{kind: roomMsgDisconnect, user: user, node: r.cfg.Node})
		return
	}
	node, _, err := r.owner(ctx, id)
	if err != nil {
		return
	}
	b, _ := json.Marshal(roomMsg{Op: roomMsgDisconnect, Room: id, User: user, Node: r.cfg.Node})
	if _, err := r.hub.broker.Publish(ctx, prefixRoomNode+node, b, PublishOptions{}); err != nil {
		r.log.Warn("realtime: room disconnect notice failed", "room", id, "err", err)
	}
}

var errRoomTimeout = &protocol.Error{Code: protocol.CodeTimeout, Message: "realtime: room request timed out"}

// heartbeat tells the owners of the rooms this node's connections joined,
// every Grace/3, which members are still connected through this node.
func (r *Rooms) heartbeat() {
	defer r.wg.Done()
	t := time.NewTicker(r.cfg.Grace / 3)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-r.ctx.Done():
			return
		}
		users := make(map[string][]int64)
		r.mu.Lock()
		for id, m := range r.local {
			if r.rooms[id] != nil {
				continue // local members: their connections' closes are seen here
			}
			for c := range m {
				if u := c.sess.UserKey; !slices.Contains(users[id], u) {
					users[id] = append(users[id], u)
				}
			}
		}
		r.mu.Unlock()
		for id, us := range users {
			ctx, cancel := context.WithTimeout(r.ctx, r.cfg.RequestTimeout)
			node, _, err := r.owner(ctx, id)
			if err == nil {
				data, _ := json.Marshal(us)
				b, _ := json.Marshal(roomMsg{Op: roomMsgTouch, Room: id, Node: r.cfg.Node, Data: data})
				if _, err := r.hub.broker.Publish(ctx, prefixRoomNode+node, b, PublishOptions{}); err != nil {
					r.log.Warn("realtime: room heartbeat failed", "room", id, "err", err)
				}
			}
			cancel()
		}
	}
}
