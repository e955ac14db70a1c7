package realtime

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/madang-io/madang/internal/clock"
)

// collector gathers delivered publications.
type collector struct {
	mu   sync.Mutex
	pubs []Publication
	ch   chan struct{}
}

func newCollector() *collector { return &collector{ch: make(chan struct{}, 1)} }

func (c *collector) deliver(p Publication) {
	c.mu.Lock()
	c.pubs = append(c.pubs, p)
	c.mu.Unlock()
	select {
	case c.ch <- struct{}{}:
	default:
	}
}

func (c *collector) waitN(t *testing.T, n int) []Publication {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		c.mu.Lock()
		if len(c.pubs) >= n {
			out := append([]Publication(nil), c.pubs...)
			c.mu.Unlock()
			return out
		}
		c.mu.Unlock()
		select {
		case <-c.ch:
		case <-deadline:
			t.Fatalf("got %d publications, want %d", len(c.pubs), n)
		}
	}
}

var hist = PublishOptions{HistorySize: 3, HistoryTTL: time.Minute}

func startNode(t *testing.T, b *MemoryBroker) *collector {
	t.Helper()
	c := newCollector()
	if err := b.Start(context.Background(), c.deliver); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return c
}

func TestMemoryBrokerHistoryAndOrder(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	b := NewMemoryBroker(MemoryBrokerConfig{Now: clk.Now})
	c := startNode(t, b)
	if err := b.Subscribe(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	var pos StreamPosition
	for i := 1; i <= 5; i++ {
		p, err := b.Publish(ctx, "a", []byte(fmt.Sprint(i)), hist)
		if err != nil {
			t.Fatal(err)
		}
		if p.Offset != uint64(i) || p.Epoch == "" {
			t.Fatalf("publish %d: position %+v", i, p)
		}
		pos = p
	}
	got := c.waitN(t, 5)
	for i, p := range got {
		if p.Offset != uint64(i+1) || string(p.Data) != fmt.Sprint(i+1) || p.Epoch != pos.Epoch || p.Channel != "a" {
			t.Fatalf("delivery %d: %+v", i, p)
		}
	}
	// The ring keeps the last 3: offsets 3, 4, 5.
	res, err := b.History(ctx, "a", StreamPosition{}, 10)
	if err != nil || len(res.Publications) != 3 || res.Publications[0].Offset != 3 || res.Position != pos {
		t.Fatalf("history from zero: %+v, %v", res, err)
	}
	res, err = b.History(ctx, "a", StreamPosition{Offset: 3, Epoch: pos.Epoch}, 1)
	if err != nil || len(res.Publications) != 1 || res.Publications[0].Offset != 4 {
		t.Fatalf("history after 3 limit 1: %+v, %v", res, err)
	}
	res, err = b.History(ctx, "a", StreamPosition{Offset: 2, Epoch: pos.Epoch}, 10)
	if err != nil || len(res.Publications) != 3 {
		t.Fatalf("history after 2 (offset 3 kept): %+v, %v", res, err)
	}
	res, err = b.History(ctx, "a", pos, 10)
	if err != nil || len(res.Publications) != 0 || res.Position != pos {
		t.Fatalf("history at the head: %+v, %v", res, err)
	}
	for _, since := range []StreamPosition{{Offset: 1, Epoch: pos.Epoch}, {Offset: 4, Epoch: "other"}, {Offset: 9, Epoch: pos.Epoch}} {
		if _, err := b.History(ctx, "a", since, 10); !errors.Is(err, ErrPositionLost) {
			t.Fatalf("history after %+v: %v, want ErrPositionLost", since, err)
		}
	}
	// Expiry: a new epoch starts after the TTL.
	clk.Advance(2 * time.Minute)
	if _, err := b.History(ctx, "a", pos, 10); !errors.Is(err, ErrPositionLost) {
		t.Fatalf("expired history: %v", err)
	}
	p, err := b.Publish(ctx, "a", []byte("x"), hist)
	if err != nil || p.Offset != 1 || p.Epoch == pos.Epoch {
		t.Fatalf("after expiry: %+v %v", p, err)
	}
	// Without history: offset 0, still delivered.
	p, err = b.Publish(ctx, "a", []byte("live"), PublishOptions{})
	if err != nil || p != (StreamPosition{}) {
		t.Fatalf("live publish: %+v %v", p, err)
	}
	got = c.waitN(t, 7)
	if got[6].Offset != 0 || string(got[6].Data) != "live" {
		t.Fatalf("live delivery: %+v", got[6])
	}
	if _, err := b.Publish(ctx, "a", nil, PublishOptions{HistorySize: 1}); err == nil {
		t.Fatal("HistorySize without TTL accepted")
	}
}

func TestMemoryBrokerResizeRing(t *testing.T) {
	ctx := context.Background()
	b := NewMemoryBroker(MemoryBrokerConfig{})
	defer b.Close()
	for i := 1; i <= 5; i++ {
		if _, err := b.Publish(ctx, "r", []byte{byte(i)}, PublishOptions{HistorySize: 5, HistoryTTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Publish(ctx, "r", []byte{6}, PublishOptions{HistorySize: 2, HistoryTTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	res, err := b.History(ctx, "r", StreamPosition{}, 10)
	if err != nil || len(res.Publications) != 2 || res.Publications[0].Data[0] != 5 || res.Publications[1].Data[0] != 6 {
		t.Fatalf("after shrinking: %+v %v", res, err)
	}
}

func TestMemoryBrokerPeersAndUnsubscribe(t *testing.T) {
	ctx := context.Background()
	a := NewMemoryBroker(MemoryBrokerConfig{})
	b := a.Peer()
	ca, cb := startNode(t, a), startNode(t, b)
	if err := a.Subscribe(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if err := b.Subscribe(ctx, "x", "y"); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if _, err := b.Publish(ctx, "x", []byte{byte(i)}, hist); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Publish(ctx, "y", []byte("only b"), hist); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*collector{ca, cb} {
		got := c.waitN(t, 100)
		for i := range 100 {
			if got[i].Offset != uint64(i+1) {
				t.Fatalf("out of order at %d: %+v", i, got[i])
			}
		}
	}
	if got := cb.waitN(t, 101); string(got[100].Data) != "only b" {
		t.Fatalf("peer missed y: %+v", got[100])
	}
	// The history is shared: a peer sees what the other published.
	if res, err := a.History(ctx, "x", StreamPosition{}, 1); err != nil || res.Position.Offset != 100 {
		t.Fatalf("shared history: %+v %v", res, err)
	}
	if err := a.Unsubscribe(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(ctx, "x", []byte("after"), hist); err != nil {
		t.Fatal(err)
	}
	cb.waitN(t, 102)
	ca.mu.Lock()
	n := len(ca.pubs)
	ca.mu.Unlock()
	if n != 100 {
		t.Fatalf("unsubscribed node got %d publications", n)
	}
}

// A full queue makes Publish wait; a ctx that ends first publishes nothing.
func TestMemoryBrokerQueueFull(t *testing.T) {
	ctx := context.Background()
	b := NewMemoryBroker(MemoryBrokerConfig{QueueLen: 2})
	release := make(chan struct{})
	c := newCollector()
	if err := b.Start(ctx, func(p Publication) { <-release; c.deliver(p) }); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Subscribe(ctx, "q"); err != nil {
		t.Fatal(err)
	}
	// One in deliver (blocked), two queued.
	for i := range 3 {
		if _, err := b.Publish(ctx, "q", []byte{byte(i)}, hist); err != nil {
			t.Fatal(err)
		}
	}
	// Wait until the first one is taken off the queue by the blocked deliver.
	deadline := time.Now().Add(10 * time.Second)
	for len(b.q) != 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := b.Publish(short, "q", []byte("lost"), hist); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("publish on a full queue: %v", err)
	}
	res, err := b.History(ctx, "q", StreamPosition{}, 10)
	if err != nil || res.Position.Offset != 3 {
		t.Fatalf("a refused publication was kept: %+v %v", res, err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := b.Publish(ctx, "q", []byte{3}, hist)
		done <- err
	}()
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := c.waitN(t, 4)
	for i, p := range got {
		if p.Offset != uint64(i+1) {
			t.Fatalf("order after backpressure: %+v", got)
		}
	}
}

func TestMemoryBrokerClose(t *testing.T) {
	ctx := context.Background()
	b := NewMemoryBroker(MemoryBrokerConfig{SweepInterval: time.Millisecond})
	startNode(t, b)
	if err := b.Start(ctx, func(Publication) {}); err == nil {
		t.Fatal("second Start accepted")
	}
	b.Close()
	if _, err := b.Publish(ctx, "a", nil, PublishOptions{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("publish after close: %v", err)
	}
	if err := b.Subscribe(ctx, "a"); !errors.Is(err, ErrClosed) {
		t.Fatalf("subscribe after close: %v", err)
	}
}

func TestMemoryBrokerSweep(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	b := NewMemoryBroker(MemoryBrokerConfig{Now: clk.Now, SweepInterval: time.Millisecond})
	defer b.Close()
	if _, err := b.Publish(ctx, "s", []byte("x"), hist); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	deadline := time.Now().Add(10 * time.Second)
	for {
		b.be.mu.Lock()
		n := len(b.be.channels)
		b.be.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("expired channel never swept")
		}
		time.Sleep(time.Millisecond)
	}
}

// Nodes close independently; the backend lives until the last one closes.
func TestMemoryBrokerPeerOutlivesRoot(t *testing.T) {
	ctx := context.Background()
	a := NewMemoryBroker(MemoryBrokerConfig{})
	b := a.Peer()
	cb := startNode(t, b)
	if err := b.Subscribe(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	a.Close()
	if _, err := a.History(ctx, "c", StreamPosition{}, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("history on a closed node: %v", err)
	}
	if _, err := b.Publish(ctx, "c", []byte("x"), hist); err != nil {
		t.Fatal(err)
	}
	cb.waitN(t, 1)
	b.Close()
	c := a.Peer()
	if _, err := c.Publish(ctx, "c", nil, PublishOptions{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("peer of a closed backend: %v", err)
	}
	c.Close()
}
