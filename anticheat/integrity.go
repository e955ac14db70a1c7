package anticheat

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/madang-io/madang/internal/clock"
	"github.com/madang-io/madang/protocol"
)

// IntegrityVerdict is a decoded Play Integrity verdict (the API's
// tokenPayloadExternal), with the members the policy reads.
type IntegrityVerdict struct {
	// RequestDetails is what the app asked for: package, hash or nonce, time.
	RequestDetails struct {
		RequestPackageName string `json:"requestPackageName"`
		// RequestHash is set for standard requests, Nonce for classic ones.
		RequestHash string `json:"requestHash"`
		Nonce       string `json:"nonce"`
		// TimestampMillis is a decimal string of Unix ms.
		TimestampMillis string `json:"timestampMillis"`
	} `json:"requestDetails"`
	// AppIntegrity is Play's view of the app binary.
	AppIntegrity struct {
		// AppRecognitionVerdict: PLAY_RECOGNIZED, UNRECOGNIZED_VERSION or
		// UNEVALUATED.
		AppRecognitionVerdict string `json:"appRecognitionVerdict"`
		PackageName           string `json:"packageName"`
		// CertificateSha256Digest: base64url SHA-256 digests of the signing
		// certificates.
		CertificateSha256Digest []string `json:"certificateSha256Digest"`
		VersionCode             string   `json:"versionCode"`
	} `json:"appIntegrity"`
	// DeviceIntegrity is Play's view of the device.
	DeviceIntegrity struct {
		// DeviceRecognitionVerdict labels: MEETS_BASIC_INTEGRITY,
		// MEETS_DEVICE_INTEGRITY, MEETS_STRONG_INTEGRITY,
		// MEETS_VIRTUAL_INTEGRITY; empty when none is met.
		DeviceRecognitionVerdict []string `json:"deviceRecognitionVerdict"`
	} `json:"deviceIntegrity"`
	// AccountDetails is Play's view of the user's licence.
	AccountDetails struct {
		// AppLicensingVerdict: LICENSED, UNLICENSED or UNEVALUATED.
		AppLicensingVerdict string `json:"appLicensingVerdict"`
	} `json:"accountDetails"`
}

// Play Integrity policy failures, one reason each (result code
// CodeForbidden).
var (
	// ErrIntegrityPackage: requestPackageName or appIntegrity.packageName is
	// not the app's.
	ErrIntegrityPackage = &Error{Reason: "integrity_package", Code: protocol.CodeForbidden}
	// ErrIntegrityRequest: the request hash or nonce does not match the one
	// the server expected (a replayed or borrowed token).
	ErrIntegrityRequest = &Error{Reason: "integrity_request", Code: protocol.CodeForbidden}
	// ErrIntegrityStale: the verdict is older than MaxAge, from the future,
	// or has no valid timestamp.
	ErrIntegrityStale = &Error{Reason: "integrity_stale", Code: protocol.CodeForbidden}
	// ErrIntegrityAppUnrecognized: the app is not PLAY_RECOGNIZED.
	ErrIntegrityAppUnrecognized = &Error{Reason: "integrity_app_unrecognized", Code: protocol.CodeForbidden}
	// ErrIntegrityCertificate: a signing certificate digest is not in the
	// allow-list, or there is none.
	ErrIntegrityCertificate = &Error{Reason: "integrity_certificate", Code: protocol.CodeForbidden}
	// ErrIntegrityDevice: the device does not meet the required tier.
	ErrIntegrityDevice = &Error{Reason: "integrity_device", Code: protocol.CodeForbidden}
	// ErrIntegrityUnlicensed: the account is not LICENSED (when required).
	ErrIntegrityUnlicensed = &Error{Reason: "integrity_unlicensed", Code: protocol.CodeForbidden}
)

// DeviceTier is a Play Integrity device recognition level.
type DeviceTier int

// Device tiers, weakest first.
const (
	// DeviceAny accepts any device, even one meeting no integrity label.
	DeviceAny DeviceTier = iota
	// DeviceBasic needs MEETS_BASIC_INTEGRITY or better.
	DeviceBasic
	// DeviceIntegrity needs MEETS_DEVICE_INTEGRITY or better.
	DeviceIntegrity
	// DeviceStrong needs MEETS_STRONG_INTEGRITY.
	DeviceStrong
)

