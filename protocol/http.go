package protocol

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"time"
)

// HTTP content types and headers of the protocol (docs/PROTOCOL.md).
const (
	// ContentTypeFrame is the content type of binary frames.
	ContentTypeFrame = "application/vnd.madang.frame"
	// ContentTypeJSON is the content type of plain JSON (development mode).
	ContentTypeJSON = "application/json"
	// HeaderIdempotencyKey carries a request id when the envelope has none.
	HeaderIdempotencyKey = "Idempotency-Key"
	// DefaultHTTPPath is where the example servers mount the adapter.
	DefaultHTTPPath = "/v1/rpc"
)

// HTTPConfig configures an HTTPHandler. The zero value serves frames with the
// default Codec, refuses plain JSON and cannot open authenticated frames.
type HTTPConfig struct {
	// Codec must be a RoleServer codec. Default: NewCodec(Config{}). Its
	// limits bound each request: MaxFrameSize the body read, MaxBodySize
	// the decoded body of an authenticated frame,
	// MaxUnauthenticatedBodySize that of a plain or XOR frame.
	Codec *Codec
	// Keys resolves the keys of authenticated frames. Nil: authenticated
	// frames are refused with CodeUnauthorized. If it also implements
	// CounterGuard, each frame's counter is checked here.
	Keys KeyResolver
	// AllowPlainJSON accepts a bare JSON envelope (a body starting with '{')
	// and answers in plain JSON, so curl works. For development only.
	AllowPlainJSON bool
	// RequireAuthenticated refuses plain and XOR frames with CodeUnauthorized.
	RequireAuthenticated bool
	// DecodeBudget bounds the bytes that decoded request bodies hold at
	// once, across all requests (DecodeBudget): a body is charged from
	// before it is allocated until its response is written, and a request
	// that gets no room within the budget's wait is refused with
	// rate_limited (HTTP 429, with a retry hint). Give the same budget to
	// every handler and realtime hub of the process. Default: a budget of
	// the handler's own with the DecodeBudgetConfig defaults (64 MiB).
	DecodeBudget *DecodeBudget
	// InFlight bounds the requests the handler serves at once: a request
	// past its Max queues, in arrival order (after its body was read,
	// before it is decoded), when its expected wait is within the limit's
	// Wait, and is otherwise refused at once before dispatch with
	// unavailable (HTTP 503, ErrServerBusy, with a retry hint of about
	// that wait); a queued request that waits past MaxWait is refused
	// then. So under more clients than the server can serve at once the
	// queue is here, not in the database pools behind the handlers. Give
	// the same limit to the websocket hub's chain
	// (InFlightLimit.Middleware). Default: a limit of the handler's own
	// with the InFlightConfig defaults (64 requests, 5 s expected wait,
	// 15 s at most); an InFlightLimit with a negative Max does not limit.
	InFlight *InFlightLimit
	// HandlerTimeout bounds each request's context. 0: no bound beyond the
	// client's connection.
	HandlerTimeout time.Duration
	// Logger receives handler panics and internal errors. Nil: silent.
	Logger *slog.Logger
	// Now is the server clock. Default time.Now.
	Now func() time.Time
}

// HTTPHandler serves the protocol over HTTP POST: one frame in the request
// body, one frame in the response body. See docs/PROTOCOL.md for statuses.
type HTTPHandler struct {
	h    Handler
	cfg  HTTPConfig
	pool sync.Pool // *[]byte buffers for bodies and frames
}

// maxPooledBuffer keeps rare huge buffers out of the pool.
const maxPooledBuffer = 64 << 10

