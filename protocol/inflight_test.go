package protocol

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestInFlightLimitQueuesInArrivalOrder(t *testing.T) {
	l := NewInFlightLimit(InFlightConfig{Max: 1, Wait: time.Minute})
	first, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			release, err := l.Acquire(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			release()
		}()
		// The next one arrives only once this one queues.
		waitFor(t, "a waiter to queue", func() bool { return l.Stats().Waited == uint64(i+1) })
	}
	if st := l.Stats(); st.InFlight != 1 || st.Admitted != 1 {
		t.Fatalf("stats while queued = %+v", st)
	}
	first()
	first() // a second release does nothing
	wg.Wait()
	if want := []int{0, 1, 2, 3}; !slices.Equal(order, want) {
		t.Fatalf("served in order %v, want %v", order, want)
	}
	if st := l.Stats(); st.InFlight != 0 || st.Admitted != 5 || st.Refused != 0 || st.Peak != 1 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestInFlightLimitRefusesAfterTheWaitWithoutLeaking(t *testing.T) {
	l := NewInFlightLimit(InFlightConfig{Max: 2, Wait: 20 * time.Millisecond})
	var held []func()
	for range 2 {
		r, err := l.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, r)
	}
	before := runtime.NumGoroutine()
	const n = 200
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := l.Acquire(context.Background())
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, ErrServerBusy) || CodeOf(err) != CodeUnavailable || !CodeOf(err).Retryable() {
			t.Fatalf("refusal = %v (code %v), want ErrServerBusy, unavailable", err, CodeOf(err))
		}
		var pe *Error
		if !errors.As(err, &pe) || pe.RetryAfter < time.Second || pe.RetryAfter >= 2*time.Second {
			t.Fatalf("retry hint of %v", err)
		}
	}
	if st := l.Stats(); st.Refused != n || st.Waited != n || st.InFlight != 2 {
		t.Fatalf("stats = %+v", st)
	}
	// Nothing the refused waiters started is left behind.
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
	// A refusal takes no turn: the two held ones free exactly two.
	for _, r := range held {
		r()
	}
	for range 2 {
		if _, err := l.Acquire(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Acquire(context.Background()); !errors.Is(err, ErrServerBusy) {
		t.Fatalf("third acquire = %v, want busy", err)
	}

	// No wait: refused at once.
	l = NewInFlightLimit(InFlightConfig{Max: 1, Wait: -1})
	if _, err := l.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Acquire(context.Background()); !errors.Is(err, ErrServerBusy) {
		t.Fatalf("no-wait acquire = %v", err)
	}
}

func TestInFlightLimitCallerGivesUp(t *testing.T) {
	l := NewInFlightLimit(InFlightConfig{Max: 1, Wait: time.Minute})
	release, _ := l.Acquire(context.Background())
	defer release()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { _, err := l.Acquire(ctx); done <- err }()
	waitFor(t, "the waiter to queue", func() bool { return l.Stats().Waited == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if st := l.Stats(); st.Refused != 0 || st.Queued != 0 {
		t.Fatalf("a caller that gave up counted as refused or still queued: %+v", st)
	}
	// The turn goes to the next comer, not to the one that left.
	release()
	r2, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r2()
	if st := l.Stats(); st.InFlight != 0 || st.Admitted != 2 {
		t.Fatalf("stats = %+v", st)
	}
}

// TestInFlightLimitRefusesAtOnceWhenTheQueueIsTooLong: once a turn's hold
// time is known, a request whose expected wait (place × hold / Max) is
// longer than Wait is refused without queueing, with a retry hint of at
// least that wait; one whose expected wait fits queues and is served.
func TestInFlightLimitRefusesAtOnceWhenTheQueueIsTooLong(t *testing.T) {
	const hold = 300 * time.Millisecond
	l := NewInFlightLimit(InFlightConfig{Max: 1, Wait: time.Minute})
	r, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(hold)
	r()
	if st := l.Stats(); st.Hold < hold {
		t.Fatalf("hold = %v, want at least %v", st.Hold, hold)
	}
	if c := l.Config(); c.MaxWait != 3*time.Minute {
		t.Fatalf("MaxWait = %v, want 3 × Wait", c.MaxWait)
	}

	// Within the wait: queued, then served.
	held, _ := l.Acquire(context.Background())
	done := make(chan error)
	go func() {
		r, err := l.Acquire(context.Background())
		if err == nil {
			r()
		}
		done <- err
	}()
	waitFor(t, "the waiter to queue", func() bool { return l.Stats().Queued == 1 })
	held()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// Past the wait: refused at once, nothing queued.
	l = NewInFlightLimit(InFlightConfig{Max: 1, Wait: hold / 10})
	r, _ = l.Acquire(context.Background())
	time.Sleep(hold)
	r()
	held, _ = l.Acquire(context.Background())
	defer held()
	_, err = l.Acquire(context.Background())
	var pe *Error
	if !errors.Is(err, ErrServerBusy) || !errors.As(err, &pe) || pe.RetryAfter < time.Second {
		t.Fatalf("acquire past the wait = %v, want ErrServerBusy with a hint of at least 1 s", err)
	}
	if st := l.Stats(); st.Refused != 1 || st.Waited != 1 || st.Queued != 0 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestInFlightLimitDefaultsAndNoLimit(t *testing.T) {
	if c := NewInFlightLimit(InFlightConfig{}).Config(); c.Max != DefaultMaxInFlight || c.Wait != DefaultInFlightWait || c.MaxWait != 3*DefaultInFlightWait {
		t.Fatalf("defaults = %+v", c)
	}
	l := NewInFlightLimit(InFlightConfig{Max: -1})
	for range 1000 {
		if _, err := l.Acquire(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if st := l.Stats(); st.InFlight != 1000 || st.Waited != 0 {
		t.Fatalf("stats = %+v", st)
	}
}

// TestHTTPInFlight: past the limit a request queues and is served, or is
// refused before dispatch with 503 unavailable and a retry hint.
func TestHTTPInFlight(t *testing.T) {
	gate := make(chan struct{})
	var started sync.WaitGroup
	m := NewMux()
	m.HandleFunc("block", func(context.Context, *Request) (*Response, error) {
		started.Done()
		<-gate
		return &Response{}, nil
	})
	m.HandleFunc("fast", func(context.Context, *Request) (*Response, error) { return &Response{}, nil })
	limit := NewInFlightLimit(InFlightConfig{Max: 1, Wait: 30 * time.Millisecond})
	h, err := NewHTTPHandler(m, HTTPConfig{AllowPlainJSON: true, InFlight: limit})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	post := func(cmd string) (int, Response) {
		res, err := http.Post(srv.URL, ContentTypeJSON, strings.NewReader(`{"cmd":"`+cmd+`","seq":7,"rid":"r1"}`))
		if err != nil {
			t.Error(err)
			return 0, Response{}
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		var out struct {
			Seq   uint64 `json:"seq"`
			Code  Code   `json:"code"`
			Retry int64  `json:"retry_ms"`
		}
		if err := json.Unmarshal(b, &out); err != nil {
			t.Errorf("reply %q: %v", b, err)
		}
		return res.StatusCode, Response{Seq: out.Seq, Code: out.Code, RetryAfterMs: out.Retry}
	}
	started.Add(1)
	blocked := make(chan int)
	go func() { st, _ := post("block"); blocked <- st }()
	started.Wait()

	// Refused after the wait, before dispatch: 503, unavailable, a hint.
	st, resp := post("fast")
	if st != http.StatusServiceUnavailable || resp.Code != CodeUnavailable || resp.RetryAfterMs < 1000 || resp.Seq != 0 {
		t.Fatalf("refusal: status %d, %+v", st, resp)
	}
	if s := limit.Stats(); s.Refused != 1 || s.InFlight != 1 {
		t.Fatalf("stats = %+v", s)
	}

	// With a long wait, the next one queues and is served when the turn
	// frees.
	limit.cfg.Wait = time.Minute
	queued := make(chan int)
	go func() { st, _ := post("fast"); queued <- st }()
	waitFor(t, "the request to queue", func() bool { return limit.Stats().Waited == 2 })
	close(gate)
	if st := <-blocked; st != http.StatusOK {
		t.Fatalf("blocked request: %d", st)
	}
	if st := <-queued; st != http.StatusOK {
		t.Fatalf("queued request: %d", st)
	}
	if s := limit.Stats(); s.InFlight != 0 || s.Admitted != 2 {
		t.Fatalf("stats = %+v", s)
	}
}

// TestInFlightMiddleware: in a chain (the websocket hub's), a refusal is a
// response to the request, with its seq and rid.
func TestInFlightMiddleware(t *testing.T) {
	limit := NewInFlightLimit(InFlightConfig{Max: 1, Wait: -1})
	h := limit.Middleware()(HandlerFunc(func(context.Context, *Request) (*Response, error) { return &Response{}, nil }))
	resp := Dispatch(context.Background(), h, &Request{Command: "x", Seq: 3, RequestID: "r"}, nil)
	if resp.Code != CodeOK || limit.Stats().InFlight != 0 {
		t.Fatalf("admitted: %+v, %+v", resp, limit.Stats())
	}
	release, _ := limit.Acquire(context.Background())
	defer release()
	resp = Dispatch(context.Background(), h, &Request{Command: "x", Seq: 3, RequestID: "r"}, nil)
	if resp.Code != CodeUnavailable || resp.Seq != 3 || resp.RequestID != "r" || resp.RetryAfterMs < 1000 {
		t.Fatalf("refused: %+v", resp)
	}
}

// TestInFlightLimitStressKeepsTheBound: many requests, some giving up while
// queued, never hold more than Max turns at once, none waits next to a free
// turn (it would be refused after MaxWait), and every turn comes back: at
// the end Max requests get a turn at once and the next one queues.
func TestInFlightLimitStressKeepsTheBound(t *testing.T) {
	const max, workers, rounds = 3, 200, 200
	l := NewInFlightLimit(InFlightConfig{Max: max, Wait: time.Hour, MaxWait: 60 * time.Second})
	var held, worst atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				ctx, cancel := context.WithCancel(context.Background())
				if (g+i)%7 == 0 {
					go cancel() // gives up while queued, or not
				}
				release, err := l.Acquire(ctx)
				cancel()
				if errors.Is(err, context.Canceled) {
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				n := held.Add(1)
				for w := worst.Load(); n > w && !worst.CompareAndSwap(w, n); w = worst.Load() {
				}
				if i%3 == 0 {
					runtime.Gosched()
				}
				held.Add(-1)
				release()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("a request got no turn: %v", err)
	}
	if w := worst.Load(); w > max {
		t.Fatalf("%d requests held a turn at once, limit %d", w, max)
	}
	st := l.Stats()
	if st.InFlight != 0 || st.Queued != 0 {
		t.Fatalf("after the storm: %+v", st)
	}
	done, cancel := context.WithCancel(context.Background())
	cancel()
	for i := range max {
		release, err := l.Acquire(done)
		if err != nil {
			t.Fatalf("turn %d of %d after the storm: %v (a turn leaked)", i+1, max, err)
		}
		defer release()
	}
	if _, err := l.Acquire(done); !errors.Is(err, context.Canceled) {
		t.Fatalf("turn %d of %d: %v, want it queued (then canceled)", max+1, max, err)
	}
}

// TestInFlightLimitEachWaiterWaitsItsOwnMaxWait: the queue's one expiry
// timer refuses each queued request once its own MaxWait passed, not with
// the first one's: a request that queued later waits its full MaxWait too,
// and the turn still goes to the next comer afterwards.
func TestInFlightLimitEachWaiterWaitsItsOwnMaxWait(t *testing.T) {
	const maxWait = 400 * time.Millisecond
	l := NewInFlightLimit(InFlightConfig{Max: 1, Wait: time.Minute, MaxWait: maxWait})
	release, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		waited time.Duration
		err    error
	}
	results := make(chan result, 3)
	for i := range 3 {
		go func() {
			start := time.Now()
			_, err := l.Acquire(context.Background())
			results <- result{time.Since(start), err}
		}()
		waitFor(t, "a waiter to queue", func() bool { return l.Stats().Waited == uint64(i+1) })
		time.Sleep(maxWait / 3) // the next one queues later
	}
	for range 3 {
		r := <-results
		if !errors.Is(r.err, ErrServerBusy) {
			t.Fatalf("queued request = %v, want ErrServerBusy after MaxWait", r.err)
		}
		if r.waited < maxWait {
			t.Fatalf("refused after %v, before its MaxWait %v", r.waited, maxWait)
		}
	}
	if st := l.Stats(); st.Refused != 3 || st.Queued != 0 || st.InFlight != 1 {
		t.Fatalf("stats = %+v", st)
	}
	release()
	r2, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatalf("after the expiries: %v", err)
	}
	r2()
}
