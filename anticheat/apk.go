package anticheat

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/madang-io/madang/internal/clock"
)

// Latest is the version of the fallback registry entry, used for a client
// version that has no entry of its own.
const Latest = "latest"

// maxVersionParts bounds a version's dotted numbers ("x.y.z.w").
const maxVersionParts = len([4]uint32{})

// ParseVersion parses "x", "x.y", "x.y.z" or "x.y.z.w" (decimal numbers, each
// at most 9 digits) into four numbers, missing parts zero.
func ParseVersion(v string) ([4]uint32, error) {
	var out [4]uint32
	if v == "" || len(v) > maxVersionLen {
		return out, newErr(ErrBadVersion, "%q", truncate(v, maxVersionLen))
	}
	i := 0
	for part := range strings.SplitSeq(v, ".") {
		if i == maxVersionParts || part == "" || len(part) > 9 {
			return out, newErr(ErrBadVersion, "%q", v)
		}
		n, err := strconv.ParseUint(part, 10, 32)
		if err != nil || part[0] == '+' {
			return out, newErr(ErrBadVersion, "%q", v)
		}
		out[i] = uint32(n)
		i++
	}
	return out, nil
}

// CanonicalVersion returns v as "x.y.z.w" without leading zeros ("1.02" →
// "1.2.0.0"), or "latest" for "latest" (any case).
func CanonicalVersion(v string) (string, error) {
	if strings.EqualFold(v, Latest) {
		return Latest, nil
	}
	p, err := ParseVersion(v)
	if err != nil {
		return "", err
	}
	b := make([]byte, 0, 16)
	for i, n := range p {
		if i > 0 {
			b = append(b, '.')
		}
		b = strconv.AppendUint(b, uint64(n), 10)
	}
	return string(b), nil
}

// CompareVersions compares two versions numerically, part by part
// ("10.0.0" > "9.0.0"; "1.2" == "1.2.0.0"): -1, 0 or +1. "latest" is above
// every numbered version.
func CompareVersions(a, b string) (int, error) {
	la, lb := strings.EqualFold(a, Latest), strings.EqualFold(b, Latest)
	switch {
	case la && lb:
		return 0, nil
	case la:
		if _, err := ParseVersion(b); err != nil {
			return 0, err
		}
		return 1, nil
	case lb:
		if _, err := ParseVersion(a); err != nil {
			return 0, err
		}
		return -1, nil
	}
	pa, err := ParseVersion(a)
	if err != nil {
		return 0, err
	}
	pb, err := ParseVersion(b)
	if err != nil {
		return 0, err
	}
	return slices.Compare(pa[:], pb[:]), nil
}

// SignatureResult is the outcome of a signature check.
type SignatureResult int

// Signature check outcomes.
const (
	// SignatureOK: the presented signature matches the registered one.
	SignatureOK SignatureResult = iota
	// SignatureMismatch: it does not (a repackaged APK).
	SignatureMismatch
	// SignatureUnknownVersion: neither the version nor "latest" has an
	// entry.
	SignatureUnknownVersion
)

// String returns "ok", "mismatch" or "unknown_version".
func (r SignatureResult) String() string {
	switch r {
	case SignatureOK:
		return "ok"
	case SignatureMismatch:
		return "mismatch"
	case SignatureUnknownVersion:
		return "unknown_version"
	}
	return "signature_result_" + strconv.Itoa(int(r))
}

// ReasonSignatureMismatch is the verdict reason of a mismatch.
const ReasonSignatureMismatch Reason = "signature_mismatch"

// Presented is what a client sent at login about its own package.
type Presented struct {
	APKMD5     string   // the APK signature's MD5, hex
	CertSHA256 []string // signing certificate digests, hex
}

