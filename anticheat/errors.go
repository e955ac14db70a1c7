package anticheat

import (
	"errors"
	"fmt"
	"time"

	"github.com/madang-io/madang/protocol"
)

// Kind says what a verdict is about. Kinds are short stable names: they are
// stored in the hack log and grouped by in the operator queries.
type Kind string

// The kinds madang produces. Games may record their own kinds (any short
// lower-case name, at most MaxKindLen bytes).
const (
	KindSpeed     Kind = "speed"     // client clock drifts from the server's
	KindStat      Kind = "stat"      // a reported value breaks a rule
	KindSignature Kind = "signature" // APK signature mismatch
	KindIntegrity Kind = "integrity" // Play Integrity verdict failed the policy
	KindReceipt   Kind = "receipt"   // a forged, foreign or replayed receipt
)

// MaxKindLen and MaxDetailLen bound what one hack log event stores; longer
// details are truncated (never rejected: the event is always kept).
const (
	MaxKindLen    = 32
	MaxDetailLen  = 512
	maxVersionLen = 32
)

// Reason is the typed cause of a verdict or failure, a stable snake_case
// name such as "drift_ahead" or "signature_mismatch".
type Reason string

// Verdict is one detected anomaly: who, what and why. Every verdict the
// package produces goes to the hack log (see Monitor.Report).
type Verdict struct {
	UserKey       int64     // who; 0 when unknown (never blocked)
	Kind          Kind      // what kind of cheat
	Reason        Reason    // the typed cause
	Detail        string    // human-readable specifics for operators
	ClientVersion string    // the client version of the request
	At            time.Time // when; zero means now
}

// Error is a failure with a typed reason and the result code the client
// gets. It implements protocol.Coder; errors.Is matches two *Error values
// with the same Reason, so the Err* sentinels below work with errors.Is.
type Error struct {
	Reason Reason        // the typed cause, stable snake_case
	Code   protocol.Code // the result code the client gets
	Detail string        // specifics; logged, never sent to the client
	Err    error         // cause, if any; its text is appended to Error()

	cause error // cause already part of Detail
}

// Error implements error.
func (e *Error) Error() string {
	s := "anticheat: " + string(e.Reason)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error {
	if e.Err != nil {
		return e.Err
	}
	return e.cause
}

// ResultCode implements protocol.Coder.
func (e *Error) ResultCode() protocol.Code { return e.Code }

// Is reports whether target is an *Error with the same Reason.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Reason == e.Reason
}

// newErr returns an *Error of sentinel's reason and code; format may use %w
// to keep a cause (its text then is part of Detail).
func newErr(sentinel *Error, format string, args ...any) *Error {
	err := fmt.Errorf(format, args...)
	return &Error{Reason: sentinel.Reason, Code: sentinel.Code, Detail: err.Error(), cause: errors.Unwrap(err)}
}

// Sentinel errors, one per typed failure. Match them with errors.Is; the
// client sees Code.
var (
	// ErrBlocked: the account is blocked (temporarily or for good).
	ErrBlocked = &Error{Reason: "blocked", Code: protocol.CodeBlocked}
	// ErrUnknownVersion: no signature is registered for the client version
	// and there is no "latest" entry.
	ErrUnknownVersion = &Error{Reason: "unknown_version", Code: protocol.CodeForbidden}
	// ErrBadVersion: a version string is not "latest" nor dotted numbers.
	ErrBadVersion = &Error{Reason: "bad_version", Code: protocol.CodeBadRequest}
	// ErrBadSignature: a signature value is not a 32-character hex MD5 or a
	// 64-character hex SHA-256 digest.
	ErrBadSignature = &Error{Reason: "bad_signature", Code: protocol.CodeBadRequest}

	// ErrReceiptInvalid: the receipt failed verification (bad signature,
	// malformed, rejected by the store or receipt server).
	ErrReceiptInvalid = &Error{Reason: "receipt_invalid", Code: protocol.CodeBadRequest}
	// ErrReceiptUntrustedSigner: an Apple receipt's x5c chain verifies to
	// the root, but the leaf lacks the App Store receipt-signing extension
	// or the intermediate the Apple WWDR extension: a certificate Apple
	// issued for something else (such as any developer's), not the App
	// Store's.
	ErrReceiptUntrustedSigner = &Error{Reason: "receipt_untrusted_signer", Code: protocol.CodeBadRequest}
	// ErrReceiptWrongApp: the receipt is for another bundle id or package.
	ErrReceiptWrongApp = &Error{Reason: "receipt_wrong_app", Code: protocol.CodeBadRequest}
	// ErrReceiptWrongEnvironment: a sandbox receipt on production or the
	// reverse.
	ErrReceiptWrongEnvironment = &Error{Reason: "receipt_wrong_environment", Code: protocol.CodeBadRequest}
	// ErrReceiptNotPurchased: the store says the purchase is pending or
	// cancelled.
	ErrReceiptNotPurchased = &Error{Reason: "receipt_not_purchased", Code: protocol.CodeBadRequest}
	// ErrReceiptRevoked: the purchase was refunded or revoked.
	ErrReceiptRevoked = &Error{Reason: "receipt_revoked", Code: protocol.CodeBadRequest}
	// ErrReceiptOtherAccount: the transaction was already redeemed by
	// another account. Its code is configurable (RedeemerConfig).
	ErrReceiptOtherAccount = &Error{Reason: "receipt_other_account", Code: protocol.CodeReceiptUsed}
	// ErrUnknownStore: no verifier is configured for the store.
	ErrUnknownStore = &Error{Reason: "unknown_store", Code: protocol.CodeBadRequest}
	// ErrVerifierUnavailable: the store or receipt server could not be
	// reached or answered 5xx; retry later.
	ErrVerifierUnavailable = &Error{Reason: "verifier_unavailable", Code: protocol.CodeUnavailable}

	// ErrBadInput: an argument is out of its documented limits.
	ErrBadInput = &Error{Reason: "bad_input", Code: protocol.CodeBadRequest}
)

// IsReason reports whether err carries reason r.
func IsReason(err error, r Reason) bool {
	var e *Error
	return errors.As(err, &e) && e.Reason == r
}
