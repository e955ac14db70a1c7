package realtime_test

import (
	"context"
	"fmt"
	"time"

	"github.com/madang-io/madang/realtime"
)

// A node reports its connections by heartbeat; any node asks where a user
// is and how many users a channel has.
func ExampleMemoryPresence() {
	ctx := context.Background()
	p := realtime.NewMemoryPresence(realtime.PresenceConfig{TTL: 30 * time.Second})

	// At connect, then every TTL/3 or so for every live connection:
	_ = p.Touch(ctx,
		realtime.PresenceEntry{PresenceConn: realtime.PresenceConn{UserKey: 7, Node: "rt-1", ConnID: "c1"}, Channels: []string{"guild:42"}},
		realtime.PresenceEntry{PresenceConn: realtime.PresenceConn{UserKey: 8, Node: "rt-1", ConnID: "c2"}, Channels: []string{"guild:42"}},
	)
	where, _ := p.Where(ctx, 7)
	fmt.Println("user 7 on", where[0].Node)
	n, _ := p.Count(ctx, "guild:42")
	fmt.Println("guild:42 online:", n)

	// A clean disconnect takes effect at once; a dead node's users drop
	// out after the TTL.
	_ = p.Disconnect(ctx, realtime.PresenceConn{UserKey: 8, Node: "rt-1", ConnID: "c2"}, "guild:42")
	n, _ = p.Count(ctx, "guild:42")
	fmt.Println("guild:42 online:", n)
	// Output:
	// user 7 on rt-1
	// guild:42 online: 2
	// guild:42 online: 1
}