func tierOf(label string) DeviceTier {
	switch label {
	case "MEETS_BASIC_INTEGRITY":
		return DeviceBasic
	case "MEETS_DEVICE_INTEGRITY":
		return DeviceIntegrity
	case "MEETS_STRONG_INTEGRITY":
		return DeviceStrong
	}
	return DeviceAny
}

// IntegrityPolicy judges decoded verdicts.
type IntegrityPolicy struct {
	// PackageName is the app's package. Required.
	PackageName string
	// CertSHA256 is the allow-list of signing certificate digests (hex, with
	// or without colons, or base64url as the API writes them): the whole
	// key-rotation lineage. Required.
	CertSHA256 []string
	// MaxAge is how old a verdict may be. Default 5 min; a timestamp more
	// than a minute in the future is stale too.
	MaxAge time.Duration
	// MinDevice is the device tier required. Default (zero) DeviceAny; most
	// games want DeviceIntegrity.
	MinDevice DeviceTier
	// AllowUnrecognizedVersion accepts UNRECOGNIZED_VERSION (side-loaded
	// builds on test devices). UNEVALUATED is never accepted.
	AllowUnrecognizedVersion bool
	// RequireLicensed requires appLicensingVerdict LICENSED.
	RequireLicensed bool
	// Now returns the current time; nil means time.Now. It judges
	// freshness.
	Now func() time.Time
}

// Expect is what the server expects in requestDetails: the request hash of
// a standard request, or the nonce of a classic one (set the one you used).
type Expect struct {
	RequestHash string // the standard request's hash
	Nonce       string // the classic request's nonce (base64url)
}

