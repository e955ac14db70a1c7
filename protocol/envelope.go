package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// Envelope limits. They bound what one request may name, independent of the
// frame size limits.
const (
	// MaxCommandLen is the longest command name.
	MaxCommandLen = 64
	// MaxRequestIDLen is the longest request id.
	MaxRequestIDLen = 128
	// MaxTokenLen is the longest session token.
	MaxTokenLen = 512
)

// ErrEnvelope is the error for an envelope that is not valid JSON or breaks
// the envelope rules; decoders wrap it with detail.
var ErrEnvelope = &Error{Code: CodeBadRequest, Message: "protocol: invalid envelope"}

// Principal is who sent a request, filled in by authentication (the session
// middleware) and read by everything after it. Packages that need data from
// each other pass it here instead of importing each other.
type Principal struct {
	UserKey       int64  // the user's key; it also routes to the user's database and Redis node
	SessionID     string // the session's token or key id, for logs and revocation
	ShardID       int    // the game database the user lives on, when the session knows it
	ClientVersion string // "x.y.z.w" as the client reported it at login
	Platform      string // "android", "ios", ...
	DeviceID      string
	Country       string // ISO 3166-1 alpha-2
	Language      string // BCP 47
	// Attrs holds the game's own session attributes.
	Attrs map[string]string
}

// Request is a decoded client request. The transport fills the wire fields
// and the metadata; authentication fills Principal.
type Request struct {
	// Command names the handler, such as "shop.buy".
	Command string `json:"cmd"`
	// Seq is the client's sequence number, echoed in the response.
	Seq uint64 `json:"seq,omitempty"`
	// RequestID identifies the logical request across retries (idempotency):
	// a re-sent request keeps it.
	RequestID string `json:"rid,omitempty"`
	// ClientTime is the client's raw clock in Unix milliseconds, never
	// corrected by a clock offset: the speed-hack check needs the raw value.
	ClientTime int64 `json:"ctime,omitempty"`
	// Token is the session token; empty in authenticated frames, where the
	// key id names the session.
	Token string `json:"token,omitempty"`
	// Payload is the command's argument, raw JSON.
	Payload json.RawMessage `json:"payload,omitempty"`

	// KeyID and Counter come from an authenticated frame's header; nil/0
	// otherwise.
	KeyID   []byte `json:"-"`
	Counter uint64 `json:"-"`
	// Mode is how the request frame was protected; responses use the same.
	Mode Mode `json:"-"`
	// PlainJSON is set when the request arrived as plain JSON (development).
	PlainJSON bool `json:"-"`
	// IdempotencyKey is the transport's Idempotency-Key header, if any.
	IdempotencyKey string `json:"-"`
	// RemoteAddr is the peer's address as the transport saw it.
	RemoteAddr string `json:"-"`
	// ReceivedAt is the server's clock when the request arrived.
	ReceivedAt time.Time `json:"-"`
	// Principal is nil until authentication fills it.
	Principal *Principal `json:"-"`
}

