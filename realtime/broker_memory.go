package realtime

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/madang-io/madang/internal/clock"
)

// Defaults for MemoryBrokerConfig.
const (
	DefaultBrokerQueueLen      = 4096
	DefaultBrokerMaxHistory    = 10000
	DefaultBrokerSweepInterval = time.Minute
)

// MemoryBrokerConfig configures a MemoryBroker. The zero value works.
type MemoryBrokerConfig struct {
	// QueueLen is how many publications may wait, per node, for that node's
	// delivery goroutine. When a subscribed node's queue is full, Publish
	// waits for room (backpressure on the publishers, nothing is dropped);
	// if its ctx ends first it returns the ctx error and nothing was
	// published (neither kept nor delivered). Default 4096.
	QueueLen int
	// MaxHistorySize caps PublishOptions.HistorySize: a larger value keeps
	// this many. Default 10000.
	MaxHistorySize int
	// SweepInterval is how often one goroutine frees the history of
	// channels whose HistoryTTL passed (expiry itself is checked on every
	// access, so this only bounds memory). Default 1 minute.
	SweepInterval time.Duration
	// Now returns the current time; nil means time.Now. It decides history
	// expiry.
	Now func() time.Time
}

// MemoryBroker is a Broker in one process: the real single-node backend.
// Peer returns more nodes sharing the same channels and history, so tests
// (and one-process setups) can run several hubs that see each other's
// publications.
//
// Each node has one delivery goroutine fed by a bounded queue
// (MemoryBrokerConfig.QueueLen); publications are queued in offset order
// under one publish lock, so every node receives a channel's publications in
// order. History is a ring per channel; expired channels start a new epoch
// on their next publication, and one sweeper goroutine per backend (stopped
// when its last node closes) frees expired rings.
type MemoryBroker struct {
	be     *memBackend
	closed atomic.Bool

	slots chan struct{}    // one token per free queue place
	q     chan Publication // never blocks: a slot is held for each entry

	subMu sync.RWMutex
	subs  map[string]struct{}

	startOnce sync.Once
	closeOnce sync.Once
	started   bool
	stop      chan struct{} // closed by Close
	done      chan struct{} // closed when the delivery goroutine ends
	wg        sync.WaitGroup
}

type memBackend struct {
	cfg MemoryBrokerConfig
	now func() time.Time

	pubMu sync.Mutex // serializes publications: queue order = offset order

	mu       sync.Mutex
	channels map[string]*memChannel
	nodes    []*MemoryBroker // open nodes
	stop     chan struct{}   // closed when the last node closes
	swept    sync.WaitGroup  // the sweeper
}

type memChannel struct {
	epoch   string
	offset  uint64        // the latest publication's offset
	ring    []Publication // len = capacity of the ring
	start   int           // index of the oldest kept
	n       int           // how many kept
	expires time.Time
}

var _ Broker = (*MemoryBroker)(nil)

// NewMemoryBroker returns a MemoryBroker and starts its sweeper; Close stops
// it.
func NewMemoryBroker(cfg MemoryBrokerConfig) *MemoryBroker {
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = DefaultBrokerQueueLen
	}
	if cfg.MaxHistorySize <= 0 {
		cfg.MaxHistorySize = DefaultBrokerMaxHistory
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = DefaultBrokerSweepInterval
	}
	be := &memBackend{cfg: cfg, now: clock.OrNow(cfg.Now), channels: make(map[string]*memChannel), stop: make(chan struct{})}
	b := be.newNode()
	be.swept.Add(1)
	go be.sweep()
	return b
}

// Peer returns another node of the same in-process backend: it shares the
// channels and their history with b but has its own subscriptions, queue
// and delivery goroutine. Start and Close it like any Broker. The backend
// lives until its last node is closed; Peer of a backend whose nodes are
// all closed returns a closed node.
func (b *MemoryBroker) Peer() *MemoryBroker { return b.be.newNode() }