// NewHTTPHandler returns an http.Handler that decodes each request, runs h
// through Dispatch and encodes the response in the request's mode.
func NewHTTPHandler(h Handler, cfg HTTPConfig) (*HTTPHandler, error) {
	if h == nil {
		return nil, errors.New("protocol: nil handler")
	}
	if cfg.Codec == nil {
		c, err := NewCodec(Config{})
		if err != nil {
			return nil, err
		}
		cfg.Codec = c
	}
	if cfg.Codec.Role() != RoleServer {
		return nil, errors.New("protocol: HTTP handler needs a RoleServer codec")
	}
	if cfg.RequireAuthenticated && cfg.AllowPlainJSON {
		return nil, errors.New("protocol: RequireAuthenticated and AllowPlainJSON contradict each other")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.DecodeBudget == nil {
		cfg.DecodeBudget = NewDecodeBudget(DecodeBudgetConfig{})
	}
	if cfg.InFlight == nil {
		cfg.InFlight = NewInFlightLimit(InFlightConfig{})
	}
	s := &HTTPHandler{h: h, cfg: cfg}
	s.pool.New = func() any { b := make([]byte, 0, 4096); return &b }
	return s, nil
}

func (s *HTTPHandler) getBuf() *[]byte { return s.pool.Get().(*[]byte) }

func (s *HTTPHandler) putBuf(b *[]byte) {
	if cap(*b) <= maxPooledBuffer {
		*b = (*b)[:0]
		s.pool.Put(b)
	}
}

// ServeHTTP implements http.Handler. A panic outside the handler chain (in a
// KeyResolver, say) is recovered like one inside it: logged, answered with
// CodeInternal, and the server keeps serving.
func (s *HTTPHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			if s.cfg.Logger != nil {
				s.cfg.Logger.Error("protocol: request panicked", "panic", p, "stack", string(debug.Stack()))
			}
			s.fail(w, false, &Error{Code: CodeInternal, Message: CodeInternal.String()})
		}
	}()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST a madang frame", http.StatusMethodNotAllowed)
		return
	}
	received := s.cfg.Now()
	limit := s.cfg.Codec.MaxFrameSize()
	if r.ContentLength > int64(limit) {
		s.fail(w, false, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, r.ContentLength, limit))
		return
	}
	inBuf := s.getBuf()
	defer s.putBuf(inBuf)
	in, err := readLimited(r.Body, *inBuf, limit)
	*inBuf = in[:0]
	if err != nil {
		s.fail(w, false, err)
		return
	}
	release, err := s.cfg.InFlight.Acquire(r.Context())
	if err != nil {
		s.fail(w, isPlainJSON(in) && s.cfg.AllowPlainJSON, err)
		return
	}
	// Released once the response is ready, before it is written: a slow
	// reader holds its connection, not a turn.
	defer release()

	req := &Request{ReceivedAt: received, RemoteAddr: r.RemoteAddr}
	plain := isPlainJSON(in)
	var keys *Keys
	if plain {
		if !s.cfg.AllowPlainJSON {
			s.fail(w, false, &Error{Code: CodeBadFrame, Message: "protocol: plain JSON is not accepted; send a frame"})
			return
		}
		req.PlainJSON = true
		err = DecodeRequest(in, req)
	} else {
		var lease DecodeLease
		keys, lease, err = s.decodeFrame(r.Context(), in, req)
		// The decoded body's room in the budget is held until the response
		// is written: req keeps a copy of its payload until then.
		defer lease.Release()
	}
	if err != nil {
		s.fail(w, plain, err)
		return
	}
	if k := r.Header.Get(HeaderIdempotencyKey); k != "" {
		if len(k) > MaxRequestIDLen {
			s.fail(w, plain, fmt.Errorf("%w: %s longer than %d bytes", ErrEnvelope, HeaderIdempotencyKey, MaxRequestIDLen))
			return
		}
		req.IdempotencyKey = k
		if req.RequestID == "" {
			req.RequestID = k
		}
	}

	ctx := r.Context()
	if s.cfg.HandlerTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.HandlerTimeout)
		defer cancel()
	}
	resp := Dispatch(ctx, s.h, req, s.cfg.Logger)
	release()
	resp.ServerTime = s.cfg.Now().UnixMilli()
	if isSessionRefusal(resp.Code) {
		// A session middleware's refusal takes the one form of a refusal
		// before dispatch (docs/PROTOCOL.md §11), which a server can always
		// give: the keys of an ended session may be gone.
		s.write(w, httpStatusFor(resp.Code), req.PlainJSON, ModePlain, nil,
			&Response{Code: resp.Code, Message: resp.Message, ServerTime: resp.ServerTime})
		return
	}
	s.write(w, http.StatusOK, req.PlainJSON, req.Mode, keys, resp)
}

// isSessionRefusal reports whether c refuses the request's credentials
// rather than answering the command: CodeUnauthorized, CodeSessionExpired,
// CodeKicked, CodeSessionRevoked or CodeReplayed. The HTTP adapter answers
// these with HTTP 401 and an unprotected frame without seq or rid, whether
// the adapter refused the frame itself or a middleware of the chain (such
// as the session middleware) did (docs/PROTOCOL.md §11).
func isSessionRefusal(c Code) bool {
	switch c {
	case CodeUnauthorized, CodeSessionExpired, CodeKicked, CodeSessionRevoked, CodeReplayed:
		return true
	}
	return false
}

// decodeFrame opens a frame into req and returns the keys it used and the
// body's lease in the decode budget (held by the caller until the response
// is written; nothing is held on error).
func (s *HTTPHandler) decodeFrame(ctx context.Context, in []byte, req *Request) (*Keys, DecodeLease, error) {
	var lease DecodeLease
	h, err := ParseHeader(in)
	if err != nil {
		return nil, lease, err
	}
	mode := ModeOf(h.Flags)
	if s.cfg.RequireAuthenticated && mode != ModeAuthenticated {
		return nil, lease, &Error{Code: CodeUnauthorized, Message: "protocol: authenticated frames required"}
	}
	var keys *Keys
	if mode == ModeAuthenticated {
		if s.cfg.Keys == nil {
			return nil, lease, ErrNoKeys
		}
		if keys, err = s.cfg.Keys.ResolveKeys(ctx, h.KeyID); err != nil {
			return nil, lease, err
		}
	}
	bodyBuf := s.getBuf()
	defer s.putBuf(bodyBuf)
	body, h, lease, err := s.cfg.Codec.AppendDecodeBudget(ctx, s.cfg.DecodeBudget, *bodyBuf, in, keys)
	*bodyBuf = body[:0]
	if err != nil {
		return nil, lease, err
	}
	if mode == ModeAuthenticated {
		if g, ok := s.cfg.Keys.(CounterGuard); ok {
			if err := g.AcceptCounter(ctx, h.KeyID, h.Counter); err != nil {
				lease.Release()
				return nil, DecodeLease{}, err
			}
		}
		req.KeyID = append([]byte(nil), h.KeyID...)
		req.Counter = h.Counter
	}
	req.Mode = mode
	// DecodeRequest copies what it keeps, so the pooled body can be reused.
	if err := DecodeRequest(body, req); err != nil {
		lease.Release()
		return nil, DecodeLease{}, err
	}
	return keys, lease, nil
}