// Registry is the APK signature registry per client version, over a
// SignatureStore.
type Registry struct {
	store SignatureStore
	cfg   RegistryConfig

	// The in-process copy of the registry (RegistryConfig.CacheTTL).
	mu     sync.Mutex
	sigs   map[string]SignatureEntry // nil: not loaded
	sigsAt time.Time                 // when the load that made sigs began
	gen    uint64                    // bumped by Set and Delete
	loads  singleflight.Group        // one load at a time per gen
}

// RegistryConfig configures a Registry. The zero value works.
type RegistryConfig struct {
	// ForceCloseMin and ForceCloseMax bound the random delay of a
	// force-close directive after a mismatch. Defaults 1 min and 10 min.
	ForceCloseMin, ForceCloseMax time.Duration
	// Now returns the current time; nil means time.Now. It dates entries
	// and directives.
	Now func() time.Time
	// Rand returns a uniform value in [0, n); tests pin it. Default
	// math/rand/v2's Int64N.
	Rand func(n int64) int64
	// Logger receives every mismatch. Nil: silent (the Monitor still
	// records it when the middleware is used).
	Logger *slog.Logger
	// CacheTTL, if positive, keeps the whole registry in process: Check
	// and CheckLogin answer from memory and load the registry again (one
	// ListSignatures, shared by the checks waiting for it) when the copy
	// is CacheTTL old. An entry set or deleted by another process (another
	// game server, an ops tool) takes effect here within CacheTTL of the
	// change plus one load; Set and Delete through this Registry take
	// effect here at once. A failed load fails the checks waiting for it,
	// as a failed read does without the cache. 0, the default: every
	// check reads the store (one GetSignature, two for a version without
	// an entry of its own).
	CacheTTL time.Duration
}

// NewRegistry returns a registry over store.
func NewRegistry(store SignatureStore, cfg RegistryConfig) *Registry {
	if cfg.ForceCloseMin <= 0 {
		cfg.ForceCloseMin = time.Minute
	}
	if cfg.ForceCloseMax <= 0 {
		cfg.ForceCloseMax = 10 * time.Minute
	}
	if cfg.ForceCloseMax < cfg.ForceCloseMin {
		cfg.ForceCloseMax = cfg.ForceCloseMin
	}
	cfg.Now = clock.OrNow(cfg.Now)
	if cfg.Rand == nil {
		cfg.Rand = rand.Int64N
	}
	return &Registry{store: store, cfg: cfg}
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// normHex lower-cases s and strips ':' separators (keytool prints
// "AB:CD:..."), then checks it is n hex digits.
func normHex(s string, n int) (string, bool) {
	s = strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), ":", ""))
	return s, isHex(s, n)
}

// maxCerts bounds a lineage.
const maxCerts = 16

// Set registers the signature of version ("x.y.z.w" or "latest"): the APK
// signature's MD5 (32 hex characters, may be empty when certs are given) and
// the certificate SHA-256 digests of its key-rotation lineage (64 hex
// characters each, colons allowed, at most 16). As in the talk's tool, an
// apkMD5 of "0" with no certs deletes the entry.
func (r *Registry) Set(ctx context.Context, version, apkMD5 string, certSHA256 ...string) error {
	v, err := CanonicalVersion(version)
	if err != nil {
		return err
	}
	if apkMD5 == "0" && len(certSHA256) == 0 {
		return r.changed(r.store.DeleteSignature(ctx, v))
	}
	e := SignatureEntry{Version: v, UpdatedAt: r.cfg.Now()}
	if apkMD5 != "" {
		m, ok := normHex(apkMD5, 32)
		if !ok {
			return newErr(ErrBadSignature, "APK MD5 must be 32 hex characters")
		}
		e.APKMD5 = m
	}
	if len(certSHA256) > maxCerts {
		return newErr(ErrBadSignature, "at most %d certificate digests", maxCerts)
	}
	for _, c := range certSHA256 {
		d, ok := normHex(c, 64)
		if !ok {
			return newErr(ErrBadSignature, "certificate digest must be 64 hex characters")
		}
		if !slices.Contains(e.CertSHA256, d) {
			e.CertSHA256 = append(e.CertSHA256, d)
		}
	}
	if e.APKMD5 == "" && len(e.CertSHA256) == 0 {
		return newErr(ErrBadSignature, "neither an APK MD5 nor a certificate digest")
	}
	return r.changed(r.store.PutSignature(ctx, e))
}

