package realtime_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/madang-io/madang/realtime"
	"github.com/redis/go-redis/v9"
)

// Two nodes share channels through Redis; a client that missed
// publications resumes from its last position with History. (Needs a Redis
// at 127.0.0.1:6379, so it is compiled but not run.)
func ExampleNewRedisBroker() {
	ctx := context.Background()
	rc := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"}) // or a *redis.ClusterClient
	defer rc.Close()

	b, err := realtime.NewRedisBroker(rc, realtime.RedisBrokerConfig{Prefix: "game:rt:"})
	if err != nil {
		panic(err)
	}
	defer b.Close()
	_ = b.Start(ctx, func(p realtime.Publication) {
		// Queue p for the node's subscribers of p.Channel; don't block.
		fmt.Println(p.Channel, p.Offset, string(p.Data))
	})
	_ = b.Subscribe(ctx, "guild:42")

	opts := realtime.PublishOptions{HistorySize: 100, HistoryTTL: 10 * time.Minute}
	pos, _ := b.Publish(ctx, "guild:42", []byte(`{"text":"hi"}`), opts)

	// A client that saw up to pos asks for what came after:
	res, err := b.History(ctx, "guild:42", pos, 100)
	if errors.Is(err, realtime.ErrPositionLost) {
		// Too old: reload the channel's full state instead.
	}
	_ = res
}
