package realtime

import (
	"context"
	"time"

	"github.com/madang-io/madang/internal/clock"
)

// PresenceConn is one client connection as presence knows it.
type PresenceConn struct {
	// UserKey is the connected user.
	UserKey int64
	// Node names the realtime node holding the connection (where a whisper
	// to the user goes).
	Node string
	// ConnID tells the user's connections on one node apart (for example a
	// per-node counter).
	ConnID string
}

// PresenceEntry is a connection and the channels it is in, as a heartbeat
// reports it.
type PresenceEntry struct {
	PresenceConn
	// Channels whose online counts include the user.
	Channels []string
}

// Presence tracks who is online, where, and how many users each channel
// has, across nodes, by heartbeats with a TTL: a node reports each of its
// connections with Touch when it opens and then periodically (well within
// the TTL, say every TTL/3); a connection, and the user in a channel, that
// is not reported again within the TTL drops out on its own, so the users
// of a node that died disappear after at most one TTL.
//
// Counts are of users, not connections: a user with two connections in a
// channel counts once. Leave and Disconnect remove the user from the
// channels at once, even if another of its connections is still in one of
// them; that connection's next Touch puts the user back.
//
// Costs are bounded: Count is O(log n + expired) on the channel's own
// entries (expired entries are removed lazily, once), never a scan of all
// users; Touch is O(channels · log n); Where reads one user's connections.
// Nodes' clocks must roughly agree (to well within the TTL): expiry times
// are computed by the node that reports them.
//
// All methods are safe for concurrent use.
type Presence interface {
	// Touch reports the entries' connections as online, and their users in
	// the entries' channels, until now + TTL. One call may carry many
	// entries (a node's whole heartbeat round).
	Touch(ctx context.Context, entries ...PresenceEntry) error
	// Leave removes the user from the channels' counts at once (it left
	// them but stays connected).
	Leave(ctx context.Context, userKey int64, channels ...string) error
	// Disconnect removes the connection at once, and its user from the
	// channels' counts.
	Disconnect(ctx context.Context, c PresenceConn, channels ...string) error
	// Where returns the user's live connections on every node, none when the
	// user is offline.
	Where(ctx context.Context, userKey int64) ([]PresenceConn, error)
	// Count returns how many users are online in the channel.
	Count(ctx context.Context, channel string) (int, error)
}

// PresenceConfig configures a presence backend. The zero value works.
type PresenceConfig struct {
	// TTL is how long a reported connection (and its user in its channels)
	// stays online without another Touch. Default 60s.
	TTL time.Duration
	// Prefix starts every Redis key (Redis backend only); it must not
	// contain '{' or '}'. Default "madang:rt:".
	Prefix string
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

func (c PresenceConfig) withDefaults() PresenceConfig {
	if c.TTL <= 0 {
		c.TTL = 60 * time.Second
	}
	if c.Prefix == "" {
		c.Prefix = "madang:rt:"
	}
	c.Now = clock.OrNow(c.Now)
	return c
}
