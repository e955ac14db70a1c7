package realtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/madang-io/madang/internal/clock"
	"github.com/madang-io/madang/protocol"
)

// Lease is a node's claim on a room.
type Lease struct {
	// Room is the room claimed.
	Room string
	// Node owns the room while the lease lives.
	Node string
	// Token identifies this claim: Renew and Release act only on the claim
	// that holds the room, never on a later one by the same node. Empty in
	// the lease a refused Claim returns (it only names the owner).
	Token string
	// Expires is when the lease ends unless renewed, as the claiming node
	// computed it.
	Expires time.Time
}

// Directory maps rooms to the nodes that own them, with leases: a room (a
// raid, a PvP match) lives on one node, which claims it and renews the
// lease while the room runs; other nodes Lookup the room to forward their
// players' inputs (through the Broker). A node that dies stops renewing,
// and its rooms are free again after the lease.
//
// All methods are safe for concurrent use.
type Directory interface {
	// Claim makes node the room's owner for ttl if no live lease holds it.
	// When one does, it fails with ErrRoomTaken (wrapped) and returns the
	// owner's lease without its token, so the caller can route to it.
	Claim(ctx context.Context, room, node string, ttl time.Duration) (Lease, error)
	// Renew extends the lease to now + ttl. It fails with ErrLeaseLost
	// (wrapped) when the lease expired or the room was released or claimed
	// again meanwhile: the room must stop on this node.
	Renew(ctx context.Context, l Lease, ttl time.Duration) (Lease, error)
	// Release ends the lease at once (the room ended). Releasing a lease
	// that was already lost is not an error and leaves the room's new
	// owner alone.
	Release(ctx context.Context, l Lease) error
	// Lookup returns the room's live lease (without its token), or
	// ErrRoomNotFound (wrapped).
	Lookup(ctx context.Context, room string) (Lease, error)
}

// Errors of the room directory. Each carries a protocol result code.
var (
	// ErrRoomTaken: Claim found the room held by a live lease. It is for
	// the nodes (route to the owner); a client seeing it hit a server bug,
	// hence CodeInternal.
	ErrRoomTaken = &protocol.Error{Code: protocol.CodeInternal, Message: "realtime: room owned by another lease"}
	// ErrLeaseLost: the lease ended before Renew; the room must stop on
	// this node. Its clients are told to reconnect (CodeGoingAway).
	ErrLeaseLost = &protocol.Error{Code: protocol.CodeGoingAway, Message: "realtime: room lease lost"}
	// ErrRoomNotFound: no live lease holds the room (it ended, or its node
	// died); a client naming it is not in it (CodeNotMember).
	ErrRoomNotFound = &protocol.Error{Code: protocol.CodeNotMember, Message: "realtime: room not found"}
)

// DirectoryConfig configures a directory backend. The zero value works.
type DirectoryConfig struct {
	// Prefix starts every Redis key (Redis backend only); it must not
	// contain '{' or '}'. Default "madang:rt:".
	Prefix string
	// Now returns the current time; nil means time.Now. It sets the memory
	// backend's expiry and Lease.Expires.
	Now func() time.Time
}

func (c DirectoryConfig) withDefaults() DirectoryConfig {
	if c.Prefix == "" {
		c.Prefix = "madang:rt:"
	}
	c.Now = clock.OrNow(c.Now)
	return c
}

// newToken returns a random claim token (hex, 128 bits).
func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}