// Delete removes version's entry.
func (r *Registry) Delete(ctx context.Context, version string) error {
	v, err := CanonicalVersion(version)
	if err != nil {
		return err
	}
	return r.changed(r.store.DeleteSignature(ctx, v))
}

// changed drops the in-process copy after a write through this Registry
// (whatever its outcome: a failed write may have happened), so the next
// check loads the registry again, and a load already under way is not
// kept.
func (r *Registry) changed(err error) error {
	r.mu.Lock()
	r.gen++
	r.sigs = nil
	r.mu.Unlock()
	return err
}

// entry returns version's entry: from the in-process copy with CacheTTL,
// else from the store.
func (r *Registry) entry(ctx context.Context, version string) (SignatureEntry, bool, error) {
	if r.cfg.CacheTTL <= 0 {
		return r.store.GetSignature(ctx, version)
	}
	sigs, err := r.cached(ctx)
	if err != nil {
		return SignatureEntry{}, false, err
	}
	e, ok := sigs[version]
	return e, ok, nil
}

// cached returns the in-process copy, loading it when it is missing or
// CacheTTL old (or dated in the future: the clock went back).
func (r *Registry) cached(ctx context.Context) (map[string]SignatureEntry, error) {
	now := r.cfg.Now()
	r.mu.Lock()
	sigs, at, gen := r.sigs, r.sigsAt, r.gen
	r.mu.Unlock()
	if sigs != nil && now.Sub(at) < r.cfg.CacheTTL && !now.Before(at) {
		return sigs, nil
	}
	v, err, _ := r.loads.Do(strconv.FormatUint(gen, 10), func() (any, error) {
		start := r.cfg.Now()
		es, err := r.store.ListSignatures(ctx)
		if err != nil {
			return nil, err
		}
		m := make(map[string]SignatureEntry, len(es))
		for _, e := range es {
			m[e.Version] = e
		}
		r.mu.Lock()
		if r.gen == gen { // no Set or Delete since the load began
			r.sigs, r.sigsAt = m, start
		}
		r.mu.Unlock()
		return m, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(map[string]SignatureEntry), nil
}

// List returns every entry, highest version first ("latest" first of all).
func (r *Registry) List(ctx context.Context) ([]SignatureEntry, error) {
	es, err := r.store.ListSignatures(ctx)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(es, func(a, b SignatureEntry) int {
		c, _ := CompareVersions(b.Version, a.Version)
		return c
	})
	return es, nil
}

// Check compares what a client of version presented with the entry of that
// version, or of "latest" when the version has none. The APK MD5 must equal
// the registered one when both are present; every presented certificate
// digest must be in the registered lineage when both are present; and at
// least one of the two must have been compared, otherwise it is a mismatch.
// A malformed version is ErrBadVersion.
func (r *Registry) Check(ctx context.Context, version string, p Presented) (SignatureResult, error) {
	v, err := CanonicalVersion(version)
	if err != nil {
		return SignatureMismatch, err
	}
	e, ok, err := r.entry(ctx, v)
	if err != nil {
		return SignatureMismatch, err
	}
	if !ok && v != Latest {
		e, ok, err = r.entry(ctx, Latest)
		if err != nil {
			return SignatureMismatch, err
		}
	}
	if !ok {
		return SignatureUnknownVersion, nil
	}
	compared := false
	if p.APKMD5 != "" && e.APKMD5 != "" {
		m, _ := normHex(p.APKMD5, 32)
		if m != e.APKMD5 {
			return r.mismatch(ctx, version, "apk md5"), nil
		}
		compared = true
	}
	if len(p.CertSHA256) > 0 && len(e.CertSHA256) > 0 {
		if len(p.CertSHA256) > maxCerts {
			return r.mismatch(ctx, version, "too many certificates"), nil
		}
		for _, c := range p.CertSHA256 {
			d, _ := normHex(c, 64)
			if !slices.Contains(e.CertSHA256, d) {
				return r.mismatch(ctx, version, "certificate digest"), nil
			}
		}
		compared = true
	}
	if !compared {
		return r.mismatch(ctx, version, "nothing comparable presented"), nil
	}
	return SignatureOK, nil
}

func (r *Registry) mismatch(ctx context.Context, version, what string) SignatureResult {
	if r.cfg.Logger != nil {
		r.cfg.Logger.WarnContext(ctx, "anticheat: APK signature mismatch", "version", truncate(version, maxVersionLen), "field", what)
	}
	return SignatureMismatch
}

// ForceClose is the directive sent to a client whose signature did not
// match: close the app at At, a random time in the configured window, so a
// repackager cannot tell which request gave them away.
type ForceClose struct {
	At time.Time // when the client must close itself
}

// ForceCloseAt returns a directive at a random time in [ForceCloseMin,
// ForceCloseMax] from now.
func (r *Registry) ForceCloseAt() ForceClose {
	span := int64(r.cfg.ForceCloseMax - r.cfg.ForceCloseMin)
	d := r.cfg.ForceCloseMin
	if span > 0 {
		d += time.Duration(r.cfg.Rand(span + 1))
	}
	return ForceClose{At: r.cfg.Now().Add(d)}
}

// LoginSignature is a login's signature decision, from Registry.CheckLogin.
type LoginSignature struct {
	// Version is the client version checked (Latest for an empty one).
	Version string
	// Result is the registry's answer.
	Result SignatureResult
	// ForceClose is the directive for a mismatch: when the client must
	// close itself. Zero for other results.
	ForceClose ForceClose
}

// Verdict returns the hack-log verdict of the decision for the login's
// user (0 when it has no account yet): kind signature with reason
// signature_mismatch (detail: the force-close time) or unknown_version. ok
// is false for SignatureOK, which records nothing. The verdict's At is zero
// (Monitor.Report dates it).
func (s LoginSignature) Verdict(userKey int64) (v Verdict, ok bool) {
	v = Verdict{UserKey: userKey, Kind: KindSignature, ClientVersion: truncate(s.Version, maxVersionLen)}
	switch s.Result {
	case SignatureMismatch:
		v.Reason, v.Detail = ReasonSignatureMismatch, "close at "+s.ForceClose.At.UTC().Format(time.RFC3339)
	case SignatureUnknownVersion:
		v.Reason = ErrUnknownVersion.Reason
	default:
		return Verdict{}, false
	}
	return v, true
}

// CheckLogin is the signature check of a login, the one the Guard runs: it
// checks what a client of version presented (Check; an empty version
// checks the Latest entry) and, on a mismatch, picks the force-close
// directive (ForceCloseAt). The caller answers the login with
// s.ForceClose on a mismatch, and records s.Verdict(userKey) with
// Monitor.Report once the login knows its user, whether or not the login
// succeeded. A malformed version is ErrBadVersion; a store failure is
// returned as it is.
//
// Use it in a login middleware of your own that reads the signature from
// its own payload (the Guard reads it from LoginFields or
// GuardConfig.Signature).
func (r *Registry) CheckLogin(ctx context.Context, version string, p Presented) (LoginSignature, error) {
	if version == "" {
		version = Latest
	}
	res, err := r.Check(ctx, version, p)
	if err != nil {
		return LoginSignature{}, err
	}
	s := LoginSignature{Version: version, Result: res}
	if res == SignatureMismatch {
		s.ForceClose = r.ForceCloseAt()
	}
	return s, nil
}
