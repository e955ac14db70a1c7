package protocol

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Code is a result code carried in every Response. The table is stable: a
// code's number and meaning never change once released, so clients can switch
// on the number. Codes 0–999 belong to madang; games define their own codes at
// CodeGameBase and above.
type Code int32

// The result codes. docs/PROTOCOL.md lists the same table.
const (
	// CodeOK: the command ran and its payload is the result.
	CodeOK Code = 0

	// CodeBadRequest: the envelope or payload is malformed or fails validation.
	CodeBadRequest Code = 1
	// CodeBadFrame: the binary frame could not be decoded (version, flags,
	// lengths, compression).
	CodeBadFrame Code = 2
	// CodeUnknownCommand: no handler is registered for the command.
	CodeUnknownCommand Code = 3
	// CodeTooLarge: the frame or its decompressed body exceeds a limit.
	CodeTooLarge Code = 4

	// CodeUnauthorized: no valid credentials (missing or unknown token, a frame
	// that fails authentication, an unknown key id).
	CodeUnauthorized Code = 10
	// CodeSessionExpired: the session existed but timed out; log in again.
	CodeSessionExpired Code = 11
	// CodeKicked: the session was replaced by a newer login of the same user.
	CodeKicked Code = 12
	// CodeSessionRevoked: the session was revoked by the server or an operator.
	CodeSessionRevoked Code = 13
	// CodeReplayed: an authenticated frame's counter was accepted before for
	// its session, or is ReplayWindowSize or more below the highest accepted.
	CodeReplayed Code = 14
	// CodeBlocked: the account or device is blocked.
	CodeBlocked Code = 15
	// CodeClientTooOld: the client version is below the minimum; update the app.
	CodeClientTooOld Code = 16
	// CodeForbidden: authenticated, but not allowed to run this command.
	CodeForbidden Code = 17
	// CodeReceiptUsed: the purchase receipt was already redeemed by another
	// account; nothing was granted.
	CodeReceiptUsed Code = 18

	// CodeMaintenance: the game (or this user) is in maintenance.
	CodeMaintenance Code = 20
	// CodeRateLimited: too many requests; retry after Response.RetryAfterMs.
	CodeRateLimited Code = 21

	// CodeInFlight: the same request id is still being processed; retry the
	// same request after Response.RetryAfterMs.
	CodeInFlight Code = 30
	// CodeRequestIDReused: the request id was used before with a different
	// request; nothing ran.
	CodeRequestIDReused Code = 31

	// CodeInternal: the server failed (a bug); details are in the server log
	// only. A backend outage is never CodeInternal: madang's packages
	// classify backend errors as CodeUnavailable or CodeTimeout, and so
	// does shard.ClassifyError for a game's own code.
	CodeInternal Code = 40
	// CodeUnavailable: a backend is temporarily unavailable (down,
	// unreachable, slow, restarting, read-only, out of connections, or a
	// deadlock victim), or the server is serving as many requests as it
	// allows (InFlightLimit, with a retry hint); nothing was committed and
	// the same request can be retried.
	CodeUnavailable Code = 41
	// CodeTimeout: the server gave up waiting, or a database connection died
	// with a commit on its way; the request may or may not have
	// been committed, so retry it with the same request id.
	CodeTimeout Code = 42

	// CodePositionLost: a channel's history no longer holds everything after
	// the position the client resumes from (trimmed, expired, or lost with a
	// Redis node: the epoch changed). Reload the channel's full state.
	CodePositionLost Code = 50
	// CodeSlowConsumer: the connection was closed because the client did not
	// read fast enough and its send queue filled up. Reconnect and resume.
	CodeSlowConsumer Code = 51
	// CodeNotMember: the connection is not subscribed to the channel or not
	// in the room the command names.
	CodeNotMember Code = 52
	// CodeGoingAway: the realtime node is shutting down; reconnect (to any
	// node) and resume.
	CodeGoingAway Code = 53

	// CodeGameBase is the first code games may define for their own results
	// ("not enough gems"). madang never uses codes at or above it.
	CodeGameBase Code = 1000
)

