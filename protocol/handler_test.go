package protocol

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestChainOrder(t *testing.T) {
	var trail []string
	mw := func(name string) Middleware {
		return func(next Handler) Handler {
			return HandlerFunc(func(ctx context.Context, req *Request) (*Response, error) {
				trail = append(trail, name+">")
				resp, err := next.Serve(ctx, req)
				trail = append(trail, "<"+name)
				return resp, err
			})
		}
	}
	h := Chain(HandlerFunc(func(context.Context, *Request) (*Response, error) {
		trail = append(trail, "h")
		return nil, nil
	}), mw("a"), mw("b"))
	if _, err := h.Serve(context.Background(), &Request{}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(trail, " "); got != "a> b> h <b <a" {
		t.Fatalf("order %q", got)
	}
}

func TestMux(t *testing.T) {
	m := NewMux()
	var perCommand int
	count := func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, r *Request) (*Response, error) { perCommand++; return next.Serve(ctx, r) })
	}
	m.HandleFunc("a", func(context.Context, *Request) (*Response, error) {
		return &Response{Payload: []byte(`"A"`)}, nil
	}, count)
	resp := Dispatch(context.Background(), m, &Request{Command: "a", Seq: 4, RequestID: "r"}, nil)
	if resp.Code != CodeOK || string(resp.Payload) != `"A"` || resp.Seq != 4 || resp.RequestID != "r" || perCommand != 1 {
		t.Fatalf("resp %+v, middleware ran %d times", resp, perCommand)
	}
	resp = Dispatch(context.Background(), m, &Request{Command: "nope"}, nil)
	if resp.Code != CodeUnknownCommand {
		t.Fatalf("unknown command: %+v", resp)
	}
	for _, bad := range []string{"", "a", strings.Repeat("c", MaxCommandLen+1)} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Handle(%q) did not panic", bad)
				}
			}()
			m.HandleFunc(bad, func(context.Context, *Request) (*Response, error) { return nil, nil })
		}()
	}
	if got := m.Commands(); len(got) != 1 || got[0] != "a" {
		t.Fatalf("Commands() = %v", got)
	}
}

func TestTyped(t *testing.T) {
	type in struct {
		N int `json:"n"`
	}
	type out struct {
		Double int `json:"double"`
	}
	h := Typed(func(_ context.Context, _ *Request, v in) (out, error) {
		if v.N < 0 {
			return out{}, &Error{Code: CodeGameBase + 1, Message: "negative"}
		}
		return out{Double: 2 * v.N}, nil
	})
	ctx := context.Background()
	cases := []struct {
		payload  string
		code     Code
		wantBody string
	}{
		{`{"n":21}`, CodeOK, `{"double":42}`},
		{``, CodeOK, `{"double":0}`},
		{`{"n":"x"}`, CodeBadRequest, ``},
		{`{"n":-1}`, CodeGameBase + 1, ``},
	}
	for _, tc := range cases {
		resp := Dispatch(ctx, h, &Request{Command: "double", Payload: []byte(tc.payload)}, nil)
		if resp.Code != tc.code || string(resp.Payload) != tc.wantBody {
			t.Errorf("payload %q: %+v", tc.payload, resp)
		}
	}
}

func TestDispatchHidesInternals(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctx := context.Background()

	failing := HandlerFunc(func(context.Context, *Request) (*Response, error) {
		return nil, errors.New("dial tcp 10.0.0.7:3306: secret-host refused")
	})
	resp := Dispatch(ctx, failing, &Request{Command: "x"}, log)
	if resp.Code != CodeInternal || strings.Contains(resp.Message, "secret-host") {
		t.Fatalf("internal error leaked: %+v", resp)
	}
	if !strings.Contains(logs.String(), "secret-host") {
		t.Fatal("internal error not logged")
	}

	logs.Reset()
	panicking := HandlerFunc(func(context.Context, *Request) (*Response, error) { panic("nil map write in secret code") })
	resp = Dispatch(ctx, panicking, &Request{Command: "x", Seq: 9}, log)
	if resp.Code != CodeInternal || resp.Seq != 9 || strings.Contains(resp.Message, "secret") {
		t.Fatalf("panic response: %+v", resp)
	}
	if !strings.Contains(logs.String(), "nil map write") || !strings.Contains(logs.String(), "goroutine") {
		t.Fatalf("panic not logged with stack: %s", logs.String())
	}

	// A typed error's message and retry hint reach the client.
	busy := HandlerFunc(func(context.Context, *Request) (*Response, error) {
		return nil, &Error{Code: CodeInFlight, Message: "still running", RetryAfter: 300_000_000}
	})
	resp = Dispatch(ctx, busy, &Request{}, nil)
	if resp.Code != CodeInFlight || resp.Message != "still running" || resp.RetryAfterMs != 300 {
		t.Fatalf("typed error: %+v", resp)
	}

	// A deadline maps to CodeTimeout.
	slow := HandlerFunc(func(ctx context.Context, _ *Request) (*Response, error) { return nil, context.DeadlineExceeded })
	if resp = Dispatch(ctx, slow, &Request{}, nil); resp.Code != CodeTimeout {
		t.Fatalf("deadline: %+v", resp)
	}
}

func TestDispatchCopiesSharedResponse(t *testing.T) {
	shared := &Response{Payload: []byte(`1`)}
	h := HandlerFunc(func(context.Context, *Request) (*Response, error) { return shared, nil })
	a := Dispatch(context.Background(), h, &Request{Seq: 1}, nil)
	b := Dispatch(context.Background(), h, &Request{Seq: 2}, nil)
	if a.Seq != 1 || b.Seq != 2 || shared.Seq != 0 {
		t.Fatalf("shared response stamped: a=%d b=%d shared=%d", a.Seq, b.Seq, shared.Seq)
	}
}
