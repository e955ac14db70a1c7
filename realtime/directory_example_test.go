package realtime_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/madang-io/madang/realtime"
)

// A raid room lives on the node that claimed it; the others look it up to
// route their players to it.
func ExampleMemoryDirectory() {
	ctx := context.Background()
	d := realtime.NewMemoryDirectory(realtime.DirectoryConfig{})

	lease, _ := d.Claim(ctx, "raid:9", "rt-1", 10*time.Second)
	// While the room runs, rt-1 renews well within the lease.
	lease, _ = d.Renew(ctx, lease, 10*time.Second)

	owner, _ := d.Lookup(ctx, "raid:9")
	fmt.Println("raid:9 is on", owner.Node)
	if _, err := d.Claim(ctx, "raid:9", "rt-2", 10*time.Second); errors.Is(err, realtime.ErrRoomTaken) {
		fmt.Println("rt-2 routes to", owner.Node)
	}

	_ = d.Release(ctx, lease) // the raid ended
	_, err := d.Lookup(ctx, "raid:9")
	fmt.Println(errors.Is(err, realtime.ErrRoomNotFound))
	// Output:
	// raid:9 is on rt-1
	// rt-2 routes to rt-1
	// true
}