// fail answers a request that never reached the handler: an unprotected
// server frame (or plain JSON) with the error's code and an HTTP error status.
func (s *HTTPHandler) fail(w http.ResponseWriter, plain bool, err error) {
	code, msg, retry := publicError(err)
	if (code == CodeInternal || code == CodeUnavailable) && !errors.Is(err, ErrServerBusy) {
		if s.cfg.Logger != nil {
			s.cfg.Logger.Error("protocol: request refused", "err", err)
		}
	}
	resp := &Response{Code: code, Message: msg, ServerTime: s.cfg.Now().UnixMilli()}
	if retry > 0 {
		resp.RetryAfterMs = max(retry.Milliseconds(), 1)
	}
	s.write(w, httpStatusFor(code), plain, ModePlain, nil, resp)
}

// httpStatusFor maps a code refused before dispatch to an HTTP status.
func httpStatusFor(c Code) int {
	switch c {
	case CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case CodeUnauthorized, CodeReplayed, CodeSessionExpired, CodeKicked, CodeSessionRevoked:
		return http.StatusUnauthorized
	case CodeBlocked, CodeForbidden, CodeClientTooOld:
		return http.StatusForbidden
	case CodeRateLimited:
		return http.StatusTooManyRequests
	case CodeInternal:
		return http.StatusInternalServerError
	case CodeUnavailable, CodeMaintenance, CodeGoingAway:
		return http.StatusServiceUnavailable
	}
	return http.StatusBadRequest
}

func (s *HTTPHandler) write(w http.ResponseWriter, status int, plain bool, mode Mode, keys *Keys, resp *Response) {
	jsonBuf := s.getBuf()
	defer s.putBuf(jsonBuf)
	body := AppendResponse(*jsonBuf, resp)
	*jsonBuf = body[:0]
	out, contentType := body, ContentTypeJSON
	if !plain {
		frameBuf := s.getBuf()
		defer s.putBuf(frameBuf)
		frame, err := s.cfg.Codec.AppendEncode(*frameBuf, body, EncodeOptions{Mode: mode, Keys: keys})
		*frameBuf = frame[:0]
		if err != nil {
			// Only a response larger than the limits gets here; say so
			// without leaking the payload.
			if s.cfg.Logger != nil {
				s.cfg.Logger.Error("protocol: encode response", "err", err)
			}
			small := &Response{Seq: resp.Seq, RequestID: resp.RequestID, Code: CodeInternal, Message: CodeInternal.String(), ServerTime: resp.ServerTime}
			frame, err = s.cfg.Codec.AppendEncode((*frameBuf)[:0], AppendResponse(nil, small), EncodeOptions{Mode: mode, Keys: keys})
			if err != nil {
				http.Error(w, "internal error", http.StatusInternalServerError)
				return
			}
			*frameBuf = frame[:0]
		}
		out, contentType = frame, ContentTypeFrame
	}
	// The header values are set as shared one-element slices (capacity 1:
	// an Add elsewhere copies instead of writing into them), which saves
	// Header.Set's allocation per value on every response.
	h := w.Header()
	if contentType == ContentTypeFrame {
		h["Content-Type"] = hdrFrame
	} else {
		h["Content-Type"] = hdrJSON
	}
	h["Content-Length"] = []string{strconv.Itoa(len(out))}
	h["Cache-Control"] = hdrNoStore
	w.WriteHeader(status)
	_, _ = w.Write(out)
}

// Shared response header values (see write); never written to.
var (
	hdrFrame   = []string{ContentTypeFrame}[:1:1]
	hdrJSON    = []string{ContentTypeJSON}[:1:1]
	hdrNoStore = []string{"no-store"}[:1:1]
)

// readLimited reads all of r into buf, failing with ErrFrameTooLarge past
// limit bytes.
func readLimited(r io.Reader, buf []byte, limit int) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			if len(buf) > limit {
				return buf, fmt.Errorf("%w: limit %d", ErrFrameTooLarge, limit)
			}
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):min(cap(buf), limit+1)])
		buf = buf[:len(buf)+n]
		if len(buf) > limit {
			return buf, fmt.Errorf("%w: limit %d", ErrFrameTooLarge, limit)
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, &Error{Code: CodeBadRequest, Message: "protocol: reading request body failed", Err: err}
		}
	}
}

// isPlainJSON reports whether a body is a bare JSON object rather than a
// frame: frames start with the version byte, never '{' or white space.
func isPlainJSON(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return true
		}
		return false
	}
	return false
}
