package realtime

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestFrameWriterSizes sends messages of every size around the small write
// buffer's edges (and larger ones) through websocket.Accept with
// hijackBuffers, as serve does, and checks that the client reads each one
// whole and in order, with pings answered between them.
func TestFrameWriterSizes(t *testing.T) {
	var sizes []int
	for n := range 3*connWriteBuffer + 20 {
		sizes = append(sizes, n)
	}
	sizes = append(sizes, 1000, 4095, 4096, 4097, 65535, 65536, 200_000)
	done := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := &conn{}
		ws, err := websocket.Accept(hijackBuffers{w, w.(http.Hijacker), c}, r, nil)
		if err != nil {
			done <- err
			return
		}
		if c.fw == nil {
			done <- errFW
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		ws.CloseRead(ctx)
		for i, n := range sizes {
			if err := ws.Write(ctx, websocket.MessageBinary, payload(i, n)); err != nil {
				done <- err
				return
			}
			if err := c.fw.flush(); err != nil {
				done <- err
				return
			}
			if i%50 == 0 {
				if err := ws.Ping(ctx); err != nil {
					done <- err
					return
				}
			}
		}
		done <- ws.Close(websocket.StatusNormalClosure, strings.Repeat("r", 120))
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	ws.SetReadLimit(1 << 20)
	for i, n := range sizes {
		_, got, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("message %d (%d bytes): %v", i, n, err)
		}
		if !bytes.Equal(got, payload(i, n)) {
			t.Fatalf("message %d: got %d bytes, want %d (or other bytes)", i, len(got), n)
		}
	}
	_, _, err = ws.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Fatalf("after the messages: %v, want a normal closure", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

var errFW = errors.New("hijackBuffers set no frameWriter")

func payload(i, n int) []byte {
	p := make([]byte, n)
	for j := range p {
		p[j] = byte(i + j)
	}
	return p
}

// TestFrameWriterHolds checks frameWriter's rule on a recording conn: a
// full buffer is held and written before (with) the next write; flush
// sends one that nothing followed.
func TestFrameWriterHolds(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	got := make(chan []byte, 1)
	go func() {
		var all []byte
		buf := make([]byte, 1024)
		for {
			n, err := b.Read(buf)
			all = append(all, buf[:n]...)
			if err != nil {
				got <- all
				return
			}
		}
	}()
	w := &frameWriter{nc: a}
	full := bytes.Repeat([]byte("a"), connWriteBuffer)
	if n, err := w.Write(full); n != len(full) || err != nil || w.n != len(full) {
		t.Fatalf("full buffer: %d, %v, held %d", n, err, w.n)
	}
	if n, err := w.Write([]byte("bb")); n != 2 || err != nil || w.n != 0 {
		t.Fatalf("after a held buffer: %d, %v, held %d", n, err, w.n)
	}
	if _, err := w.Write(full); err != nil {
		t.Fatal(err)
	}
	if err := w.flush(); err != nil || w.n != 0 {
		t.Fatalf("flush: %v, held %d", err, w.n)
	}
	if err := w.flush(); err != nil {
		t.Fatal(err)
	}
	a.Close()
	want := string(full) + "bb" + string(full)
	if s := string(<-got); s != want {
		t.Fatalf("the conn got %d bytes %.20q…, want %d", len(s), s, len(want))
	}
}

// TestTryWriteInterleaved writes websocket frames past the library
// (tryWrite of wsFrame, as sendInline does) between the library's own
// messages and pings, while the client does not read at first, so the
// socket fills: frames the socket refuses are written through the library
// instead (as the writer goroutine does with a queued frame), and a frame
// the socket took in part leaves its rest pending, which must go out
// before anything else. The client must read every message whole and in
// order.
func TestTryWriteInterleaved(t *testing.T) {
	// 12 sizes around the header's length forms (a multiple of 3), then
	// 20 MiB: more than loopback's socket buffers take.
	sizes := []int{0, 1, 124, 125, 126, 127, 128, 200, 1000, 65535, 65536, 70000}
	for i := range 300 {
		if i%3 == 2 {
			sizes = append(sizes, 300) // the library's messages (i%3 == 2) stay small
		} else {
			sizes = append(sizes, 100_000)
		}
	}
	sizes = append(sizes, 3, 300, 70000)
	start := make(chan struct{}) // the client starts reading
	type result struct {
		inline, partial, refused int
		err                      error
	}
	done := make(chan result, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := &conn{}
		ws, err := websocket.Accept(hijackBuffers{w, w.(http.Hijacker), c}, r, nil)
		if err != nil {
			done <- result{err: err}
			return
		}
		if c.fw == nil || c.fw.rc == nil {
			done <- result{err: errors.New("no frameWriter with a raw conn")}
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		ws.CloseRead(ctx)
		var res result
		filled := start // closed once, then nil: this handler's own copy (the test reads start)
		for i, n := range sizes {
			p := payload(i, n)
			if res.partial+res.refused > 0 && filled != nil {
				close(filled) // the socket filled
				filled = nil
			}
			if i%3 == 2 { // the library's own message
				if err := ws.Write(ctx, websocket.MessageBinary, p); err != nil {
					done <- result{err: err}
					return
				}
				continue
			}
			buf := append(make([]byte, wsMaxHeader, wsMaxHeader+n), p...)
			ok, rest := c.fw.tryWrite(wsFrame(buf))
			switch {
			case !ok:
				res.refused++
				if filled != nil {
					close(filled)
					filled = nil
				}
				if err := ws.Write(ctx, websocket.MessageBinary, p); err != nil {
					done <- result{err: err}
					return
				}
			case rest:
				res.partial++
			default:
				res.inline++
			}
			if i%7 == 0 {
				go ws.Ping(ctx) // a control frame from another goroutine
			}
		}
		if err := c.fw.flush(); err != nil {
			done <- result{err: err}
			return
		}
		res.err = ws.Close(websocket.StatusNormalClosure, "")
		done <- res
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	ws.SetReadLimit(1 << 20)
	select {
	case <-start:
	case <-time.After(10 * time.Second): // the socket never filled: fails below
	}
	for i, n := range sizes {
		_, got, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("message %d (%d bytes): %v", i, n, err)
		}
		if !bytes.Equal(got, payload(i, n)) {
			t.Fatalf("message %d: got %d bytes, want %d (or other bytes)", i, len(got), n)
		}
	}
	_, _, err = ws.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Fatalf("after the messages: %v, want a normal closure", err)
	}
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	t.Logf("whole %d, in part %d, refused %d", res.inline, res.partial, res.refused)
	if res.inline == 0 || res.partial+res.refused == 0 {
		t.Fatalf("whole %d, in part %d, refused %d: the socket never filled", res.inline, res.partial, res.refused)
	}
}

// TestWsFrameHeader checks the three length forms of wsFrame's header.
func TestWsFrameHeader(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want []byte
	}{
		{0, []byte{0x82, 0}},
		{125, []byte{0x82, 125}},
		{126, []byte{0x82, 126, 0, 126}},
		{65535, []byte{0x82, 126, 0xff, 0xff}},
		{65536, []byte{0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
	} {
		f := wsFrame(make([]byte, wsMaxHeader+tc.n))
		if len(f) != len(tc.want)+tc.n || !bytes.Equal(f[:len(tc.want)], tc.want) {
			t.Errorf("%d bytes: header % x, frame %d bytes; want % x", tc.n, f[:min(len(f), 10)], len(f), tc.want)
		}
	}
}