// hexDigest normalises a digest given as hex (colons allowed) or base64url
// (padded or not) to lower-case hex; "" if it is neither.
func hexDigest(s string) string {
	if h, ok := normHex(s, 64); ok {
		return h
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil || len(b) != 32 {
		return ""
	}
	return hex.EncodeToString(b)
}

// Check returns nil when v passes the policy, or the first failure in this
// order: package, request hash/nonce, freshness, app recognition,
// certificate, device tier, licensing. An invalid policy is ErrBadInput.
func (p *IntegrityPolicy) Check(v *IntegrityVerdict, want Expect) error {
	if p.PackageName == "" || len(p.CertSHA256) == 0 {
		return newErr(ErrBadInput, "integrity policy needs PackageName and CertSHA256")
	}
	rd := v.RequestDetails
	if rd.RequestPackageName != p.PackageName {
		return newErr(ErrIntegrityPackage, "request package %q", truncate(rd.RequestPackageName, 128))
	}
	switch {
	case want.RequestHash == "" && want.Nonce == "":
		return newErr(ErrBadInput, "expect a request hash or a nonce")
	case want.RequestHash != "" && rd.RequestHash != want.RequestHash:
		return newErr(ErrIntegrityRequest, "request hash differs")
	case want.Nonce != "" && strings.TrimRight(rd.Nonce, "=") != strings.TrimRight(want.Nonce, "="):
		return newErr(ErrIntegrityRequest, "nonce differs")
	}
	ts, err := strconv.ParseInt(rd.TimestampMillis, 10, 64)
	if err != nil {
		return newErr(ErrIntegrityStale, "timestamp %q", truncate(rd.TimestampMillis, 32))
	}
	maxAge := p.MaxAge
	if maxAge <= 0 {
		maxAge = 5 * time.Minute
	}
	now := clock.OrNow(p.Now)()
	if age := now.Sub(time.UnixMilli(ts)); age > maxAge || age < -time.Minute {
		return newErr(ErrIntegrityStale, "verdict age %v", age.Round(time.Second))
	}
	ai := v.AppIntegrity
	switch ai.AppRecognitionVerdict {
	case "PLAY_RECOGNIZED":
	case "UNRECOGNIZED_VERSION":
		if !p.AllowUnrecognizedVersion {
			return newErr(ErrIntegrityAppUnrecognized, "%s", ai.AppRecognitionVerdict)
		}
	default:
		return newErr(ErrIntegrityAppUnrecognized, "%q", truncate(ai.AppRecognitionVerdict, 32))
	}
	if ai.PackageName != p.PackageName {
		return newErr(ErrIntegrityPackage, "app package %q", truncate(ai.PackageName, 128))
	}
	if len(ai.CertificateSha256Digest) == 0 || len(ai.CertificateSha256Digest) > maxCerts {
		return newErr(ErrIntegrityCertificate, "%d certificate digests", len(ai.CertificateSha256Digest))
	}
	allowed := make([]string, 0, len(p.CertSHA256))
	for _, c := range p.CertSHA256 {
		allowed = append(allowed, hexDigest(c))
	}
	for _, c := range ai.CertificateSha256Digest {
		if d := hexDigest(c); d == "" || !slices.Contains(allowed, d) {
			return newErr(ErrIntegrityCertificate, "digest %q not allowed", truncate(c, 64))
		}
	}
	best := DeviceAny
	for _, l := range v.DeviceIntegrity.DeviceRecognitionVerdict {
		best = max(best, tierOf(l))
	}
	if best < p.MinDevice {
		return newErr(ErrIntegrityDevice, "device labels %v", v.DeviceIntegrity.DeviceRecognitionVerdict)
	}
	if p.RequireLicensed && v.AccountDetails.AppLicensingVerdict != "LICENSED" {
		return newErr(ErrIntegrityUnlicensed, "%q", truncate(v.AccountDetails.AppLicensingVerdict, 32))
	}
	return nil
}

// IntegrityDecoder turns an integrity token into its verdict: Google's
// decodeIntegrityToken call. PlayIntegrityHTTP implements it; anticheattest
// has a fake.
type IntegrityDecoder interface {
	Decode(ctx context.Context, token string) (IntegrityVerdict, error)
}

// PlayIntegrityHTTP calls the Play Integrity API's decodeIntegrityToken.
// Client must authenticate the requests (OAuth2 of a service account; this
// package does not do OAuth).
type PlayIntegrityHTTP struct {
	Client      *http.Client // authenticating client; nil: http.DefaultClient
	PackageName string       // the app's package
	// BaseURL defaults to "https://playintegrity.googleapis.com".
	BaseURL string
}

var _ IntegrityDecoder = (*PlayIntegrityHTTP)(nil)

// Decode implements IntegrityDecoder.
func (p *PlayIntegrityHTTP) Decode(ctx context.Context, token string) (IntegrityVerdict, error) {
	var out struct {
		TokenPayloadExternal IntegrityVerdict `json:"tokenPayloadExternal"`
	}
	if token == "" || len(token) > MaxReceiptLen {
		return out.TokenPayloadExternal, newErr(ErrBadInput, "integrity token of %d bytes", len(token))
	}
	base := p.BaseURL
	if base == "" {
		base = "https://playintegrity.googleapis.com"
	}
	body, _ := json.Marshal(map[string]string{"integrity_token": token})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/"+url.PathEscape(p.PackageName)+":decodeIntegrityToken", bytes.NewReader(body))
	if err != nil {
		return out.TokenPayloadExternal, fmt.Errorf("anticheat: integrity request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	c := p.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return out.TokenPayloadExternal, newErr(ErrVerifierUnavailable, "play integrity: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	switch {
	case err != nil:
		return out.TokenPayloadExternal, newErr(ErrVerifierUnavailable, "play integrity reply: %w", err)
	case resp.StatusCode == http.StatusBadRequest:
		return out.TokenPayloadExternal, newErr(ErrBadInput, "play integrity: token rejected (HTTP 400)")
	case resp.StatusCode != http.StatusOK:
		return out.TokenPayloadExternal, newErr(ErrVerifierUnavailable, "play integrity: HTTP %d", resp.StatusCode)
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return out.TokenPayloadExternal, newErr(ErrVerifierUnavailable, "play integrity reply: %w", err)
	}
	return out.TokenPayloadExternal, nil
}

// CheckIntegrity decodes token with d and checks it against p. The verdict
// is returned in both cases (for the hack log).
func CheckIntegrity(ctx context.Context, d IntegrityDecoder, p *IntegrityPolicy, token string, want Expect) (IntegrityVerdict, error) {
	if d == nil || p == nil {
		return IntegrityVerdict{}, errors.New("anticheat: CheckIntegrity needs a decoder and a policy")
	}
	v, err := d.Decode(ctx, token)
	if err != nil {
		return v, err
	}
	return v, p.Check(&v, want)
}
