package idempotency

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/madang-io/madang/protocol"
)

// Middleware makes every command it wraps idempotent through d. It reads:
//
//   - Request.Principal.UserKey for the scope — so it must run after the
//     session middleware that fills Principal (a nil Principal is user 0:
//     anonymous commands share one scope per command);
//   - Request.Command for the scope;
//   - Request.RequestID as the key (the HTTP adapter copies an
//     Idempotency-Key header there when the envelope has none);
//   - Request.Payload for the fingerprint (FingerprintOf, byte for byte).
//
// The handler's Response (code, message, payload) or definitive error is
// stored; a replay answers the stored code, message and payload with
// Response.Replay set. Seq, RequestID and ServerTime are stamped by
// protocol.Dispatch and the transport on every reply, never stored.
// Refusals (in flight, reused, missing key) are returned as errors carrying
// their codes. Behind HTTPStatus they also set the HTTP status.
func Middleware(d Doer) protocol.Middleware {
	return func(next protocol.Handler) protocol.Handler {
		return protocol.HandlerFunc(func(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
			var scope Scope
			if req.Principal != nil {
				scope.UserKey = req.Principal.UserKey
			}
			scope.Command = req.Command
			var first *protocol.Response // the handler's own, reused on a first run
			out, err := d.Do(ctx, scope, req.RequestID, FingerprintOf(req.Payload), func(ctx context.Context) (Result, error) {
				resp, err := next.Serve(ctx, req)
				if err != nil || resp == nil {
					return Result{}, err
				}
				first = resp
				return Result{Code: resp.Code, Message: resp.Message, Payload: resp.Payload}, nil
			})
			if err != nil {
				noteRefusal(ctx, req, err)
				return nil, err
			}
			if !out.Replay && first != nil {
				// Dispatch copies the response, so the handler's may be
				// shared; the stored message may have been cut.
				if first.Message != out.Message {
					cp := *first
					cp.Message = out.Message
					first = &cp
				}
				return first, nil // RetryAfterMs of a retryable code passes through
			}
			return &protocol.Response{Code: out.Code, Message: out.Message, Payload: out.Payload, Replay: out.Replay}, nil
		})
	}
}

// statusNote carries a refusal from Middleware to the HTTPStatus wrapper
// through the request context (protocol.HTTPHandler runs the chain with the
// HTTP request's context).
type statusNote struct {
	set       bool
	code      protocol.Code
	message   string
	requestID string
	retryMs   int64
}

type statusNoteKey struct{}

// noteRefusal records an idempotency refusal for HTTPStatus, on the header
// path only: when the key came from the Idempotency-Key header, or when no
// key was given at all and one is required.
func noteRefusal(ctx context.Context, req *protocol.Request, err error) {
	n, _ := ctx.Value(statusNoteKey{}).(*statusNote)
	if n == nil {
		return
	}
	fromHeader := req.IdempotencyKey != "" && req.RequestID == req.IdempotencyKey
	switch {
	case errors.Is(err, ErrMissingKey):
	case fromHeader && (errors.Is(err, ErrInFlight) || errors.Is(err, ErrKeyReused)):
	default:
		return
	}
	var pe *protocol.Error
	if !errors.As(err, &pe) {
		return
	}
	*n = statusNote{set: true, code: pe.Code, message: pe.Message, requestID: req.RequestID, retryMs: pe.RetryAfter.Milliseconds()}
}

// ContentTypeProblem is the media type of RFC 9457 problem details.
const ContentTypeProblem = "application/problem+json"

// HTTPStatus wraps a protocol.HTTPHandler (or anything serving the chain
// with the HTTP request's context) so that idempotency refusals on the
// Idempotency-Key header path get the statuses of the IETF draft instead of
// 200:
//
//   - 400 Bad Request: no key where Config.RequireKey needs one;
//   - 409 Conflict: the key is in flight (with a Retry-After header, in
//     whole seconds, at least 1);
//   - 422 Unprocessable Content: the key was used with another payload.
//
// A plain JSON request gets an application/problem+json body (type
// "about:blank", title, status, detail, plus the madang "code" and "rid").
// A frame request keeps its frame body (a client must be able to open it;
// problem+json cannot be sealed) and only the status changes; madang's
// client reads 4xx frames as replies. Every other response passes through
// untouched. A request declared as a frame (Content-Type
// application/vnd.madang.frame) without an Idempotency-Key header is not on
// the header path and passes straight through. The refusal travels from
// Middleware in the request context, so Middleware must be in the chain the
// wrapped handler serves.
func HTTPStatus(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A frame request without the header is not on the header path:
		// pass it through untouched (no copy of the request).
		if r.Header.Get(protocol.HeaderIdempotencyKey) == "" && r.Header.Get("Content-Type") == protocol.ContentTypeFrame {
			next.ServeHTTP(w, r)
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		sw.note = &sw.noteVal
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), statusNoteKey{}, sw.note)))
	})
}

// statusWriter rewrites the status (and for plain JSON the body) of a
// refused request when the handler writes its header: by then the chain has
// run and the note is filled.
type statusWriter struct {
	http.ResponseWriter
	note        *statusNote
	noteVal     statusNote
	wroteHeader bool
	swallow     bool
}

func httpStatusOf(c protocol.Code) int {
	switch c {
	case protocol.CodeInFlight:
		return http.StatusConflict
	case protocol.CodeRequestIDReused:
		return http.StatusUnprocessableEntity
	}
	return http.StatusBadRequest
}

func (s *statusWriter) WriteHeader(status int) {
	if s.wroteHeader {
		return
	}
	s.wroteHeader = true
	n := s.note
	if !n.set || status != http.StatusOK {
		s.ResponseWriter.WriteHeader(status)
		return
	}
	status = httpStatusOf(n.code)
	h := s.Header()
	if n.code == protocol.CodeInFlight {
		secs := max((n.retryMs+999)/1000, 1)
		h.Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	if h.Get("Content-Type") != protocol.ContentTypeJSON {
		s.ResponseWriter.WriteHeader(status)
		return
	}
	body := problemJSON(status, n)
	h.Set("Content-Type", ContentTypeProblem)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	s.ResponseWriter.WriteHeader(status)
	_, _ = s.ResponseWriter.Write(body)
	s.swallow = true
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if !s.wroteHeader {
		s.WriteHeader(http.StatusOK)
	}
	if s.swallow {
		return len(b), nil
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// problem is an RFC 9457 problem details body with madang's extensions.
type problem struct {
	Type      string        `json:"type"`
	Title     string        `json:"title"`
	Status    int           `json:"status"`
	Detail    string        `json:"detail,omitempty"`
	Code      protocol.Code `json:"code"`
	RequestID string        `json:"rid,omitempty"`
	RetryMs   int64         `json:"retry_ms,omitempty"`
}

func problemJSON(status int, n *statusNote) []byte {
	p := problem{Type: "about:blank", Title: "Idempotency-Key is missing", Status: status,
		Detail: n.message, Code: n.code, RequestID: n.requestID, RetryMs: n.retryMs}
	switch n.code {
	case protocol.CodeInFlight:
		p.Title = "A request with this Idempotency-Key is still being processed"
	case protocol.CodeRequestIDReused:
		p.Title = "Idempotency-Key was already used with a different request"
	}
	b, _ := json.Marshal(p) // strings and ints only: cannot fail
	return b
}
