package load

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/realtime"
)

// Chat talks in a chat room over the realtime (websocket) binding, as a
// player in world chat does. The user logs in on the game server as for
// every scenario (HTTP); on its first chat iteration it connects to
// Config.WSURL with its session's token (ws.connect) and subscribes to its
// room, the world chat partition "world.<user id mod Config.ChatRooms>"
// (rt.subscribe). It keeps that one connection for the rest of the run and
// connects again when the server closed it or the user logged in again (a
// new login kicks the old connection); the connection is closed when the
// user ends. Every push is read as it arrives, so the client never falls
// behind, and counted (Report.Realtime: pushes per second is the hub's
// fan-out, with the delivery latency of every chat message received).
//
// An iteration sends one message. Usually it publishes on the room
// (rt.publish, recorded with its reply's latency), then waits for its own
// message to come back as a push and records the time from the send as
// the pseudo-command chat.echo (CmdChatEcho): an echo that does not come
// within Config.RequestTimeout, or a connection that ends first, is a
// failed chat.echo. Every WhisperEvery-th iteration whispers to the next
// user instead (rt.whisper, to user id+1's player; the receiver counts it).
//
// The hub limits each user's chat messages (realtime.Config.ChatRate, 2
// per second with a burst of 10 by default, rate_limited beyond), so a user
// waits until Interval has passed since its previous message before it
// sends the next one, as a person typing does; with no think time a user
// sends 1/Interval messages per second.
//
// The websocket frames are protected as the HTTP requests are
// (Config.Mode). In ModeAuthenticated they are sealed with the game
// session's keys and take their counters from the user's protocol client
// (protocol.Client.Counter): a session's HTTP requests and websocket frames
// share one counter (docs/PROTOCOL.md §7.4, §16.1), so no counter is used
// twice. A user's iterations run one at a time, so its HTTP calls and its
// websocket messages never overtake each other.
type Chat struct {
	// Interval is the least time between two messages of a user. Default
	// DefaultChatInterval.
	Interval time.Duration
	// WhisperEvery makes every WhisperEvery-th message of a user a whisper.
	// Default DefaultWhisperEvery; negative: no whispers.
	WhisperEvery int
	// TextLen is the length of each message's text. Default 32, at most
	// 512 (the hub's default message limit is 1 KiB of JSON).
	TextLen int
}

// Defaults of Chat.
const (
	// DefaultChatInterval is a little above the hub's default chat rate
	// (2 messages per second).
	DefaultChatInterval = 600 * time.Millisecond
	DefaultWhisperEvery = 5
	DefaultChatTextLen  = 32
	MaxChatTextLen      = 512
)

// Name returns "chat".
func (Chat) Name() string { return "chat" }

// Run sends one chat message or whisper.
func (s Chat) Run(ctx context.Context, vu *VU) error {
	interval := s.Interval
	if interval <= 0 {
		interval = DefaultChatInterval
	}
	every := s.WhisperEvery
	if every == 0 {
		every = DefaultWhisperEvery
	}
	n := s.TextLen
	if n <= 0 {
		n = DefaultChatTextLen
	}
	if n > MaxChatTextLen {
		return fmt.Errorf("load: chat: text length %d above %d", n, MaxChatTextLen)
	}
	rc, err := vu.realtime(ctx)
	if err != nil {
		return err
	}
	if wait := interval - time.Since(vu.lastChat); !vu.lastChat.IsZero() && wait > 0 {
		if !vu.Pause(wait) {
			return ErrRunEnded
		}
	}
	vu.chats++
	e := vu.e
	msg := chatData{User: vu.ID, N: vu.chats, Text: strings.Repeat("x", n)}
	cctx, cancel := context.WithTimeout(ctx, e.cfg.RequestTimeout)
	defer cancel()
	t0 := time.Now()
	vu.lastChat = t0
	msg.T = int64(t0.Sub(e.start))
	cmd := realtime.CmdPublish
	to := int64(0)
	if every > 0 && vu.chats%uint64(every) == 0 {
		to = e.userKeys[(vu.ID+1)%len(e.userKeys)].Load()
	}
	if to > 0 {
		cmd = realtime.CmdWhisper
		err = rc.c.Whisper(cctx, to, msg)
	} else {
		_, err = rc.c.Publish(cctx, rc.room, msg)
	}
	end := time.Now()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	err = rtError(err)
	e.rec.Record(cmd, end, end.Sub(t0), err, false)
	if err != nil || cmd == realtime.CmdWhisper {
		return err
	}
	// Wait for the echo: the reader may have it already.
	for {
		select {
		case ec := <-rc.echoes:
			if ec.n != msg.N {
				continue // an earlier message's, whose wait ended
			}
			e.rec.Record(CmdChatEcho, ec.at, ec.at.Sub(t0), nil, false)
			return nil
		case <-rc.readerEnd:
			if ec, ok := lastEcho(rc.echoes); ok && ec.n == msg.N {
				e.rec.Record(CmdChatEcho, ec.at, ec.at.Sub(t0), nil, false)
				return nil
			}
			err = &protocol.TransportError{Err: errors.New("load: chat: the connection ended before the message came back")}
		case <-cctx.Done():
			if ctx.Err() != nil {
				return ctx.Err()
			}
			err = cctx.Err()
		}
		end = time.Now()
		e.rec.Record(CmdChatEcho, end, end.Sub(t0), err, false)
		return err
	}
}

// lastEcho returns the last echo waiting in ch, if any.
func lastEcho(ch chan echo) (last echo, ok bool) {
	for {
		select {
		case ec := <-ch:
			last, ok = ec, true
		default:
			return last, ok
		}
	}
}
