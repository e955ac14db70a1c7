package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/madang-io/madang/protocol"
)

// room is one running room, owned by its goroutine (run): members, the
// queued inputs and the logic are touched by it only.
type room struct {
	r     *Rooms
	id    string
	logic RoomLogic
	lease Lease

	ops      chan roomOp
	stopOnce sync.Once
	stopCh   chan struct{}
	done     chan struct{} // closed when run returned

	members map[int64]*roomMember
	inputs  []roomOp
	snap    json.RawMessage
	tick    uint64
}

type roomMember struct {
	node      string
	connected bool
	since     time.Time // when it disconnected
	seen      time.Time // the last heartbeat of its node (remote members)
}

type roomOp struct {
	kind  string
	user  int64
	node  string
	data  json.RawMessage
	reply func(roomReply) // nil: no answer wanted
}

func newRoom(r *Rooms, id string, logic RoomLogic) *room {
	return &room{
		r: r, id: id, logic: logic,
		ops:     make(chan roomOp, r.cfg.InputQueueLen+roomOpsExtra),
		stopCh:  make(chan struct{}),
		done:    make(chan struct{}),
		members: make(map[int64]*roomMember),
	}
}

var errRoomBusy = &protocol.Error{Code: protocol.CodeRateLimited, Message: "realtime: room input queue full"}

// submit queues an op without blocking: a full queue answers rate_limited.
func (rm *room) submit(op roomOp) {
	select {
	case <-rm.done:
		if op.reply != nil {
			op.reply(replyErr(ErrRoomNotFound))
		}
		return
	default:
	}
	select {
	case rm.ops <- op:
	default:
		if op.reply != nil {
			op.reply(replyErr(errRoomBusy))
		}
	}
}

func (rm *room) stop() { rm.stopOnce.Do(func() { close(rm.stopCh) }) }

func (rm *room) run() {
	r := rm.r
	defer r.wg.Done()
	interval := time.Duration(float64(time.Second) / r.cfg.TickRate)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	renew := time.NewTicker(r.cfg.LeaseTTL / 3)
	defer renew.Stop()
	last := time.Now()
	reason := roomReasonGoingAway
	defer func() { rm.end(reason) }()
	for {
		select {
		case op := <-rm.ops:
			rm.handle(op)
		case now := <-ticker.C:
			if rm.onTick(now, now.Sub(last)) {
				reason = roomReasonDone
				return
			}
			last = now
		case <-renew.C:
			ctx, cancel := context.WithTimeout(r.ctx, r.cfg.LeaseTTL/3)
			l, err := r.dir.Renew(ctx, rm.lease, r.cfg.LeaseTTL)
			cancel()
			switch {
			case err == nil:
				rm.lease = l
			case errors.Is(err, ErrLeaseLost):
				r.log.Warn("realtime: room lease lost", "room", rm.id)
				return
			default: // backend trouble: try again at the next renewal
				r.log.Warn("realtime: room lease renewal failed", "room", rm.id, "err", err)
			}
		case <-rm.stopCh:
			return
		}
	}
}

func (rm *room) handle(op roomOp) {
	reply := func(rep roomReply) {
		if op.reply != nil {
			op.reply(rep)
		}
	}
	m := rm.members[op.user]
	switch op.kind {
	case roomMsgJoin:
		rejoined := m != nil
		if m == nil {
			if err := rm.logic.Join(op.user); err != nil {
				reply(replyErr(err))
				return
			}
			m = &roomMember{}
			rm.members[op.user] = m
		}
		m.node, m.connected, m.seen = op.node, true, time.Now()
		b, _ := json.Marshal(struct {
			Room     string          `json:"room"`
			Rejoined bool            `json:"rejoined"`
			Snapshot json.RawMessage `json:"snapshot"`
		}{rm.id, rejoined, rm.snap})
		reply(roomReply{data: b})
	case roomMsgLeave:
		if m == nil {
			reply(replyErr(errRoomNotMember))
			return
		}
		delete(rm.members, op.user)
		rm.logic.Leave(op.user)
		reply(roomReply{})
	case roomMsgInput:
		switch {
		case m == nil:
			reply(replyErr(errRoomNotMember))
		case len(rm.inputs) >= rm.r.cfg.InputQueueLen:
			reply(replyErr(errRoomBusy))
		default:
			rm.inputs = append(rm.inputs, op)
			reply(roomReply{})
		}
	case roomMsgTouch:
		var users []int64
		if json.Unmarshal(op.data, &users) != nil {
			return
		}
		now := time.Now()
		for _, u := range users {
			if m := rm.members[u]; m != nil && m.connected && m.node == op.node {
				m.seen = now
			}
		}
	case roomMsgDisconnect:
		if m != nil && m.connected && m.node == op.node {
			m.connected, m.since = false, time.Now()
		}
	}
}

// onTick applies the queued inputs in order, removes members whose grace
// ended, ticks the logic and broadcasts its snapshot. It reports whether
// the room is done.
func (rm *room) onTick(now time.Time, dt time.Duration) bool {
	for _, op := range rm.inputs {
		if rm.members[op.user] != nil {
			rm.logic.Input(op.user, op.data)
		}
	}
	clear(rm.inputs)
	rm.inputs = rm.inputs[:0]
	for u, m := range rm.members {
		if m.connected && m.node != rm.r.cfg.Node && now.Sub(m.seen) >= rm.r.cfg.Grace {
			m.connected, m.since = false, m.seen // its node went silent
		}
		if !m.connected && now.Sub(m.since) >= rm.r.cfg.Grace {
			delete(rm.members, u)
			rm.logic.Leave(u)
		}
	}
	snap, done := rm.logic.Tick(now, dt)
	rm.tick++
	if snap != nil {
		if !json.Valid(snap) {
			rm.r.log.Warn("realtime: room logic returned an invalid snapshot", "room", rm.id)
		} else {
			rm.snap = snap
			ctx, cancel := context.WithTimeout(rm.r.ctx, rm.r.cfg.RequestTimeout)
			rm.r.publishRoom(ctx, rm.id, TopicRoomSnapshot, struct {
				Room  string          `json:"room"`
				Tick  uint64          `json:"tick"`
				State json.RawMessage `json:"state"`
			}{rm.id, rm.tick, snap})
			cancel()
		}
	}
	return done
}

// end tells the members, releases the lease and answers what is queued.
func (rm *room) end(reason string) {
	r := rm.r
	r.removeRoom(rm)
	close(rm.done)
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.RequestTimeout)
	defer cancel()
	r.publishRoom(ctx, rm.id, TopicRoomEnd, map[string]string{"room": rm.id, "reason": reason})
	if err := r.dir.Release(ctx, rm.lease); err != nil {
		r.log.Warn("realtime: room lease release failed", "room", rm.id, "err", err)
	}
	for {
		select {
		case op := <-rm.ops:
			if op.reply != nil {
				op.reply(replyErr(ErrRoomNotFound))
			}
		default:
			return
		}
	}
}