var codeNames = map[Code]string{
	CodeOK:              "ok",
	CodeBadRequest:      "bad_request",
	CodeBadFrame:        "bad_frame",
	CodeUnknownCommand:  "unknown_command",
	CodeTooLarge:        "too_large",
	CodeUnauthorized:    "unauthorized",
	CodeSessionExpired:  "session_expired",
	CodeKicked:          "kicked",
	CodeSessionRevoked:  "session_revoked",
	CodeReplayed:        "replayed",
	CodeBlocked:         "blocked",
	CodeClientTooOld:    "client_too_old",
	CodeForbidden:       "forbidden",
	CodeReceiptUsed:     "receipt_used",
	CodeMaintenance:     "maintenance",
	CodeRateLimited:     "rate_limited",
	CodeInFlight:        "in_flight",
	CodeRequestIDReused: "request_id_reused",
	CodePositionLost:    "position_lost",
	CodeSlowConsumer:    "slow_consumer",
	CodeNotMember:       "not_member",
	CodeGoingAway:       "going_away",
	CodeInternal:        "internal",
	CodeUnavailable:     "unavailable",
	CodeTimeout:         "timeout",
}

// String returns the code's stable snake_case name ("kicked"), "game_<n>" for
// game codes and "code_<n>" for numbers the table does not define.
func (c Code) String() string {
	if s, ok := codeNames[c]; ok {
		return s
	}
	if c >= CodeGameBase {
		return "game_" + strconv.Itoa(int(c))
	}
	return "code_" + strconv.Itoa(int(c))
}

// Retryable reports whether a client may send the same request (same request
// id) again and expect a different outcome without changing anything.
func (c Code) Retryable() bool {
	switch c {
	case CodeInFlight, CodeRateLimited, CodeUnavailable, CodeTimeout, CodeGoingAway:
		return true
	}
	return false
}

// Error is an error with a result code and a message that is safe to show the
// client. Err, if set, is the cause; it is logged by the server but never sent.
type Error struct {
	Code       Code
	Message    string        // sent to the client as Response.Message
	RetryAfter time.Duration // sent as Response.RetryAfterMs when positive
	Err        error         // internal cause; never sent
}

// Error implements error.
func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = e.Code.String()
	}
	if e.Err != nil {
		return msg + ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with code and a client-visible message formatted
// from format and args. Use %w in format to keep a cause for errors.Is/As; the
// full formatted text is what the client sees, so don't put internals in it.
func Errorf(code Code, format string, args ...any) *Error {
	err := fmt.Errorf(format, args...)
	return &Error{Code: code, Message: err.Error(), Err: errors.Unwrap(err)}
}

// Coder is implemented by errors of other packages that carry a result code.
// CodeOf honours it, so a package can map its errors without importing
// anything but its own types.
type Coder interface {
	ResultCode() Code
}

// CodeOf maps a Go error to a result code: nil → CodeOK; an *Error or a Coder
// anywhere in the chain → its code; context.DeadlineExceeded → CodeTimeout;
// context.Canceled → CodeUnavailable; anything else → CodeInternal.
func CodeOf(err error) Code {
	if err == nil {
		return CodeOK
	}
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Code
	}
	var c Coder
	if errors.As(err, &c) {
		return c.ResultCode()
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return CodeTimeout
	case errors.Is(err, context.Canceled):
		return CodeUnavailable
	}
	return CodeInternal
}

// publicError returns the code, client-visible message and retry hint for err.
// Only *Error messages reach the client; other errors get the code's name.
func publicError(err error) (Code, string, time.Duration) {
	var pe *Error
	if errors.As(err, &pe) {
		msg := pe.Message
		if msg == "" {
			msg = pe.Code.String()
		}
		return pe.Code, msg, pe.RetryAfter
	}
	code := CodeOf(err)
	return code, code.String(), 0
}

// ParseCode returns the code named s (Code.String: "kicked", "game_1001",
// "code_77"); false for any other string.
func ParseCode(s string) (Code, bool) {
	for c, name := range codeNames {
		if name == s {
			return c, true
		}
	}
	for _, p := range []string{"game_", "code_"} {
		rest, ok := strings.CutPrefix(s, p)
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(rest, 10, 31)
		if err != nil || strconv.FormatUint(n, 10) != rest {
			return 0, false
		}
		if c := Code(n); c.String() == s {
			return c, true
		}
	}
	return 0, false
}
