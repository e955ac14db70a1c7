package realtime

import (
	"context"
	"time"

	"github.com/madang-io/madang/protocol"
)

// Publication is one message published on a channel.
type Publication struct {
	// Channel is the channel the message was published on.
	Channel string
	// Offset is the publication's sequence number in the channel's history:
	// 1 for the first publication of an epoch, then +1 per publication. It
	// is 0 for a publication made without history (PublishOptions.HistorySize
	// 0): such publications are delivered live only and never resumed.
	Offset uint64
	// Epoch names the generation of the channel's history Offset counts in.
	// It changes when the history is lost (expired, or the Redis node that
	// held it restarted empty), so an offset is only meaningful with its
	// epoch. Empty when Offset is 0.
	Epoch string
	// Data is the message, opaque to the broker. Subscribers must not modify
	// it: one slice may be shared by every subscriber on a node.
	Data []byte
}

// StreamPosition is a place in a channel's history: the offset of the last
// publication seen and the epoch it counts in. The zero value means "before
// anything": History from it returns everything still kept.
type StreamPosition struct {
	Offset uint64 `json:"offset"`
	Epoch  string `json:"epoch,omitempty"`
}

// PublishOptions says how a publication is kept.
type PublishOptions struct {
	// HistorySize is how many of the channel's latest publications are kept
	// for clients that resume after a disconnect. 0 keeps none: the
	// publication gets no offset and is delivered live only.
	HistorySize int
	// HistoryTTL is how long a channel's history (and its epoch) lives after
	// its last publication; when it expires the next publication starts a new
	// epoch. Required (> 0) when HistorySize > 0.
	HistoryTTL time.Duration
}

// HistoryResult is what History returns.
type HistoryResult struct {
	// Publications are the kept publications after the requested position,
	// oldest first, at most the requested limit.
	Publications []Publication
	// Position is the channel's current position: the offset of its latest
	// publication and its current epoch (zero offset if it has none yet).
	Position StreamPosition
}

// Broker carries publications between the nodes of a realtime cluster and
// keeps each channel's recent history. A publication made on any node
// reaches every node subscribed to its channel.
//
// Delivery and ordering contract (every implementation, checked by
// realtimetest.RunBrokerTests):
//   - Publications of one channel reach each subscribed node in the order of
//     their offsets (the order Publish calls on the channel completed).
//   - Live delivery is at most once: a node that is cut from the backend for
//     a while misses what was published meanwhile. Offsets make the gap
//     visible, and History fills it while the history still holds it.
//   - Publish with history assigns the offset and stores the publication
//     atomically with delivering it, so a publication is either both in the
//     history and delivered, or neither.
//
// All methods are safe for concurrent use.
type Broker interface {
	// Start begins delivering the publications of the channels this node
	// subscribed to, calling deliver for each, from broker-owned goroutines.
	// deliver must not block for long (it runs on the delivery path of
	// every channel; queue the work). Start is called once, before
	// Subscribe.
	Start(ctx context.Context, deliver func(Publication)) error
	// Subscribe makes this node receive the channels' publications from now
	// on. Subscribing to a channel already subscribed is a no-op. When it
	// returns nil, publications made after it are delivered.
	Subscribe(ctx context.Context, channels ...string) error
	// Unsubscribe stops the channels' delivery to this node. Unknown
	// channels are ignored.
	Unsubscribe(ctx context.Context, channels ...string) error
	// Publish publishes data on the channel to every subscribed node
	// (including this one, if subscribed) and, with opts.HistorySize > 0,
	// keeps it in the channel's history. It returns the channel's position
	// after the publication (zero without history).
	Publish(ctx context.Context, channel string, data []byte, opts PublishOptions) (StreamPosition, error)
	// History returns up to limit publications kept after since (oldest
	// first) and the channel's current position. limit <= 0 returns none
	// (just the position). It fails with ErrPositionLost (wrapped) when the
	// history can no longer fill the gap: since.Epoch is not the current
	// epoch, or publications after since.Offset were already dropped. The
	// zero since never fails that way: it returns what is kept.
	History(ctx context.Context, channel string, since StreamPosition, limit int) (HistoryResult, error)
	// Close stops delivery and the broker's goroutines and waits for them.
	// It does not close Redis clients it was given.
	Close() error
}

// Errors of the realtime package. Each carries a protocol result code
// (protocol.CodeOf).
var (
	// ErrPositionLost: History cannot fill the gap after the given position;
	// the client must reload the channel's full state.
	ErrPositionLost = &protocol.Error{Code: protocol.CodePositionLost, Message: "realtime: history position lost"}
	// ErrUnavailable: the broker's backend did not answer; nothing was
	// published.
	ErrUnavailable = &protocol.Error{Code: protocol.CodeUnavailable, Message: "realtime: broker unavailable"}
	// ErrClosed: the broker or hub was closed.
	ErrClosed = &protocol.Error{Code: protocol.CodeGoingAway, Message: "realtime: closed"}
)
