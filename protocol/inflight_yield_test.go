package protocol

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// A request waiting for something else in WaitOutsideTurn holds no turn:
// another request is served meanwhile; when the wait ends the request
// takes a turn again ahead of the requests that queued after it.
func TestWaitOutsideTurnLetsTheTurnGo(t *testing.T) {
	l := NewInFlightLimit(InFlightConfig{Max: 1, Wait: time.Minute})
	var mu sync.Mutex
	var order []string
	note := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }

	waiting, endWait, finishA := make(chan struct{}), make(chan struct{}), make(chan struct{})
	h := l.Middleware()(HandlerFunc(func(ctx context.Context, req *Request) (*Response, error) {
		err := WaitOutsideTurn(ctx, func(context.Context) error {
			close(waiting)
			<-endWait
			return nil
		})
		if err != nil {
			return nil, err
		}
		note("A resumed")
		<-finishA
		return &Response{}, nil
	}))
	doneA := make(chan error, 1)
	go func() { _, err := h.Serve(context.Background(), &Request{Command: "a"}); doneA <- err }()
	<-waiting
	if st := l.Stats(); st.InFlight != 0 || st.Yielded != 1 {
		t.Fatalf("while A waits outside: %+v, want no turn held, 1 yielded", st)
	}
	// B takes the turn A let go, at once (with a deadline: a limit that
	// kept A's turn would queue B until it ends).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	releaseB, err := l.Acquire(ctx)
	if err != nil {
		t.Fatalf("B while A waits outside its turn: %v", err)
	}
	note("B")
	// C queues behind B.
	doneC := make(chan error, 1)
	go func() {
		r, err := l.Acquire(context.Background())
		if err == nil {
			note("C")
			r()
		}
		doneC <- err
	}()
	waitFor(t, "C to queue", func() bool { return l.Stats().Queued == 1 })
	// A's wait ends: it queues for a turn again, ahead of C.
	close(endWait)
	waitFor(t, "A to queue again", func() bool { return l.Stats().Queued == 2 })
	releaseB()
	waitFor(t, "A to resume", func() bool { mu.Lock(); defer mu.Unlock(); return len(order) == 2 })
	close(finishA)
	if err := <-doneA; err != nil {
		t.Fatal(err)
	}
	if err := <-doneC; err != nil {
		t.Fatal(err)
	}
	if want := "B,A resumed,C"; strings.Join(order, ",") != want {
		t.Fatalf("order %q, want %q", strings.Join(order, ","), want)
	}
	if st := l.Stats(); st.InFlight != 0 || st.Admitted != 3 || st.Queued != 0 || st.Peak != 1 {
		t.Fatalf("stats = %+v", st)
	}
}

// When the wait fails, its error comes back and the request holds no turn
// for the rest of its way: its end frees nothing more.
func TestWaitOutsideTurnFailedWaitHoldsNothing(t *testing.T) {
	l := NewInFlightLimit(InFlightConfig{Max: 1, Wait: -1})
	errNoSlot := errors.New("no slot")
	h := l.Middleware()(HandlerFunc(func(ctx context.Context, req *Request) (*Response, error) {
		return nil, WaitOutsideTurn(ctx, func(context.Context) error { return errNoSlot })
	}))
	if _, err := h.Serve(context.Background(), &Request{}); !errors.Is(err, errNoSlot) {
		t.Fatalf("err = %v, want the wait's", err)
	}
	if st := l.Stats(); st.InFlight != 0 {
		t.Fatalf("stats = %+v", st)
	}
	// Exactly one turn is free: the request's end did not free a second.
	r, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer r()
	if _, err := l.Acquire(context.Background()); !errors.Is(err, ErrServerBusy) {
		t.Fatalf("second acquire = %v, want busy (one turn only)", err)
	}
	// Without a turn in the context (no limit on the way) it only waits.
	ran := false
	if err := WaitOutsideTurn(context.Background(), func(context.Context) error { ran = true; return nil }); err != nil || !ran {
		t.Fatalf("without a turn: %v, ran %v", err, ran)
	}
}

// The HTTP handler's turn (HTTPConfig.InFlight) is the one the chain lets
// go: during the wait the limit serves nobody.
func TestWaitOutsideTurnOverHTTP(t *testing.T) {
	l := NewInFlightLimit(InFlightConfig{Max: 1})
	var during InFlightStats
	h, err := NewHTTPHandler(HandlerFunc(func(ctx context.Context, req *Request) (*Response, error) {
		if err := WaitOutsideTurn(ctx, func(context.Context) error { during = l.Stats(); return nil }); err != nil {
			return nil, err
		}
		return &Response{}, nil
	}), HTTPConfig{AllowPlainJSON: true, InFlight: l})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Post(srv.URL, ContentTypeJSON, strings.NewReader(`{"cmd":"x","seq":1}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"seq":1`) || !strings.Contains(string(body), `"code":0`) {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if during.InFlight != 0 || during.Yielded != 1 {
		t.Fatalf("stats during the wait = %+v, want no turn held", during)
	}
	if st := l.Stats(); st.InFlight != 0 || st.Admitted != 1 {
		t.Fatalf("stats after = %+v", st)
	}
}