// Response is the answer to a Request. Handlers set Code (zero: CodeOK),
// Message and Payload; the transport stamps Seq, RequestID and ServerTime.
type Response struct {
	Seq        uint64 `json:"seq,omitempty"`
	RequestID  string `json:"rid,omitempty"`
	Code       Code   `json:"code"`
	Message    string `json:"msg,omitempty"`
	ServerTime int64  `json:"stime"` // Unix milliseconds
	// RetryAfterMs hints when to retry a retryable code (in flight, rate
	// limited); 0 when there is no hint.
	RetryAfterMs int64 `json:"retry_ms,omitempty"`
	// Replay is set when the response is a stored result returned for a
	// retried request instead of running the handler again.
	Replay  bool            `json:"replay,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// Push is a server-initiated message (realtime): chat, notices, events,
// room snapshots. A server message is a Push when its JSON begins with the
// "push" member, as AppendPush writes it (see IsPush); a Response never has
// one.
type Push struct {
	// Topic says what the push is ("chat", "notice", "kick", ...).
	Topic string `json:"push"`
	// Channel is the channel or room the push belongs to, if any.
	Channel string `json:"ch,omitempty"`
	// ID is the message's sequence number within Channel, for resuming.
	ID uint64 `json:"id,omitempty"`
	// Epoch names the generation of Channel's history that ID counts in. The
	// realtime hub sets it on the first publication of an epoch (ID 1), so a
	// client that sees ID start again at 1 learns the new epoch to resume
	// from; otherwise empty (the epoch is in the subscribe reply).
	Epoch      string          `json:"epoch,omitempty"`
	ServerTime int64           `json:"stime"`
	Payload    json.RawMessage `json:"payload,omitempty"`
}

// DecodeRequest parses a request envelope and checks its limits: a non-empty
// command of at most MaxCommandLen bytes, and request id and token within
// their limits. Wire metadata fields of r are left as they are. It accepts
// exactly what encoding/json accepts into the envelope's fields and reads it
// the same way (member names case-insensitively, the last of duplicate
// members, unknown members ignored; docs/PROTOCOL.md §9), reading the usual
// envelope in one pass without reflection. The strings and payload it sets
// are copies: body may be reused afterwards.
func DecodeRequest(body []byte, r *Request) error {
	var w reqSpans
	if !scanRequest(body, &w) {
		return decodeRequestStd(body, r)
	}
	if err := checkRequest(w.cmd.len(), w.rid.len(), w.token.len()); err != nil {
		return err
	}
	// One allocation for the three strings (substrings of one string).
	var tmp [256]byte
	all := append(append(append(tmp[:0], body[w.cmd.start:w.cmd.end]...),
		body[w.rid.start:w.rid.end]...), body[w.token.start:w.token.end]...)
	str := string(all)
	a, b := w.cmd.len(), w.cmd.len()+w.rid.len()
	r.Command, r.Seq, r.RequestID, r.ClientTime, r.Token = str[:a], w.seq, str[a:b], w.ctime, str[b:]
	r.Payload = nil
	if p := body[w.payload.start:w.payload.end]; len(p) > 0 && string(p) != "null" {
		r.Payload = append(json.RawMessage(nil), p...)
	}
	return nil
}

// checkRequest checks an envelope's limits, given the lengths of its
// command, request id and token.
func checkRequest(cmd, rid, token int) error {
	switch {
	case cmd == 0:
		return fmt.Errorf("%w: missing cmd", ErrEnvelope)
	case cmd > MaxCommandLen:
		return fmt.Errorf("%w: cmd longer than %d bytes", ErrEnvelope, MaxCommandLen)
	case rid > MaxRequestIDLen:
		return fmt.Errorf("%w: rid longer than %d bytes", ErrEnvelope, MaxRequestIDLen)
	case token > MaxTokenLen:
		return fmt.Errorf("%w: token longer than %d bytes", ErrEnvelope, MaxTokenLen)
	}
	return nil
}

// decodeRequestStd is DecodeRequest through encoding/json: what DecodeRequest
// runs for what its fast path does not read, and the reference the tests
// compare that path with.
func decodeRequestStd(body []byte, r *Request) error {
	var w struct {
		Command    string          `json:"cmd"`
		Seq        uint64          `json:"seq"`
		RequestID  string          `json:"rid"`
		ClientTime int64           `json:"ctime"`
		Token      string          `json:"token"`
		Payload    json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(body, &w); err != nil {
		return fmt.Errorf("%w: %v", ErrEnvelope, err)
	}
	if err := checkRequest(len(w.Command), len(w.RequestID), len(w.Token)); err != nil {
		return err
	}
	if bytes.Equal(w.Payload, []byte("null")) {
		w.Payload = nil
	}
	r.Command, r.Seq, r.RequestID, r.ClientTime, r.Token, r.Payload =
		w.Command, w.Seq, w.RequestID, w.ClientTime, w.Token, w.Payload
	return nil
}

// AppendRequest appends the JSON envelope of r to dst. Payload must be valid
// JSON (or empty); it is copied as is.
func AppendRequest(dst []byte, r *Request) []byte {
	dst = append(dst, `{"cmd":`...)
	dst = appendJSONString(dst, r.Command)
	if r.Seq != 0 {
		dst = append(dst, `,"seq":`...)
		dst = strconv.AppendUint(dst, r.Seq, 10)
	}
	if r.RequestID != "" {
		dst = append(dst, `,"rid":`...)
		dst = appendJSONString(dst, r.RequestID)
	}
	if r.ClientTime != 0 {
		dst = append(dst, `,"ctime":`...)
		dst = strconv.AppendInt(dst, r.ClientTime, 10)
	}
	if r.Token != "" {
		dst = append(dst, `,"token":`...)
		dst = appendJSONString(dst, r.Token)
	}
	if len(r.Payload) > 0 {
		dst = append(dst, `,"payload":`...)
		dst = append(dst, r.Payload...)
	}
	return append(dst, '}')
}

// AppendResponse appends the JSON envelope of r to dst without allocating.
// Payload must be valid JSON (or empty); it is copied as is.
func AppendResponse(dst []byte, r *Response) []byte {
	dst = append(dst, '{')
	if r.Seq != 0 {
		dst = append(dst, `"seq":`...)
		dst = strconv.AppendUint(dst, r.Seq, 10)
		dst = append(dst, ',')
	}
	if r.RequestID != "" {
		dst = append(dst, `"rid":`...)
		dst = appendJSONString(dst, r.RequestID)
		dst = append(dst, ',')
	}
	dst = append(dst, `"code":`...)
	dst = strconv.AppendInt(dst, int64(r.Code), 10)
	if r.Message != "" {
		dst = append(dst, `,"msg":`...)
		dst = appendJSONString(dst, r.Message)
	}
	dst = append(dst, `,"stime":`...)
	dst = strconv.AppendInt(dst, r.ServerTime, 10)
	if r.RetryAfterMs != 0 {
		dst = append(dst, `,"retry_ms":`...)
		dst = strconv.AppendInt(dst, r.RetryAfterMs, 10)
	}
	if r.Replay {
		dst = append(dst, `,"replay":true`...)
	}
	if len(r.Payload) > 0 {
		dst = append(dst, `,"payload":`...)
		dst = append(dst, r.Payload...)
	}
	return append(dst, '}')
}

// DecodeResponse parses a response envelope. Like DecodeRequest it reads
// what encoding/json reads, the same way, and copies what it keeps.
func DecodeResponse(body []byte, r *Response) error {
	var w respSpans
	if !scanResponse(body, &w) {
		return decodeResponseStd(body, r)
	}
	var tmp [256]byte
	str := string(append(append(tmp[:0], body[w.rid.start:w.rid.end]...), body[w.msg.start:w.msg.end]...))
	*r = Response{Seq: w.seq, RequestID: str[:w.rid.len()], Code: Code(w.code), Message: str[w.rid.len():],
		ServerTime: w.stime, RetryAfterMs: w.retry, Replay: w.replay}
	if p := body[w.payload.start:w.payload.end]; len(p) > 0 && string(p) != "null" {
		r.Payload = append(json.RawMessage(nil), p...)
	}
	return nil
}

// decodeResponseStd is DecodeResponse through encoding/json (see
// decodeRequestStd).
func decodeResponseStd(body []byte, r *Response) error {
	*r = Response{}
	if err := json.Unmarshal(body, r); err != nil {
		return fmt.Errorf("%w: %v", ErrEnvelope, err)
	}
	if bytes.Equal(r.Payload, []byte("null")) {
		r.Payload = nil
	}
	return nil
}

// AppendPush appends the JSON of p to dst without allocating.
func AppendPush(dst []byte, p *Push) []byte {
	dst = append(dst, `{"push":`...)
	dst = appendJSONString(dst, p.Topic)
	if p.Channel != "" {
		dst = append(dst, `,"ch":`...)
		dst = appendJSONString(dst, p.Channel)
	}
	if p.ID != 0 {
		dst = append(dst, `,"id":`...)
		dst = strconv.AppendUint(dst, p.ID, 10)
	}
	if p.Epoch != "" {
		dst = append(dst, `,"epoch":`...)
		dst = appendJSONString(dst, p.Epoch)
	}
	dst = append(dst, `,"stime":`...)
	dst = strconv.AppendInt(dst, p.ServerTime, 10)
	if len(p.Payload) > 0 {
		dst = append(dst, `,"payload":`...)
		dst = append(dst, p.Payload...)
	}
	return append(dst, '}')
}

// IsPush reports whether a decoded server message body is a Push rather than
// a Response, by looking for its leading "push" member as AppendPush writes
// it. Servers always write it first.
func IsPush(body []byte) bool {
	return bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte(`{"push":`))
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// as encoding/json does; <, > and & are left alone (no HTML escaping).
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		// U+2028 and U+2029 are valid JSON but break JavaScript parsers.
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
