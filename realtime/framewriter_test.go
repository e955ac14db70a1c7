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
