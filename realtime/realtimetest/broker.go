// Package realtimetest helps test realtime code: conformance suites any
// Broker, Presence, Directory or Matchmaker implementation can run, a fake
// broker that records publications and injects failures, and Clock, a
// clock the test moves for the Now settings of realtime's configs. The Go
// websocket client tests connect with is realtime.Dial.
package realtimetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/madang-io/madang/realtime"
)

// wait bounds every wait of the suites: generous, because the machines that
// run them are shared and slow; nothing is asserted about speed.
const wait = 10 * time.Second

// quiet is how long the suites wait for something that must not happen
// (a delivery after Unsubscribe or Close) before they call it absent.
const quiet = 200 * time.Millisecond

// Recorder collects the publications a broker delivers. Its Deliver method
// is the func to pass to Broker.Start.
type Recorder struct {
	mu     sync.Mutex
	byCh   map[string][]realtime.Publication
	notify chan struct{}
	closed bool // set by Stop: a later delivery is counted in late
	late   int
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	return &Recorder{byCh: map[string][]realtime.Publication{}, notify: make(chan struct{})}
}

// Deliver records p.
func (r *Recorder) Deliver(p realtime.Publication) {
	r.mu.Lock()
	if r.closed {
		r.late++
	}
	r.byCh[p.Channel] = append(r.byCh[p.Channel], p)
	close(r.notify)
	r.notify = make(chan struct{})
	r.mu.Unlock()
}

// Stop marks the point after which deliveries are late (see Late).
func (r *Recorder) Stop() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
}

// Late returns how many publications were delivered after Stop.
func (r *Recorder) Late() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.late
}

// Got returns a copy of the publications delivered on channel ch.
func (r *Recorder) Got(ch string) []realtime.Publication {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.byCh[ch])
}

// WaitN waits (up to 10s) until channel ch has at least n deliveries and
// returns them; it fails the test on timeout.
func (r *Recorder) WaitN(t testing.TB, ch string, n int) []realtime.Publication {
	t.Helper()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		got := r.byCh[ch]
		notify := r.notify
		r.mu.Unlock()
		if len(got) >= n {
			return slices.Clone(got)
		}
		select {
		case <-notify:
		case <-deadline.C:
			t.Fatalf("channel %q: %d deliveries after %v, want %d", ch, len(got), wait, n)
			return nil
		}
	}
}

// RunBrokerTests checks that brokers implement the realtime.Broker contract.
// newBrokers returns two or more unstarted brokers sharing one fresh backend
// (an empty namespace), standing for the nodes of one cluster; a
// single-node backend may return one, and the cross-node checks then run on
// it alone. The suite starts them and closes them when the test ends.
func RunBrokerTests(t *testing.T, newBrokers func(t *testing.T) []realtime.Broker) {
	t.Run("CrossNodeDelivery", func(t *testing.T) { testCrossNode(t, newBrokers) })
	t.Run("SubscribeThenPublish", func(t *testing.T) { testSubscribeThenPublish(t, newBrokers) })
	t.Run("OrderUnderConcurrentPublishers", func(t *testing.T) { testOrder(t, newBrokers) })
	t.Run("SubscribeTwiceDeliversOnce", func(t *testing.T) { testSubscribeTwice(t, newBrokers) })
	t.Run("Unsubscribe", func(t *testing.T) { testUnsubscribe(t, newBrokers) })
	t.Run("PublishWithoutHistory", func(t *testing.T) { testNoHistory(t, newBrokers) })
	t.Run("History", func(t *testing.T) { testHistory(t, newBrokers) })
	t.Run("HistoryPositionLost", func(t *testing.T) { testPositionLost(t, newBrokers) })
	t.Run("HistoryTTLNewEpoch", func(t *testing.T) { testHistoryTTL(t, newBrokers) })
	t.Run("HistoryNeedsTTL", func(t *testing.T) { testHistoryNeedsTTL(t, newBrokers) })
	t.Run("DataAndNames", func(t *testing.T) { testDataAndNames(t, newBrokers) })
	t.Run("Close", func(t *testing.T) { testClose(t, newBrokers) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, newBrokers) })
}

type node struct {
	realtime.Broker
	rec *Recorder
}

