package realtime_test

import (
	"bytes"
	"context"
	"encoding/json"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/realtime"
	"github.com/madang-io/madang/session/sessiontest"
)

// The websocket side of issue 15's amplification attack: frames of about
// 16 KB (under the 64 KiB read limit) whose LZ4 block expands to 4 MiB, one
// on each of many connections at once.
const (
	wsAttackConns = 128
	wsAttackBody  = 4 << 20
)

func wsAttackEnvelope(cmd string) []byte {
	head := []byte(`{"cmd":"` + cmd + `","seq":1,"payload":"`)
	body := make([]byte, 0, wsAttackBody)
	body = append(body, head...)
	body = append(body, bytes.Repeat([]byte{'A'}, wsAttackBody-len(head)-2)...)
	return append(body, '"', '}')
}

func liveHeap() int64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}

// holdHandler blocks "hold" until release, counting arrivals and the
// payload bytes the blocked handlers hold; "ping" answers at once.
type holdHandler struct {
	arrived chan struct{}
	release chan struct{}
	held    atomic.Int64
	maxHeld atomic.Int64
}

func newHoldHandler() *holdHandler {
	return &holdHandler{arrived: make(chan struct{}, wsAttackConns), release: make(chan struct{})}
}

func (h *holdHandler) Serve(_ context.Context, req *protocol.Request) (*protocol.Response, error) {
	if req.Command != "hold" {
		return &protocol.Response{Payload: json.RawMessage(`"pong"`)}, nil
	}
	n := h.held.Add(int64(len(req.Payload)))
	for {
		p := h.maxHeld.Load()
		if n <= p || h.maxHeld.CompareAndSwap(p, n) {
			break
		}
	}
	h.arrived <- struct{}{}
	<-h.release
	h.held.Add(-int64(len(req.Payload)))
	return &protocol.Response{}, nil
}

// wsAttack sends frames[i] on conns[i] at once, waits until each frame
// reached "hold" or was answered (the most the hub holds), runs during,
// releases the handlers and returns the answers' codes and how many
// arrived.
func wsAttack(t *testing.T, h *holdHandler, conns []*realtime.Client, frames [][]byte, during func()) (map[protocol.Code]int, int) {
	t.Helper()
	// Generous: without a bound, decoding 128 bodies of 4 MiB at once
	// takes tens of seconds on a loaded machine.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	replies := make(chan *protocol.Response, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			if err := c.SendRaw(ctx, frames[i]); err != nil {
				t.Error(err)
				replies <- &protocol.Response{Code: protocol.CodeInternal}
				return
			}
			r, err := c.Unmatched(ctx) // the frames carry seq 1, which no Call waits for
			if err != nil {
				t.Error(err)
				r = &protocol.Response{Code: protocol.CodeInternal}
			}
			replies <- r
		})
	}
	codes := map[protocol.Code]int{}
	count := func(r *protocol.Response) {
		codes[r.Code]++
		if r.Code == protocol.CodeRateLimited && r.RetryAfterMs <= 0 {
			t.Errorf("rate_limited without a retry hint: %+v", r)
		}
	}
	arrived := 0
	for answered := 0; arrived+answered < len(conns); {
		select {
		case <-h.arrived:
			arrived++
		case r := <-replies:
			count(r)
			answered++
		case <-ctx.Done():
			t.Fatalf("attack stalled: %d arrived, answers %v", arrived, codes)
		}
	}
	during()
	close(h.release)
	wg.Wait()
	close(replies)
	for r := range replies {
		count(r)
	}
	return codes, arrived
}

