package session

import (
	"context"
	"crypto/rand"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// subscription is a pub/sub subscription to channels on one node that
// follows the node's commands to another server.
//
// go-redis moves a failover client's command connections to the new master
// on a Sentinel +switch-master, but not its pub/sub connections: they stay
// on the old master until it drops them (when the Sentinel demotes it, up
// to seconds later; never while a partition hides it from the Sentinel),
// and what is published on the new master meanwhile never reaches them. So
// every probe interval the subscription publishes a probe, through the
// node's client, on a channel of its own that it also subscribes to. A probe
// that has not come back two intervals later means the subscription and the
// commands reach different servers: it subscribes again on a new connection
// (dialled like the commands', so to the new master) and only then closes
// the old one, so nothing published on the new server after the switch is
// missed, and messages may arrive twice around the move. The same repairs a
// subscription that is silently broken in any other way, on any client.
type subscription struct {
	node     redis.UniversalClient
	channels []string // what the caller asked for, then the probe channel
	probe    string
	every    time.Duration // <= 0: no probes
	onMsg    func(*redis.Message)
	log      *slog.Logger
	moved    *atomic.Uint64 // counts resubscriptions; may be nil

	quit chan struct{}
	done chan struct{}
	once sync.Once
}

// subscribe subscribes to channels on node and returns the running
// subscription. It waits (until ctx ends) for the server to confirm the
// subscription, so messages published after it returns are seen; if that
// fails it returns the error along with the subscription, which keeps trying
// in the background (go-redis reconnects; the probe moves it). probePrefix
// names the probe channel: probePrefix, then random characters. onMsg is
// called for each message of channels, on the subscription's goroutine.
func subscribe(ctx context.Context, node redis.UniversalClient, channels []string, probePrefix string, every time.Duration,
	onMsg func(*redis.Message), log *slog.Logger, moved *atomic.Uint64) (*subscription, error) {
	var b [9]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	probe := probePrefix + b64.EncodeToString(b[:])
	s := &subscription{
		node: node, channels: append(append([]string(nil), channels...), probe), probe: probe,
		every: every, onMsg: onMsg, log: log, moved: moved,
		quit: make(chan struct{}), done: make(chan struct{}),
	}
	ps, err := s.open(ctx)
	go s.run(ps)
	return s, err
}

// open subscribes on a new connection and waits until ctx ends for the
// confirmation. It returns the PubSub even when the wait failed.
func (s *subscription) open(ctx context.Context) (*redis.PubSub, error) {
	ps := s.node.Subscribe(ctx, s.channels...)
	_, err := ps.Receive(ctx)
	return ps, err
}

// stop ends the subscription and waits for its goroutine. It may be called
// more than once, concurrently.
func (s *subscription) stop() {
	s.once.Do(func() { close(s.quit) })
	<-s.done
}

func (s *subscription) run(ps *redis.PubSub) {
	defer close(s.done)
	defer func() { _ = ps.Close() }()
	msgs := ps.Channel()
	var tick <-chan time.Time
	if s.every > 0 {
		t := time.NewTicker(s.every)
		defer t.Stop()
		tick = t.C
	}
	var sent, seen uint64 // the last probe published, the highest come back
	handle := func(m *redis.Message) {
		if m.Channel != s.probe {
			s.onMsg(m)
		} else if n, err := strconv.ParseUint(m.Payload, 10, 64); err == nil && n > seen {
			seen = n
		}
	}
	for {
		select {
		case <-s.quit:
			return
		case m, ok := <-msgs:
			if !ok {
				return
			}
			handle(m)
		case <-tick:
			if sent >= seen+2 {
				// The probe published two intervals ago has not come back.
				ctx, cancel := context.WithTimeout(context.Background(), s.every)
				nps, err := s.open(ctx)
				cancel()
				if err != nil {
					_ = nps.Close()
					s.log.Warn("session: resubscribe", "channels", s.channels[:len(s.channels)-1], "err", err)
				} else {
					s.log.Info("session: subscription moved: its probe did not come back", "channels", s.channels[:len(s.channels)-1])
					if s.moved != nil {
						s.moved.Add(1)
					}
					_ = ps.Close()
					for m := range msgs { // what the old one still holds
						handle(m)
					}
					ps, msgs, seen = nps, nps.Channel(), sent
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), s.every)
			if err := s.node.Publish(ctx, s.probe, sent+1).Err(); err == nil {
				sent++
			}
			cancel()
		}
	}
}