func (be *memBackend) newNode() *MemoryBroker {
	n := &MemoryBroker{
		be:    be,
		slots: make(chan struct{}, be.cfg.QueueLen),
		q:     make(chan Publication, be.cfg.QueueLen),
		subs:  make(map[string]struct{}),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	for range be.cfg.QueueLen {
		n.slots <- struct{}{}
	}
	be.mu.Lock()
	select {
	case <-be.stop:
		n.closed.Store(true)
		n.subs = nil
		n.closeOnce.Do(func() { close(n.stop) })
	default:
		be.nodes = append(be.nodes, n)
	}
	be.mu.Unlock()
	return n
}

// Start implements Broker.
func (b *MemoryBroker) Start(ctx context.Context, deliver func(Publication)) error {
	if deliver == nil {
		return errors.New("realtime: MemoryBroker.Start: nil deliver")
	}
	err := errors.New("realtime: MemoryBroker already started")
	b.startOnce.Do(func() {
		err = nil
		b.subMu.Lock()
		b.started = true
		b.subMu.Unlock()
		b.wg.Add(1)
		go b.run(ctx, deliver)
	})
	return err
}

func (b *MemoryBroker) run(ctx context.Context, deliver func(Publication)) {
	defer b.wg.Done()
	defer func() {
		b.subMu.Lock()
		b.started = false
		b.subMu.Unlock()
		close(b.done)
	}()
	for {
		select {
		case p := <-b.q:
			b.slots <- struct{}{}
			deliver(p)
		case <-b.stop:
			return
		case <-ctx.Done():
			return
		}
	}
}

func (be *memBackend) sweep() {
	defer be.swept.Done()
	t := time.NewTicker(be.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			now := be.now()
			be.mu.Lock()
			for name, ch := range be.channels {
				if !now.Before(ch.expires) {
					delete(be.channels, name)
				}
			}
			be.mu.Unlock()
		case <-be.stop:
			return
		}
	}
}

// Subscribe implements Broker.
func (b *MemoryBroker) Subscribe(ctx context.Context, channels ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.subMu.Lock()
	defer b.subMu.Unlock()
	if b.subs == nil {
		return ErrClosed
	}
	for _, c := range channels {
		b.subs[c] = struct{}{}
	}
	return nil
}

// Unsubscribe implements Broker.
func (b *MemoryBroker) Unsubscribe(ctx context.Context, channels ...string) error {
	b.subMu.Lock()
	defer b.subMu.Unlock()
	for _, c := range channels {
		delete(b.subs, c)
	}
	return nil
}

func (b *MemoryBroker) subscribed(channel string) bool {
	b.subMu.RLock()
	_, ok := b.subs[channel]
	started := b.started
	b.subMu.RUnlock()
	return ok && started
}

// Publish implements Broker. It waits for room in the queue of every node
// subscribed to the channel (see MemoryBrokerConfig.QueueLen).
func (b *MemoryBroker) Publish(ctx context.Context, channel string, data []byte, opts PublishOptions) (StreamPosition, error) {
	if opts.HistorySize < 0 || (opts.HistorySize > 0 && opts.HistoryTTL <= 0) {
		return StreamPosition{}, fmt.Errorf("realtime: publish %q: HistorySize %d needs HistoryTTL > 0", channel, opts.HistorySize)
	}
	if b.closed.Load() {
		return StreamPosition{}, ErrClosed
	}
	be := b.be
	be.pubMu.Lock()
	defer be.pubMu.Unlock()

	be.mu.Lock()
	var small [4]*MemoryBroker
	targets := small[:0]
	for _, n := range be.nodes {
		if n.subscribed(channel) {
			targets = append(targets, n)
		}
	}
	be.mu.Unlock()

	// Reserve a queue place on every target first, so the publication is
	// either committed and queued everywhere or not at all.
	for i, n := range targets {
		select {
		case <-n.slots:
		case <-n.done:
			targets[i] = nil
		case <-ctx.Done():
			for _, m := range targets[:i] {
				if m != nil {
					m.slots <- struct{}{}
				}
			}
			return StreamPosition{}, fmt.Errorf("realtime: publish %q: queue full: %w", channel, ctx.Err())
		}
	}

	p := Publication{Channel: channel, Data: append([]byte(nil), data...)}
	var pos StreamPosition
	if opts.HistorySize > 0 {
		size := min(opts.HistorySize, be.cfg.MaxHistorySize)
		now := be.now()
		be.mu.Lock()
		ch := be.channels[channel]
		if ch == nil || !now.Before(ch.expires) {
			ch = &memChannel{epoch: newEpoch()}
			be.channels[channel] = ch
		}
		ch.offset++
		p.Offset, p.Epoch = ch.offset, ch.epoch
		ch.push(p, size)
		ch.expires = now.Add(opts.HistoryTTL)
		pos = StreamPosition{Offset: ch.offset, Epoch: ch.epoch}
		be.mu.Unlock()
	}
	for _, n := range targets {
		if n != nil {
			n.q <- p
		}
	}
	return pos, nil
}