// TestHubUnauthenticatedAmplificationBounded: 128 plain connections each
// send a 16 KB frame that expands to 4 MiB. The hub refuses them before
// decompressing (a plain or XOR body is limited to 64 KiB), keeps serving
// another player, and the connections do not keep large buffers.
func TestHubUnauthenticatedAmplificationBounded(t *testing.T) {
	store := sessiontest.NewStore(t, nil)
	h := newHoldHandler()
	n := startHub(t, store, realtime.Config{Handler: h, CommandTimeout: 1 << 40})
	codec, err := protocol.NewCodec(protocol.Config{Role: protocol.RoleClient})
	if err != nil {
		t.Fatal(err)
	}
	frame, err := codec.Encode(wsAttackEnvelope("hold"), protocol.EncodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	frame = bytes.Clone(frame)
	if len(frame) > 20<<10 {
		t.Fatalf("attack frame is %d bytes", len(frame))
	}
	conns := make([]*realtime.Client, wsAttackConns)
	frames := make([][]byte, wsAttackConns)
	for i := range conns {
		conns[i] = dial(t, n, sessiontest.Login(t, store, int64(1000+i)), nil)
		frames[i] = frame
	}
	player := dial(t, n, sessiontest.Login(t, store, 1), nil)

	base := liveHeap()
	var during int64
	var pong *protocol.Response
	codes, arrived := wsAttack(t, h, conns, frames, func() {
		during = liveHeap() - base
		pong, err = player.Call(ctxT(t), "ping", nil)
	})
	after := liveHeap() - base // every connection still open
	t.Logf("answers %v, %d dispatched, payload held at most %d MiB; live heap +%d MiB at the peak, +%d MiB after",
		codes, arrived, h.maxHeld.Load()>>20, during>>20, after>>20)

	const bound = 32 << 20 // about what the clients sent, plus the connections
	if arrived != 0 || codes[protocol.CodeTooLarge] != wsAttackConns {
		t.Errorf("answers %v, %d dispatched: want every frame refused too_large", codes, arrived)
	}
	if during > bound || after > bound {
		t.Errorf("live heap grew by %d MiB under the attack and %d MiB after, bound %d MiB", during>>20, after>>20, bound>>20)
	}
	if err != nil || pong.Code != protocol.CodeOK {
		t.Errorf("a player's ping during the attack: %+v %v", pong, err)
	}
}

// TestHubAuthenticatedAmplificationWithinBudget: the attack on
// authenticated connections (whose frames may declare 4 MiB). The hub and
// an HTTP handler would share one DecodeBudget; it bounds what the frames
// hold at once, the others are answered rate_limited with a retry hint
// (their connections stay open), a player is served meanwhile, and no
// connection keeps a 4 MiB buffer afterwards.
func TestHubAuthenticatedAmplificationWithinBudget(t *testing.T) {
	store := sessiontest.NewStore(t, nil)
	h := newHoldHandler()
	budget := protocol.NewDecodeBudget(protocol.DecodeBudgetConfig{})
	n := startHub(t, store, realtime.Config{Handler: h, CommandTimeout: 1 << 40, DecodeBudget: budget})
	codec, err := protocol.NewCodec(protocol.Config{Role: protocol.RoleClient})
	if err != nil {
		t.Fatal(err)
	}
	body := wsAttackEnvelope("hold")
	buf := make([]byte, 0, wsAttackBody+1024)
	conns := make([]*realtime.Client, wsAttackConns)
	frames := make([][]byte, wsAttackConns)
	for i := range conns {
		sess := sessiontest.Login(t, store, int64(1000+i))
		keys, err := sess.Keys()
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = dial(t, n, sess, &realtime.DialOptions{Mode: protocol.ModeAuthenticated, Keys: keys, Counter: sess.Counter})
		frame, err := codec.AppendEncode(buf, body, protocol.EncodeOptions{Mode: protocol.ModeAuthenticated, Keys: keys, Counter: sess.Counter + 1})
		if err != nil {
			t.Fatal(err)
		}
		frames[i] = bytes.Clone(frame)
	}
	player := dial(t, n, sessiontest.Login(t, store, 1), nil)

	base := liveHeap()
	var during int64
	var stats protocol.DecodeBudgetStats
	var pong *protocol.Response
	codes, arrived := wsAttack(t, h, conns, frames, func() {
		stats = budget.Stats()
		during = liveHeap() - base
		pong, err = player.Call(ctxT(t), "ping", nil)
	})
	after := liveHeap() - base
	t.Logf("answers %v, %d dispatched; budget %+v; live heap +%d MiB at the peak, +%d MiB after",
		codes, arrived, stats, during>>20, after>>20)

	if stats.Peak > stats.Bytes || h.maxHeld.Load() > stats.Bytes {
		t.Errorf("held %d MiB of payload, budget peak %d of %d", h.maxHeld.Load()>>20, stats.Peak>>20, stats.Bytes>>20)
	}
	if arrived == 0 || arrived > int(stats.Bytes/wsAttackBody) || codes[protocol.CodeOK] != arrived || codes[protocol.CodeRateLimited] != wsAttackConns-arrived {
		t.Errorf("answers %v, %d dispatched: want at most %d dispatched, the rest rate_limited", codes, arrived, stats.Bytes/wsAttackBody)
	}
	// The bound: the budget's bytes of bodies, the payloads copied from
	// them (as much again), and what the clients sent.
	if bound := 2*stats.Bytes + 16<<20 + wsAttackConns*64<<10; during > bound {
		t.Errorf("live heap grew by %d MiB under the attack, bound %d MiB", during>>20, bound>>20)
	}
	if bound := int64(32 << 20); after > bound {
		t.Errorf("live heap %d MiB above the start with the attack over (connections keep their buffers), bound %d MiB", after>>20, bound>>20)
	}
	if err != nil || pong.Code != protocol.CodeOK {
		t.Errorf("a player's ping during the attack: %+v %v", pong, err)
	}
	if s := budget.Stats(); s.InUse != 0 {
		t.Errorf("budget holds %d bytes after the attack", s.InUse)
	}
}
