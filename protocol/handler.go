package protocol

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
)

// Handler runs one command. It returns a Response (nil means an empty CodeOK
// response) or an error, which the transport maps to a result code with
// CodeOf; only an *Error's Message reaches the client. The same Handler serves
// every transport (HTTP now, websocket commands in realtime).
type Handler interface {
	Serve(ctx context.Context, req *Request) (*Response, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, req *Request) (*Response, error)

// Serve calls f.
func (f HandlerFunc) Serve(ctx context.Context, req *Request) (*Response, error) {
	return f(ctx, req)
}

// Middleware wraps a Handler: authentication, anti-cheat, idempotency, logging.
type Middleware func(next Handler) Handler

// Chain returns h wrapped in mw, the first middleware outermost: a request
// passes mw[0], then mw[1], ..., then h.
func Chain(h Handler, mw ...Middleware) Handler {
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	return h
}

// Mux routes requests to handlers by command name. Register everything before
// serving; Handle and Use are safe to call concurrently with Serve, but a
// command registered late may miss requests already routed.
type Mux struct {
	mu       sync.RWMutex
	handlers map[string]Handler
}

// NewMux returns an empty Mux.
func NewMux() *Mux { return &Mux{handlers: make(map[string]Handler)} }

// Handle registers h for cmd, wrapped in the command's own middleware mw
// (outermost first). It panics on an empty or duplicate command, as
// http.ServeMux does: both are programming errors found at start-up.
func (m *Mux) Handle(cmd string, h Handler, mw ...Middleware) {
	if cmd == "" || len(cmd) > MaxCommandLen {
		panic(fmt.Sprintf("protocol: invalid command name %q", cmd))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, dup := m.handlers[cmd]; dup {
		panic(fmt.Sprintf("protocol: command %q registered twice", cmd))
	}
	m.handlers[cmd] = Chain(h, mw...)
}

// HandleFunc registers a function for cmd.
func (m *Mux) HandleFunc(cmd string, f func(ctx context.Context, req *Request) (*Response, error), mw ...Middleware) {
	m.Handle(cmd, HandlerFunc(f), mw...)
}

// Commands returns the registered command names, unordered.
func (m *Mux) Commands() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]string, 0, len(m.handlers))
	for c := range m.handlers {
		out = append(out, c)
	}
	return out
}

// Serve implements Handler: it runs the handler registered for req.Command,
// or answers CodeUnknownCommand.
func (m *Mux) Serve(ctx context.Context, req *Request) (*Response, error) {
	m.mu.RLock()
	h := m.handlers[req.Command]
	m.mu.RUnlock()
	if h == nil {
		return nil, &Error{Code: CodeUnknownCommand, Message: "unknown command"}
	}
	return h.Serve(ctx, req)
}

// Typed adapts a function with typed input and output to a Handler: the
// payload is decoded into In (an absent payload leaves In zero; a malformed
// one is CodeBadRequest) and Out is marshalled into the response payload.
func Typed[In, Out any](fn func(ctx context.Context, req *Request, in In) (Out, error)) Handler {
	return HandlerFunc(func(ctx context.Context, req *Request) (*Response, error) {
		var in In
		if len(req.Payload) > 0 {
			if err := json.Unmarshal(req.Payload, &in); err != nil {
				return nil, &Error{Code: CodeBadRequest, Message: "invalid payload: " + err.Error()}
			}
		}
		out, err := fn(ctx, req, in)
		if err != nil {
			return nil, err
		}
		payload, err := json.Marshal(out)
		if err != nil {
			return nil, fmt.Errorf("protocol: marshal %s result: %w", req.Command, err)
		}
		return &Response{Payload: payload}, nil
	})
}

// Dispatch runs h for req the way every transport must: it recovers a panic
// into a CodeInternal response (logged with its stack), turns an error into a
// response with its code and public message (internal errors are logged, never
// sent), and stamps Seq and RequestID from req on a copy of the handler's
// response (a handler may return a shared value). The caller stamps
// ServerTime when it encodes. It never returns nil.
func Dispatch(ctx context.Context, h Handler, req *Request, log *slog.Logger) *Response {
	out := serveRecovered(ctx, h, req, log)
	out.Seq, out.RequestID = req.Seq, req.RequestID
	return &out
}

func serveRecovered(ctx context.Context, h Handler, req *Request, log *slog.Logger) (out Response) {
	defer func() {
		if p := recover(); p != nil {
			if log != nil {
				log.ErrorContext(ctx, "protocol: handler panicked", "cmd", req.Command, "panic", p, "stack", string(debug.Stack()))
			}
			out = Response{Code: CodeInternal, Message: CodeInternal.String()}
		}
	}()
	resp, err := h.Serve(ctx, req)
	if err != nil {
		code, msg, retry := publicError(err)
		if log != nil && (code == CodeInternal || code == CodeUnavailable || code == CodeTimeout) {
			log.ErrorContext(ctx, "protocol: command failed", "cmd", req.Command, "code", code.String(), "err", err)
		}
		return Response{Code: code, Message: msg, RetryAfterMs: retry.Milliseconds()}
	}
	if resp == nil {
		return Response{}
	}
	return *resp
}