// push appends p to the ring, resizing it to size first if needed.
func (ch *memChannel) push(p Publication, size int) {
	if len(ch.ring) != size {
		ring := make([]Publication, size)
		keep := min(ch.n, size)
		for i := range keep {
			ring[i] = ch.ring[(ch.start+ch.n-keep+i)%len(ch.ring)]
		}
		ch.ring, ch.start, ch.n = ring, 0, keep
	}
	if ch.n < len(ch.ring) {
		ch.ring[(ch.start+ch.n)%len(ch.ring)] = p
		ch.n++
		return
	}
	ch.ring[ch.start] = p
	ch.start = (ch.start + 1) % len(ch.ring)
}

// History implements Broker.
func (b *MemoryBroker) History(ctx context.Context, channel string, since StreamPosition, limit int) (HistoryResult, error) {
	if err := ctx.Err(); err != nil {
		return HistoryResult{}, err
	}
	if b.closed.Load() {
		return HistoryResult{}, ErrClosed
	}
	be := b.be
	now := be.now()
	be.mu.Lock()
	defer be.mu.Unlock()
	ch := be.channels[channel]
	if ch != nil && !now.Before(ch.expires) {
		delete(be.channels, channel)
		ch = nil
	}
	if ch == nil {
		if since.Offset > 0 {
			return HistoryResult{}, fmt.Errorf("%w: channel %q has no history (epoch %q gone)", ErrPositionLost, channel, since.Epoch)
		}
		return HistoryResult{}, nil
	}
	res := HistoryResult{Position: StreamPosition{Offset: ch.offset, Epoch: ch.epoch}}
	first := ch.offset - uint64(ch.n) + 1 // offset of the oldest kept
	from := first
	if since.Offset > 0 {
		switch {
		case since.Epoch != ch.epoch:
			return HistoryResult{}, fmt.Errorf("%w: channel %q epoch %q, current %q", ErrPositionLost, channel, since.Epoch, ch.epoch)
		case since.Offset > ch.offset:
			return HistoryResult{}, fmt.Errorf("%w: channel %q offset %d is ahead of %d", ErrPositionLost, channel, since.Offset, ch.offset)
		case since.Offset+1 < first:
			return HistoryResult{}, fmt.Errorf("%w: channel %q keeps offsets from %d, asked after %d", ErrPositionLost, channel, first, since.Offset)
		}
		from = since.Offset + 1
	}
	if limit <= 0 || from > ch.offset {
		return res, nil
	}
	count := min(int(ch.offset-from+1), limit)
	res.Publications = make([]Publication, count)
	skip := int(from - first)
	for i := range count {
		res.Publications[i] = ch.ring[(ch.start+skip+i)%len(ch.ring)]
	}
	return res, nil
}

// Close implements Broker: it stops this node's delivery and waits for it;
// this node's Publish, Subscribe and History then fail with ErrClosed. The
// other nodes of the backend go on; closing the last one stops the sweeper
// and drops the history.
func (b *MemoryBroker) Close() error {
	b.closeOnce.Do(func() {
		b.closed.Store(true)
		close(b.stop)
		b.subMu.Lock()
		b.subs = nil
		b.subMu.Unlock()
		be := b.be
		be.mu.Lock()
		for i, n := range be.nodes {
			if n == b {
				be.nodes = append(be.nodes[:i], be.nodes[i+1:]...)
				break
			}
		}
		last := len(be.nodes) == 0
		if last {
			select {
			case <-be.stop:
			default:
				close(be.stop)
				clear(be.channels)
			}
		}
		be.mu.Unlock()
		if last {
			be.swept.Wait()
		}
	})
	b.wg.Wait()
	return nil
}

func newEpoch() string {
	return strconv.FormatUint(rand.Uint64(), 36)
}
