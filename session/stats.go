package session

import (
	"errors"
	"sync/atomic"
)

// Stats are a store's counters since it was created, for metrics. They
// count what this store instance did (other server nodes sharing the same
// Redis keep their own).
type Stats struct {
	Created   uint64 // sessions created (logins)
	Validated uint64 // Get and GetFrame calls that accepted a session
	Rejected  uint64 // Get and GetFrame calls refused: unknown, expired, kicked, revoked, replayed
	Kicked    uint64 // sessions ended by a newer login
	Revoked   uint64 // sessions ended by Revoke or RevokeUser
	Failures  uint64 // calls that failed with ErrUnavailable
	// Resubscribed counts event subscriptions moved to another server
	// because their probe did not come back (Config.ProbeInterval): a
	// Sentinel failover, or a subscription broken some other way. Always 0
	// in the memory store.
	Resubscribed uint64
	// Cached counts the Get calls a VerifiedCache answered from memory
	// (also counted in Validated). Always 0 in a store's own Stats.
	Cached uint64
}

type counters struct {
	created, validated, rejected, kicked, revoked, failures, resubscribed atomic.Uint64
}

func (c *counters) stats() Stats {
	return Stats{
		Created: c.created.Load(), Validated: c.validated.Load(), Rejected: c.rejected.Load(),
		Kicked: c.kicked.Load(), Revoked: c.revoked.Load(), Failures: c.failures.Load(),
		Resubscribed: c.resubscribed.Load(),
	}
}

// lookup counts the outcome of a Get or GetFrame.
func (c *counters) lookup(err error) {
	switch {
	case err == nil:
		c.validated.Add(1)
	case errors.Is(err, ErrUnavailable):
		c.failures.Add(1)
	case !errors.Is(err, ErrClosed):
		c.rejected.Add(1)
	}
}

// failed counts a failure of another call.
func (c *counters) failed(err error) {
	if errors.Is(err, ErrUnavailable) {
		c.failures.Add(1)
	}
}
