package realtime

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"time"

	"github.com/madang-io/madang/protocol"
)

// Room commands, answered by the hub when Rooms are attached (NewRooms);
// without them they answer unknown_command. See docs/PROTOCOL.md §16.
const (
	// CmdRoomCreate {"kind","params"}: create a room on this node (the
	// caller's) with RoomConfig.NewLogic(kind, params) and join it. Reply
	// as room.join.
	CmdRoomCreate = "room.create"
	// CmdRoomJoin {"room"}: join a room on any node, or rejoin it within
	// the grace period after a disconnect (each room joined counts against
	// Config.MaxChannels). Reply {"room","rejoined",
	// "snapshot"}: the room's latest snapshot (null before its first tick).
	// Then the connection gets the room's pushes. A room that is not
	// running answers not_member.
	CmdRoomJoin = "room.join"
	// CmdRoomInput {"room","input"}: queue an input for the room's next
	// tick. A connection that has not joined the room answers not_member; a
	// full input queue answers rate_limited.
	CmdRoomInput = "room.input"
	// CmdRoomLeave {"room"}: leave the room at once (no grace).
	CmdRoomLeave = "room.leave"
	// CmdRoomMatch {"kind"}: wait for a match. Reply {"queued":true}, or
	// {"room"} when this player completed a group: every player of the
	// group gets the push "room.matched" {"room","kind","players"} on its
	// user channel and then joins with room.join.
	CmdRoomMatch = "room.match"
)

// Room push topics, on the room's channel (members only) or a user channel.
const (
	// TopicRoomSnapshot {"room","tick","state"}: after each tick.
	TopicRoomSnapshot = "room.snapshot"
	// TopicRoomEnd {"room","reason"}: the room ended; reason "done" (the
	// logic ended it) or "going_away" (its node shut down or lost its
	// lease).
	TopicRoomEnd = "room.end"
	// TopicRoomMatched {"room","kind","players"}: a match was found.
	TopicRoomMatched = "room.matched"
)

// RoomLogic is a room's game rules, implemented by the studio. One room's
// logic is called from one goroutine only (the room's): it needs no locks.
type RoomLogic interface {
	// Join admits a new member; an error refuses it and is answered with
	// its code (protocol.CodeOf; e.g. a full room). Not called when a
	// member rejoins within the grace period.
	Join(userKey int64) error
	// Leave removes a member: it left (room.leave) or its grace period
	// after a disconnect ended.
	Leave(userKey int64)
	// Input applies one member input, at the tick after it was queued, in
	// the order the room received them. Bad input is the logic's to ignore
	// (the client's room.input was already answered).
	Input(userKey int64, input json.RawMessage)
	// Tick advances the room by dt (the time since the previous tick) and
	// returns the snapshot broadcast to the members (JSON; nil sends none)
	// and whether the room is over (it then ends with reason "done").
	Tick(now time.Time, dt time.Duration) (snapshot json.RawMessage, done bool)
}

// Matchmaker groups waiting players into rooms (room.match). Safe for
// concurrent use. FIFOMatchmaker matches the players of one node;
// RedisMatchmaker those of every node sharing a Redis.
// realtimetest.RunMatchmakerTests checks an implementation.
type Matchmaker interface {
	// Add queues a player for a room of kind. When the player completes a
	// group, Add removes the group from the queue and returns it, in
	// arrival order (the player last); otherwise it returns nil. Adding a
	// player already waiting is a no-op (it keeps its place). A player
	// may wait for several kinds at once. The node whose Add completed a
	// group creates the room and sends every member room.matched
	// (Hub.PushUser: through the broker, to any node).
	Add(ctx context.Context, kind string, userKey int64) ([]int64, error)
	// Remove takes the player out of every queue it waits in through this
	// matchmaker (its connection on this node closed).
	Remove(ctx context.Context, userKey int64)
}

// DefaultMatchQueueLen is FIFOMatchmaker's default queue bound per kind.
const DefaultMatchQueueLen = 10000

// ErrMatchQueueFull: the matchmaker's queue for the kind is full.
var ErrMatchQueueFull = &protocol.Error{Code: protocol.CodeRateLimited, Message: "realtime: matchmaking queue full"}

// FIFOMatchmaker is an in-memory Matchmaker: the first Size players waiting
// for a kind form a group. It matches the players of one node only (each
// node has its own queue).
type FIFOMatchmaker struct {
	size, maxQueue int
	mu             sync.Mutex
	queues         map[string][]int64
}