// start starts the brokers, each with its own recorder, and closes them when
// the test ends. nodes[0] and nodes[len-1] are the "two nodes" of the
// cross-node checks.
func start(t *testing.T, newBrokers func(t *testing.T) []realtime.Broker) []node {
	t.Helper()
	bs := newBrokers(t)
	if len(bs) == 0 {
		t.Fatal("newBrokers returned no broker")
	}
	nodes := make([]node, len(bs))
	for i, b := range bs {
		rec := NewRecorder()
		if err := b.Start(ctxT(t), rec.Deliver); err != nil {
			t.Fatalf("Start: %v", err)
		}
		t.Cleanup(func() { _ = b.Close() })
		nodes[i] = node{b, rec}
	}
	return nodes
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

var hist = realtime.PublishOptions{HistorySize: 100, HistoryTTL: time.Minute}

func subscribe(t *testing.T, b realtime.Broker, chs ...string) {
	t.Helper()
	if err := b.Subscribe(ctxT(t), chs...); err != nil {
		t.Fatalf("Subscribe %v: %v", chs, err)
	}
}

func publish(t *testing.T, b realtime.Broker, ch string, data string, opts realtime.PublishOptions) realtime.StreamPosition {
	t.Helper()
	pos, err := b.Publish(ctxT(t), ch, []byte(data), opts)
	if err != nil {
		t.Fatalf("Publish %q on %q: %v", data, ch, err)
	}
	return pos
}

func testCrossNode(t *testing.T, nb func(t *testing.T) []realtime.Broker) {
	nodes := start(t, nb)
	a, b := nodes[0], nodes[len(nodes)-1]
	for _, n := range nodes {
		subscribe(t, n, "chat")
	}
	pos := publish(t, b, "chat", "hello", hist)
	if pos.Offset != 1 || pos.Epoch == "" {
		t.Fatalf("first publication's position = %+v, want offset 1 and an epoch", pos)
	}
	pos2 := publish(t, a, "chat", "again", hist)
	if pos2.Offset != 2 || pos2.Epoch != pos.Epoch {
		t.Fatalf("second publication's position = %+v, want offset 2 epoch %q", pos2, pos.Epoch)
	}
	for i, n := range nodes {
		got := n.rec.WaitN(t, "chat", 2)
		want := []realtime.Publication{
			{Channel: "chat", Offset: 1, Epoch: pos.Epoch, Data: []byte("hello")},
			{Channel: "chat", Offset: 2, Epoch: pos.Epoch, Data: []byte("again")},
		}
		if !equalPubs(got, want) {
			t.Fatalf("node %d got %v, want %v", i, got, want)
		}
	}
}

func equalPubs(a, b []realtime.Publication) bool {
	return slices.EqualFunc(a, b, func(x, y realtime.Publication) bool {
		return x.Channel == y.Channel && x.Offset == y.Offset && x.Epoch == y.Epoch && bytes.Equal(x.Data, y.Data)
	})
}

func testSubscribeThenPublish(t *testing.T, nb func(t *testing.T) []realtime.Broker) {
	nodes := start(t, nb)
	a, b := nodes[0], nodes[len(nodes)-1]
	// Each publication is made right after Subscribe returned, on the
	// other node: none may be missed.
	const n = 20
	for i := range n {
		ch := fmt.Sprintf("room:%d", i)
		subscribe(t, a, ch)
		opts := hist
		if i%2 == 1 {
			opts = realtime.PublishOptions{}
		}
		publish(t, b, ch, "x", opts)
	}
	for i := range n {
		a.rec.WaitN(t, fmt.Sprintf("room:%d", i), 1)
	}
	// Several channels in one call.
	subscribe(t, a, "multi:1", "multi:2", "multi:3")
	for _, ch := range []string{"multi:1", "multi:2", "multi:3"} {
		publish(t, b, ch, "y", hist)
	}
	for _, ch := range []string{"multi:1", "multi:2", "multi:3"} {
		a.rec.WaitN(t, ch, 1)
	}
}

func testOrder(t *testing.T, nb func(t *testing.T) []realtime.Broker) {
	nodes := start(t, nb)
	for _, n := range nodes {
		subscribe(t, n, "order")
	}
	const publishers, each = 4, 50
	var wg sync.WaitGroup
	errs := make(chan error, publishers)
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := nodes[p%len(nodes)]
			var last uint64
			for i := range each {
				pos, err := b.Publish(context.Background(), "order", fmt.Appendf(nil, "%d:%d", p, i), hist)
				if err != nil {
					errs <- err
					return
				}
				if pos.Offset <= last {
					errs <- fmt.Errorf("publisher %d: offset %d after %d", p, pos.Offset, last)
					return
				}
				last = pos.Offset
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for ni, n := range nodes {
		got := n.rec.WaitN(t, "order", publishers*each)
		next := make([]int, publishers)
		for i, p := range got {
			if p.Offset != uint64(i+1) {
				t.Fatalf("node %d: delivery %d has offset %d, want %d (in offset order, none missing)", ni, i, p.Offset, i+1)
			}
			var pub, seq int
			if _, err := fmt.Sscanf(string(p.Data), "%d:%d", &pub, &seq); err != nil || pub < 0 || pub >= publishers {
				t.Fatalf("node %d: delivery %q: %v", ni, p.Data, err)
			}
			if seq != next[pub] {
				t.Fatalf("node %d: publisher %d's message %d delivered when %d was expected", ni, pub, seq, next[pub])
			}
			next[pub]++
		}
	}
}

func testSubscribeTwice(t *testing.T, nb func(t *testing.T) []realtime.Broker) {
	nodes := start(t, nb)
	a, b := nodes[0], nodes[len(nodes)-1]
	subscribe(t, a, "twice")
	subscribe(t, a, "twice")
	subscribe(t, a, "twice", "twice")
	publish(t, b, "twice", "1", hist)
	publish(t, b, "twice", "2", hist)
	a.rec.WaitN(t, "twice", 2)
	time.Sleep(quiet)
	if got := a.rec.Got("twice"); len(got) != 2 {
		t.Fatalf("subscribed thrice, got %d deliveries of 2 publications: %v", len(got), got)
	}
}

func testUnsubscribe(t *testing.T, nb func(t *testing.T) []realtime.Broker) {
	nodes := start(t, nb)
	a, b := nodes[0], nodes[len(nodes)-1]
	subscribe(t, a, "stay", "leave", "leave2")
	publish(t, b, "leave", "before", hist)
	a.rec.WaitN(t, "leave", 1)
	if err := a.Unsubscribe(ctxT(t), "leave", "leave2", "never-subscribed"); err != nil {
		t.Fatalf("Unsubscribe: %v", err)
	}
	if err := a.Unsubscribe(ctxT(t), "leave"); err != nil {
		t.Fatalf("Unsubscribe again: %v", err)
	}
	publish(t, b, "leave", "after", hist)
	publish(t, b, "leave2", "after", realtime.PublishOptions{})
	publish(t, b, "stay", "marker", hist)
	a.rec.WaitN(t, "stay", 1)
	time.Sleep(quiet)
	if got := a.rec.Got("leave"); len(got) != 1 {
		t.Fatalf("after Unsubscribe the channel still delivered: %v", got)
	}
	if got := a.rec.Got("leave2"); len(got) != 0 {
		t.Fatalf("after Unsubscribe the channel still delivered: %v", got)
	}
	// Subscribing again delivers again.
	subscribe(t, a, "leave")
	publish(t, b, "leave", "back", hist)
	got := a.rec.WaitN(t, "leave", 2)
	if string(got[1].Data) != "back" || got[1].Offset != 3 {
		t.Fatalf("after subscribing again got %v, want \"back\" at offset 3", got[1])
	}
}

func testNoHistory(t *testing.T, nb func(t *testing.T) []realtime.Broker) {
	nodes := start(t, nb)
	a, b := nodes[0], nodes[len(nodes)-1]
	subscribe(t, a, "live")
	pos := publish(t, b, "live", "one", realtime.PublishOptions{})
	if pos != (realtime.StreamPosition{}) {
		t.Fatalf("publish without history returned %+v, want the zero position", pos)
	}
	got := a.rec.WaitN(t, "live", 1)
	if got[0].Offset != 0 || got[0].Epoch != "" || string(got[0].Data) != "one" {
		t.Fatalf("publication without history delivered as %+v, want offset 0, no epoch", got[0])
	}
	res, err := b.History(ctxT(t), "live", realtime.StreamPosition{}, 10)
	if err != nil || len(res.Publications) != 0 || res.Position != (realtime.StreamPosition{}) {
		t.Fatalf("History of a channel without history = %+v, %v; want nothing, zero position", res, err)
	}
	// Mixed: a live-only publication does not move the history's position.
	p1 := publish(t, b, "live", "kept", hist)
	publish(t, b, "live", "not kept", realtime.PublishOptions{})
	p2 := publish(t, b, "live", "kept too", hist)
	if p1.Offset != 1 || p2.Offset != 2 || p1.Epoch != p2.Epoch {
		t.Fatalf("positions %+v then %+v, want offsets 1 and 2 in one epoch", p1, p2)
	}
	got = a.rec.WaitN(t, "live", 4)
	if got[2].Offset != 0 || string(got[2].Data) != "not kept" {
		t.Fatalf("live-only publication delivered as %+v", got[2])
	}
	res, err = b.History(ctxT(t), "live", realtime.StreamPosition{}, 10)
	if err != nil || len(res.Publications) != 2 || res.Position != p2 {
		t.Fatalf("History = %+v, %v; want the 2 kept publications at %+v", res, err, p2)
	}
}

func testHistory(t *testing.T, nb func(t *testing.T) []realtime.Broker) {
	nodes := start(t, nb)
	a, b := nodes[0], nodes[len(nodes)-1]
	ctx := ctxT(t)
	// Nothing published yet.
	res, err := a.History(ctx, "h", realtime.StreamPosition{}, 10)
	if err != nil || len(res.Publications) != 0 || res.Position != (realtime.StreamPosition{}) {
		t.Fatalf("History of an unknown channel = %+v, %v; want nothing at the zero position", res, err)
	}
	opts := realtime.PublishOptions{HistorySize: 5, HistoryTTL: time.Minute}
	var last realtime.StreamPosition
	for i := 1; i <= 10; i++ {
		last = publish(t, b, "h", fmt.Sprint(i), opts)
	}
	if last.Offset != 10 {
		t.Fatalf("10th publication at offset %d", last.Offset)
	}
	want := func(res realtime.HistoryResult, offsets ...uint64) {
		t.Helper()
		if res.Position != last {
			t.Fatalf("History position = %+v, want %+v", res.Position, last)
		}
		got := make([]uint64, len(res.Publications))
		for i, p := range res.Publications {
			got[i] = p.Offset
			if p.Channel != "h" || p.Epoch != last.Epoch || string(p.Data) != fmt.Sprint(p.Offset) {
				t.Fatalf("History publication %+v, want channel h, epoch %q, data %q", p, last.Epoch, fmt.Sprint(p.Offset))
			}
		}
		if !slices.Equal(got, offsets) {
			t.Fatalf("History offsets %v, want %v", got, offsets)
		}
	}
	res, err = a.History(ctx, "h", realtime.StreamPosition{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	want(res, 6, 7, 8, 9, 10) // only HistorySize kept, oldest first
	res, err = a.History(ctx, "h", realtime.StreamPosition{}, 2)
	if err != nil {
		t.Fatal(err)
	}
	want(res, 6, 7)
	res, err = a.History(ctx, "h", realtime.StreamPosition{Offset: 7, Epoch: last.Epoch}, 2)
	if err != nil {
		t.Fatal(err)
	}
	want(res, 8, 9)
	res, err = a.History(ctx, "h", realtime.StreamPosition{Offset: 5, Epoch: last.Epoch}, 100)
	if err != nil {
		t.Fatalf("History from the offset just before the oldest kept: %v", err)
	}
	want(res, 6, 7, 8, 9, 10)
	res, err = a.History(ctx, "h", last, 10)
	if err != nil {
		t.Fatal(err)
	}
	want(res)
	for _, limit := range []int{0, -1} {
		res, err = a.History(ctx, "h", realtime.StreamPosition{Offset: 7, Epoch: last.Epoch}, limit)
		if err != nil {
			t.Fatal(err)
		}
		want(res)
	}
}

func testPositionLost(t *testing.T, nb func(t *testing.T) []realtime.Broker) {
	nodes := start(t, nb)
	a, b := nodes[0], nodes[len(nodes)-1]
	ctx := ctxT(t)
	opts := realtime.PublishOptions{HistorySize: 3, HistoryTTL: time.Minute}
	var last realtime.StreamPosition
	for i := 1; i <= 6; i++ {
		last = publish(t, b, "lost", fmt.Sprint(i), opts)
	}
	lost := func(since realtime.StreamPosition, limit int, why string) {
		t.Helper()
		res, err := a.History(ctx, "lost", since, limit)
		if !errors.Is(err, realtime.ErrPositionLost) {
			t.Fatalf("History from %+v (%s) = %+v, %v; want ErrPositionLost", since, why, res, err)
		}
	}
	lost(realtime.StreamPosition{Offset: 2, Epoch: last.Epoch}, 10, "offset 3 was trimmed")
	lost(realtime.StreamPosition{Offset: 2, Epoch: last.Epoch}, 0, "offset 3 was trimmed, limit 0")
	lost(realtime.StreamPosition{Offset: 5, Epoch: last.Epoch + "x"}, 10, "another epoch")
	lost(realtime.StreamPosition{Offset: 5}, 10, "no epoch with an offset")
	lost(realtime.StreamPosition{Offset: 7, Epoch: last.Epoch}, 10, "an offset not reached yet")
	lost(realtime.StreamPosition{Offset: 1, Epoch: "e"}, 10, "a channel that has no history")
	if _, err := a.History(ctx, "lost", realtime.StreamPosition{Offset: 3, Epoch: last.Epoch}, 10); err != nil {
		t.Fatalf("History from the offset just before the oldest kept: %v", err)
	}
	if _, err := a.History(ctx, "nothing-here", realtime.StreamPosition{Offset: 1, Epoch: last.Epoch}, 10); !errors.Is(err, realtime.ErrPositionLost) {
		t.Fatalf("History of an empty channel from a position: %v, want ErrPositionLost", err)
	}
}

func testHistoryTTL(t *testing.T, nb func(t *testing.T) []realtime.Broker) {
	nodes := start(t, nb)
	a, b := nodes[0], nodes[len(nodes)-1]
	opts := realtime.PublishOptions{HistorySize: 10, HistoryTTL: 300 * time.Millisecond}
	first := publish(t, b, "ttl", "1", opts)
	publish(t, b, "ttl", "2", opts)
	// Wait (bounded) until the history expired.
	deadline := time.Now().Add(wait)
	for {
		res, err := a.History(ctxT(t), "ttl", realtime.StreamPosition{}, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Publications) == 0 && res.Position.Offset == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("history still %+v %v after HistoryTTL %v", res.Position, len(res.Publications), wait)
		}
		time.Sleep(50 * time.Millisecond)
	}
	next := publish(t, b, "ttl", "3", opts)
	if next.Offset != 1 || next.Epoch == "" || next.Epoch == first.Epoch {
		t.Fatalf("after expiry the next publication is at %+v, want offset 1 in an epoch other than %q", next, first.Epoch)
	}
	if _, err := a.History(ctxT(t), "ttl", realtime.StreamPosition{Offset: 2, Epoch: first.Epoch}, 10); !errors.Is(err, realtime.ErrPositionLost) {
		t.Fatalf("History from the expired epoch: %v, want ErrPositionLost", err)
	}
	res, err := a.History(ctxT(t), "ttl", realtime.StreamPosition{}, 10)
	if err != nil || len(res.Publications) != 1 || string(res.Publications[0].Data) != "3" || res.Position != next {
		t.Fatalf("History after expiry = %+v, %v; want just \"3\" at %+v", res, err, next)
	}
}

func testHistoryNeedsTTL(t *testing.T, nb func(t *testing.T) []realtime.Broker) {
	nodes := start(t, nb)
	if _, err := nodes[0].Publish(ctxT(t), "nottl", []byte("x"), realtime.PublishOptions{HistorySize: 10}); err == nil {
		t.Fatal("Publish with HistorySize and no HistoryTTL succeeded, want an error")
	}
}

func testDataAndNames(t *testing.T, nb func(t *testing.T) []realtime.Broker) {
	nodes := start(t, nb)
	a, b := nodes[0], nodes[len(nodes)-1]
	names := []string{"a:b:c", "{brace}", "}{", "한국어 채널", "sp ace", "x", ":0:e:3:"}
	subscribe(t, a, names...)
	datas := [][]byte{{}, {0, 1, 2, 0xff, ':'}, bytes.Repeat([]byte("z"), 64<<10), []byte("12:ab:3:xyz")}
	for _, ch := range names {
		for _, d := range datas {
			if _, err := b.Publish(ctxT(t), ch, d, hist); err != nil {
				t.Fatalf("Publish on %q: %v", ch, err)
			}
		}
	}
	for _, ch := range names {
		got := a.rec.WaitN(t, ch, len(datas))
		res, err := b.History(ctxT(t), ch, realtime.StreamPosition{}, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Publications) != len(datas) {
			t.Fatalf("History of %q has %d publications, want %d", ch, len(res.Publications), len(datas))
		}
		for i, d := range datas {
			if got[i].Channel != ch || !bytes.Equal(got[i].Data, d) {
				t.Fatalf("delivered on %q: %q (%d bytes) on %q, want %d bytes", ch, trunc(got[i].Data), len(got[i].Data), got[i].Channel, len(d))
			}
			if h := res.Publications[i]; h.Channel != ch || !bytes.Equal(h.Data, d) || h.Offset != got[i].Offset {
				t.Fatalf("History of %q: %q (%d bytes) at %d, want %d bytes at %d", ch, trunc(h.Data), len(h.Data), h.Offset, len(d), got[i].Offset)
			}
		}
	}
}

func trunc(b []byte) []byte {
	if len(b) > 20 {
		return b[:20]
	}
	return b
}

func testClose(t *testing.T, nb func(t *testing.T) []realtime.Broker) {
	nodes := start(t, nb)
	a, b := nodes[0], nodes[len(nodes)-1]
	subscribe(t, a, "closing")
	if len(nodes) > 1 {
		subscribe(t, b, "closing")
	}
	publish(t, b, "closing", "before", hist)
	a.rec.WaitN(t, "closing", 1)
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	a.rec.Stop()
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if len(nodes) > 1 {
		// The other node still works, and the closed one gets nothing.
		publish(t, b, "closing", "after", hist)
		b.rec.WaitN(t, "closing", 2)
		time.Sleep(quiet)
		if n := a.rec.Late(); n != 0 {
			t.Fatalf("%d deliveries after Close", n)
		}
	}
	if _, err := a.Publish(ctxT(t), "closing", []byte("x"), hist); !errors.Is(err, realtime.ErrClosed) {
		t.Fatalf("Publish after Close: %v, want ErrClosed", err)
	}
	if err := a.Subscribe(ctxT(t), "other"); !errors.Is(err, realtime.ErrClosed) {
		t.Fatalf("Subscribe after Close: %v, want ErrClosed", err)
	}
	if _, err := a.History(ctxT(t), "closing", realtime.StreamPosition{}, 10); !errors.Is(err, realtime.ErrClosed) {
		t.Fatalf("History after Close: %v, want ErrClosed", err)
	}
}

func testConcurrent(t *testing.T, nb func(t *testing.T) []realtime.Broker) {
	nodes := start(t, nb)
	const workers, rounds = 6, 30
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			n := nodes[w%len(nodes)]
			for i := range rounds {
				ch := fmt.Sprintf("c:%d", (w+i)%4)
				var err error
				switch i % 4 {
				case 0:
					err = n.Subscribe(ctx, ch, "c:shared")
				case 1:
					_, err = n.Publish(ctx, ch, []byte("x"), hist)
				case 2:
					_, err = n.History(ctx, ch, realtime.StreamPosition{}, 5)
				case 3:
					err = n.Unsubscribe(ctx, ch)
				}
				if err != nil {
					errs <- fmt.Errorf("worker %d op %d: %w", w, i%4, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Every node is subscribed to c:shared: it must still deliver, in order.
	for _, n := range nodes {
		subscribe(t, n, "c:shared")
	}
	for i := range 10 {
		publish(t, nodes[i%len(nodes)], "c:shared", fmt.Sprint(i), hist)
	}
	for ni, n := range nodes {
		got := n.rec.WaitN(t, "c:shared", 10)
		for i := 1; i < len(got); i++ {
			if got[i].Offset != got[i-1].Offset+1 {
				t.Fatalf("node %d: offsets %d then %d", ni, got[i-1].Offset, got[i].Offset)
			}
		}
	}
}
