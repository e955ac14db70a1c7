package realtimetest

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/madang-io/madang/realtime"
)

// Op names the Broker operations FakeBroker can make fail.
type Op uint8

// Operations, combinable with |.
const (
	OpPublish Op = 1 << iota
	OpSubscribe
	OpUnsubscribe
	OpHistory
	OpAll = OpPublish | OpSubscribe | OpUnsubscribe | OpHistory
)

// FakeBroker wraps a real Broker for tests of code built on brokers (a
// hub, a game's rooms): it records every publication made through it and
// every live delivery, and it can make operations fail with
// realtime.ErrUnavailable and drop live deliveries, so the code's gap
// recovery through History can be tested. Without injected faults it
// behaves exactly as the broker it wraps. Safe for concurrent use.
type FakeBroker struct {
	inner realtime.Broker

	mu        sync.Mutex
	published []realtime.Publication
	delivered []realtime.Publication
	down      Op                              // operations failing until Heal
	failNext  map[Op]int                      // operation -> how many next calls fail
	dropNext  int                             // live deliveries still to drop
	dropIf    func(realtime.Publication) bool // drops deliveries it returns true for
	dropped   []realtime.Publication
}

var _ realtime.Broker = (*FakeBroker)(nil)

// NewFakeBroker wraps inner.
func NewFakeBroker(inner realtime.Broker) *FakeBroker {
	return &FakeBroker{inner: inner, failNext: map[Op]int{}}
}

// SetDown makes the operations in ops fail with ErrUnavailable (without
// reaching the wrapped broker) until Heal.
func (f *FakeBroker) SetDown(ops Op) {
	f.mu.Lock()
	f.down |= ops
	f.mu.Unlock()
}

// Heal ends SetDown and FailNext failures.
func (f *FakeBroker) Heal() {
	f.mu.Lock()
	f.down = 0
	clear(f.failNext)
	f.mu.Unlock()
}

// FailNext makes the next n calls of each operation in ops fail with
// ErrUnavailable.
func (f *FakeBroker) FailNext(ops Op, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for op := OpPublish; op <= OpHistory; op <<= 1 {
		if ops&op != 0 {
			f.failNext[op] = n
		}
	}
}

// DropNext drops the next n live deliveries (of any channel): the
// publications stay in the history, as when a node is cut from the backend.
func (f *FakeBroker) DropNext(n int) {
	f.mu.Lock()
	f.dropNext = n
	f.mu.Unlock()
}

// DropIf drops the live deliveries fn returns true for, until DropIf(nil).
func (f *FakeBroker) DropIf(fn func(realtime.Publication) bool) {
	f.mu.Lock()
	f.dropIf = fn
	f.mu.Unlock()
}

// Published returns the publications made through the broker, with the
// offset and epoch Publish returned, in the order the calls returned.
func (f *FakeBroker) Published() []realtime.Publication {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.published)
}

// Delivered returns the live deliveries passed on to the deliver func.
func (f *FakeBroker) Delivered() []realtime.Publication {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.delivered)
}

// Dropped returns the live deliveries dropped by DropNext or DropIf.
func (f *FakeBroker) Dropped() []realtime.Publication {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.dropped)
}

// fail reports whether op must fail now, counting a FailNext failure.
func (f *FakeBroker) fail(op Op) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down&op != 0 {
		return fmt.Errorf("%w: fake broker: injected failure", realtime.ErrUnavailable)
	}
	if f.failNext[op] > 0 {
		f.failNext[op]--
		return fmt.Errorf("%w: fake broker: injected failure", realtime.ErrUnavailable)
	}
	return nil
}

// Start implements realtime.Broker.
func (f *FakeBroker) Start(ctx context.Context, deliver func(realtime.Publication)) error {
	return f.inner.Start(ctx, func(p realtime.Publication) {
		f.mu.Lock()
		drop := f.dropNext > 0 || (f.dropIf != nil && f.dropIf(p))
		if f.dropNext > 0 {
			f.dropNext--
		}
		if drop {
			f.dropped = append(f.dropped, p)
		} else {
			f.delivered = append(f.delivered, p)
		}
		f.mu.Unlock()
		if !drop {
			deliver(p)
		}
	})
}

// Subscribe implements realtime.Broker.
func (f *FakeBroker) Subscribe(ctx context.Context, channels ...string) error {
	if err := f.fail(OpSubscribe); err != nil {
		return err
	}
	return f.inner.Subscribe(ctx, channels...)
}

// Unsubscribe implements realtime.Broker.
func (f *FakeBroker) Unsubscribe(ctx context.Context, channels ...string) error {
	if err := f.fail(OpUnsubscribe); err != nil {
		return err
	}
	return f.inner.Unsubscribe(ctx, channels...)
}

// Publish implements realtime.Broker.
func (f *FakeBroker) Publish(ctx context.Context, channel string, data []byte, opts realtime.PublishOptions) (realtime.StreamPosition, error) {
	if err := f.fail(OpPublish); err != nil {
		return realtime.StreamPosition{}, err
	}
	pos, err := f.inner.Publish(ctx, channel, data, opts)
	if err == nil {
		f.mu.Lock()
		f.published = append(f.published, realtime.Publication{Channel: channel, Offset: pos.Offset, Epoch: pos.Epoch, Data: slices.Clone(data)})
		f.mu.Unlock()
	}
	return pos, err
}

// History implements realtime.Broker.
func (f *FakeBroker) History(ctx context.Context, channel string, since realtime.StreamPosition, limit int) (realtime.HistoryResult, error) {
	if err := f.fail(OpHistory); err != nil {
		return realtime.HistoryResult{}, err
	}
	return f.inner.History(ctx, channel, since, limit)
}

// Close implements realtime.Broker: it closes the wrapped broker.
func (f *FakeBroker) Close() error { return f.inner.Close() }