// NewFIFOMatchmaker returns a matchmaker that groups size players (at least
// 1) per room, with at most maxQueue waiting per kind (<= 0:
// DefaultMatchQueueLen; more answer ErrMatchQueueFull).
func NewFIFOMatchmaker(size, maxQueue int) *FIFOMatchmaker {
	if maxQueue <= 0 {
		maxQueue = DefaultMatchQueueLen
	}
	return &FIFOMatchmaker{size: max(size, 1), maxQueue: maxQueue, queues: make(map[string][]int64)}
}

// Add implements Matchmaker.
func (m *FIFOMatchmaker) Add(_ context.Context, kind string, userKey int64) ([]int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	q := m.queues[kind]
	if slices.Contains(q, userKey) {
		return nil, nil
	}
	if len(q)+1 < m.size {
		if len(q) >= m.maxQueue { // only players who would wait count against the bound
			return nil, ErrMatchQueueFull
		}
		m.queues[kind] = append(q, userKey)
		return nil, nil
	}
	q = append(q, userKey)
	group := slices.Clone(q[:m.size])
	rest := slices.Clone(q[m.size:])
	if len(rest) == 0 {
		delete(m.queues, kind)
	} else {
		m.queues[kind] = rest
	}
	return group, nil
}

// Remove implements Matchmaker.
func (m *FIFOMatchmaker) Remove(_ context.Context, userKey int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, q := range m.queues {
		if i := slices.Index(q, userKey); i >= 0 {
			q = slices.Delete(q, i, i+1)
			if len(q) == 0 {
				delete(m.queues, k)
			} else {
				m.queues[k] = q
			}
		}
	}
}

// ErrRoomFull: the room admits no more members (RaidBoss.Join).
var ErrRoomFull = &protocol.Error{Code: protocol.CodeForbidden, Message: "realtime: room full"}

// RaidBoss is a demo RoomLogic: a boss with HP that members damage with
// inputs {"damage":n} (n clamped to 1..MaxDamage). Its snapshot is
// {"hp","players":[{"user","damage"}],"hits":[{"user","damage"}]}: hits
// are the inputs applied at this tick, in order. The room is done when HP
// reaches 0.
type RaidBoss struct {
	HP         int
	MaxPlayers int
	MaxDamage  int
	dealt      map[int64]int
	hits       []RaidHit
}

// RaidHit is one member's damage.
type RaidHit struct {
	User   int64 `json:"user"`
	Damage int   `json:"damage"`
}

// NewRaidBoss returns a boss with hp, for up to maxPlayers members, each
// input dealing at most 100.
func NewRaidBoss(hp, maxPlayers int) *RaidBoss {
	return &RaidBoss{HP: hp, MaxPlayers: maxPlayers, MaxDamage: 100, dealt: make(map[int64]int), hits: []RaidHit{}}
}

// Join implements RoomLogic.
func (b *RaidBoss) Join(userKey int64) error {
	if len(b.dealt) >= b.MaxPlayers {
		return ErrRoomFull
	}
	b.dealt[userKey] = 0
	return nil
}

// Leave implements RoomLogic.
func (b *RaidBoss) Leave(userKey int64) { delete(b.dealt, userKey) }

// Input implements RoomLogic.
func (b *RaidBoss) Input(userKey int64, input json.RawMessage) {
	var in struct {
		Damage int `json:"damage"`
	}
	if json.Unmarshal(input, &in) != nil || in.Damage <= 0 || b.HP <= 0 {
		return
	}
	d := min(in.Damage, b.MaxDamage, b.HP)
	b.HP -= d
	b.dealt[userKey] += d
	b.hits = append(b.hits, RaidHit{User: userKey, Damage: d})
}

// Tick implements RoomLogic.
func (b *RaidBoss) Tick(time.Time, time.Duration) (json.RawMessage, bool) {
	players := make([]RaidHit, 0, len(b.dealt))
	for u, d := range b.dealt {
		players = append(players, RaidHit{User: u, Damage: d})
	}
	slices.SortFunc(players, func(x, y RaidHit) int { return int(min(max(x.User-y.User, -1), 1)) })
	snap, _ := json.Marshal(struct {
		HP      int       `json:"hp"`
		Players []RaidHit `json:"players"`
		Hits    []RaidHit `json:"hits"`
	}{b.HP, players, b.hits})
	b.hits = b.hits[:0]
	return snap, b.HP <= 0
}
