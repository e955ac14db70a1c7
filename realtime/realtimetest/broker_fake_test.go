package realtimetest_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/madang-io/madang/internal/testredis"
	"github.com/madang-io/madang/realtime"
	"github.com/madang-io/madang/realtime/realtimetest"
)

// fakeOverRedis returns two FakeBrokers over Redis brokers sharing a fresh
// prefix.
func fakeOverRedis(t *testing.T) []*realtimetest.FakeBroker {
	c := testredis.Client(t)
	prefix := testredis.Prefix(t, c)
	var out []*realtimetest.FakeBroker
	for range 2 {
		b, err := realtime.NewRedisBroker(c, realtime.RedisBrokerConfig{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, realtimetest.NewFakeBroker(b))
	}
	return out
}

// Without faults the fake is the broker it wraps.
func TestFakeBrokerConforms(t *testing.T) {
	realtimetest.RunBrokerTests(t, func(t *testing.T) []realtime.Broker {
		var bs []realtime.Broker
		for _, f := range fakeOverRedis(t) {
			bs = append(bs, f)
		}
		return bs
	})
}

func TestFakeBrokerFaults(t *testing.T) {
	fs := fakeOverRedis(t)
	a, b := fs[0], fs[1]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rec := realtimetest.NewRecorder()
	if err := a.Start(ctx, rec.Deliver); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := b.Start(ctx, func(realtime.Publication) {}); err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	// Injected failures: typed, and nothing published.
	a.FailNext(realtimetest.OpSubscribe|realtimetest.OpHistory, 1)
	if err := a.Subscribe(ctx, "f"); !errors.Is(err, realtime.ErrUnavailable) {
		t.Fatalf("Subscribe: %v, want ErrUnavailable", err)
	}
	if _, err := a.History(ctx, "f", realtime.StreamPosition{}, 1); !errors.Is(err, realtime.ErrUnavailable) {
		t.Fatalf("History: %v, want ErrUnavailable", err)
	}
	if err := a.Subscribe(ctx, "f"); err != nil {
		t.Fatalf("Subscribe after the one failure: %v", err)
	}
	b.SetDown(realtimetest.OpPublish)
	for range 3 {
		if _, err := b.Publish(ctx, "f", []byte("lost"), hist); !errors.Is(err, realtime.ErrUnavailable) {
			t.Fatalf("Publish while down: %v, want ErrUnavailable", err)
		}
	}
	b.Heal()
	if got := b.Published(); len(got) != 0 {
		t.Fatalf("failed publications recorded: %v", got)
	}

	// Dropped deliveries: the offsets show the gap, History fills it.
	a.DropNext(2)
	for i := 1; i <= 4; i++ {
		if _, err := b.Publish(ctx, "f", fmt.Appendf(nil, "%d", i), hist); err != nil {
			t.Fatal(err)
		}
	}
	got := rec.WaitN(t, "f", 2)
	if got[0].Offset != 3 || got[1].Offset != 4 {
		t.Fatalf("delivered offsets %d, %d; want 3, 4 after dropping 2", got[0].Offset, got[1].Offset)
	}
	if d := a.Dropped(); len(d) != 2 || d[0].Offset != 1 || d[1].Offset != 2 {
		t.Fatalf("Dropped = %v", d)
	}
	if p := b.Published(); len(p) != 4 || p[3].Offset != 4 || string(p[3].Data) != "4" || p[3].Epoch == "" {
		t.Fatalf("Published = %v", p)
	}
	res, err := a.History(ctx, "f", realtime.StreamPosition{}, 2)
	if err != nil || len(res.Publications) != 2 || string(res.Publications[1].Data) != "2" {
		t.Fatalf("History = %+v, %v; want the 2 dropped publications", res, err)
	}

	a.DropIf(func(p realtime.Publication) bool { return string(p.Data) == "odd" })
	for _, d := range []string{"odd", "even"} {
		if _, err := b.Publish(ctx, "f", []byte(d), hist); err != nil {
			t.Fatal(err)
		}
	}
	got = rec.WaitN(t, "f", 3)
	if string(got[2].Data) != "even" || len(a.Delivered()) != 3 {
		t.Fatalf("after DropIf got %q, delivered %d", got[2].Data, len(a.Delivered()))
	}
}

var hist = realtime.PublishOptions{HistorySize: 100, HistoryTTL: time.Minute}
