package anticheat_test

import (
	"context"
	"errors"
	"github.com/madang-io/madang/anticheat/anticheattest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/internal/testdb"
)

func TestCompareVersions(t *testing.T) {
	cases := []struct {
		a, b string
		want int
	}{
		{"10.0.0", "9.0.0", 1},
		{"1.2", "1.2.0.0", 0},
		{"1.02.3", "1.2.3", 0},
		{"1.2.3.4", "1.2.3.5", -1},
		{"1.10.0.0", "1.9.9.9", 1},
		{"latest", "999.0.0.0", 1},
		{"1.0", "LATEST", -1},
		{"latest", "latest", 0},
	}
	for _, c := range cases {
		got, err := anticheat.CompareVersions(c.a, c.b)
		if err != nil || got != c.want {
			t.Errorf("CompareVersions(%q, %q) = %d, %v; want %d", c.a, c.b, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "1..2", "1.2.3.4.5", "a.b", "-1.0", "+1.0", "1.2.", strings.Repeat("1", 40), "1.9999999999"} {
		if _, err := anticheat.CompareVersions(bad, "1.0"); !errors.Is(err, anticheat.ErrBadVersion) {
			t.Errorf("%q: %v", bad, err)
		}
		if _, err := anticheat.CompareVersions("latest", bad); !errors.Is(err, anticheat.ErrBadVersion) {
			t.Errorf("latest vs %q: %v", bad, err)
		}
	}
	if v, _ := anticheat.CanonicalVersion("01.2"); v != "1.2.0.0" {
		t.Fatalf("canonical %q", v)
	}
}

const (
	md5A  = "0123456789abcdef0123456789abcdef"
	md5B  = "fedcba9876543210fedcba9876543210"
	certO = "1111111111111111111111111111111111111111111111111111111111111111"
	certN = "2222222222222222222222222222222222222222222222222222222222222222"
	certX = "9999999999999999999999999999999999999999999999999999999999999999"
)

func testRegistry(t *testing.T, store anticheat.SignatureStore) {
	for _, ttl := range []time.Duration{0, time.Minute} {
		testRegistryTTL(t, store, ttl)
	}
}

func testRegistryTTL(t *testing.T, store anticheat.SignatureStore, ttl time.Duration) {
	ctx := context.Background()
	r := anticheat.NewRegistry(store, anticheat.RegistryConfig{Now: func() time.Time { return t0 }, CacheTTL: ttl})
	check := func(version string, p anticheat.Presented, want anticheat.SignatureResult) {
		t.Helper()
		got, err := r.Check(ctx, version, p)
		if err != nil || got != want {
			t.Fatalf("Check(%q, %+v) = %v, %v; want %v", version, p, got, err, want)
		}
	}
	check("1.0.0.0", anticheat.Presented{APKMD5: md5A}, anticheat.SignatureUnknownVersion)
	if err := r.Set(ctx, "1.0.0.0", strings.ToUpper(md5A)); err != nil {
		t.Fatal(err)
	}
	// Colon-separated upper-case digests as keytool prints them.
	colon := strings.ToUpper(certN[:2]) + ":" + certN[2:]
	if err := r.Set(ctx, "2.0", "", certO, colon); err != nil {
		t.Fatal(err)
	}
	if err := r.Set(ctx, "latest", md5B); err != nil {
		t.Fatal(err)
	}
	check("1.0.0.0", anticheat.Presented{APKMD5: md5A}, anticheat.SignatureOK)
	check("1.0", anticheat.Presented{APKMD5: strings.ToUpper(md5A)}, anticheat.SignatureOK)
	check("1.0.0.0", anticheat.Presented{APKMD5: md5B}, anticheat.SignatureMismatch)
	check("1.0.0.0", anticheat.Presented{}, anticheat.SignatureMismatch)
	check("1.0.0.0", anticheat.Presented{CertSHA256: []string{certO}}, anticheat.SignatureMismatch) // nothing comparable
	check("2.0.0.0", anticheat.Presented{CertSHA256: []string{certN}}, anticheat.SignatureOK)
	check("2.0.0.0", anticheat.Presented{CertSHA256: []string{certO, certN}}, anticheat.SignatureOK)
	check("2.0.0.0", anticheat.Presented{APKMD5: md5A, CertSHA256: []string{certN}}, anticheat.SignatureOK) // md5 not registered
	check("2.0.0.0", anticheat.Presented{CertSHA256: []string{certN, certX}}, anticheat.SignatureMismatch)
	check("3.0.0.0", anticheat.Presented{APKMD5: md5B}, anticheat.SignatureOK) // latest
	check("3.0.0.0", anticheat.Presented{APKMD5: md5A}, anticheat.SignatureMismatch)
	list, err := r.List(ctx)
	if err != nil || len(list) != 3 || list[0].Version != "latest" || list[1].Version != "2.0.0.0" || list[2].Version != "1.0.0.0" {
		t.Fatalf("list %+v %v", list, err)
	}
	if list[1].CertSHA256[1] != certN || !list[1].UpdatedAt.Equal(t0) {
		t.Fatalf("entry %+v", list[1])
	}
	// The talk's tool: "0" deletes.
	if err := r.Set(ctx, "latest", "0"); err != nil {
		t.Fatal(err)
	}
	check("3.0.0.0", anticheat.Presented{APKMD5: md5B}, anticheat.SignatureUnknownVersion)
	if err := r.Delete(ctx, "1.0.0.0"); err != nil {
		t.Fatal(err)
	}
	check("1.0.0.0", anticheat.Presented{APKMD5: md5A}, anticheat.SignatureUnknownVersion)
}

func TestRegistryMemory(t *testing.T) {
	testRegistry(t, anticheat.NewMemoryStore(anticheat.MemoryConfig{}))
}

func TestRegistrySQL(t *testing.T) {
	for _, b := range testdb.Backends() {
		t.Run(b.Name, func(t *testing.T) { testRegistry(t, newSQLStore(t, b)) })
	}
}

func TestRegistryForceClose(t *testing.T) {
	f := anticheattest.NewClock(t0)
	var asked int64
	r := anticheat.NewRegistry(anticheat.NewMemoryStore(anticheat.MemoryConfig{}), anticheat.RegistryConfig{
		Now: f.Now, ForceCloseMin: time.Minute, ForceCloseMax: 3 * time.Minute,
		Rand: func(n int64) int64 { asked = n; return n / 2 },
	})
	fc := r.ForceCloseAt()
	if asked != int64(2*time.Minute)+1 || !fc.At.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("asked %d, at %v", asked, fc.At)
	}
	// The default random source stays in the window.
	r = anticheat.NewRegistry(anticheat.NewMemoryStore(anticheat.MemoryConfig{}), anticheat.RegistryConfig{Now: f.Now})
	for range 100 {
		d := r.ForceCloseAt().At.Sub(t0)
		if d < time.Minute || d > 10*time.Minute {
			t.Fatalf("delay %v outside the default window", d)
		}
	}
}

func TestRegistryCheckLogin(t *testing.T) {
	ctx := context.Background()
	r := anticheat.NewRegistry(anticheat.NewMemoryStore(anticheat.MemoryConfig{}), anticheat.RegistryConfig{
		ForceCloseMin: time.Minute, ForceCloseMax: 3 * time.Minute,
		Rand: func(n int64) int64 { return n - 1 }, // the window's end
	})
	const good, bad = "0123456789abcdef0123456789abcdef", "ffffffffffffffffffffffffffffffff"
	if err := r.Set(ctx, "1.0", good); err != nil {
		t.Fatal(err)
	}
	// A version without an entry (and no "latest"): unknown, recorded as such.
	s, err := r.CheckLogin(ctx, "2.0", anticheat.Presented{APKMD5: good})
	if err != nil || s.Result != anticheat.SignatureUnknownVersion || !s.ForceClose.At.IsZero() {
		t.Fatalf("unknown version: %+v %v", s, err)
	}
	if v, ok := s.Verdict(7); !ok || v.UserKey != 7 || v.Kind != anticheat.KindSignature || v.Reason != anticheat.ErrUnknownVersion.Reason || v.ClientVersion != "2.0" {
		t.Fatalf("unknown version verdict %+v %v", v, ok)
	}
	// Genuine: nothing to record.
	if s, err := r.CheckLogin(ctx, "1.0", anticheat.Presented{APKMD5: good}); err != nil || s.Result != anticheat.SignatureOK {
		t.Fatalf("genuine: %+v %v", s, err)
	} else if v, ok := s.Verdict(7); ok {
		t.Fatalf("genuine login gave a verdict %+v", v)
	}
	// Repackaged: a force-close directive in the window, and a verdict
	// that carries it.
	before := time.Now()
	s, err = r.CheckLogin(ctx, "1.0", anticheat.Presented{APKMD5: bad})
	if err != nil || s.Result != anticheat.SignatureMismatch {
		t.Fatalf("repackaged: %+v %v", s, err)
	}
	if d := s.ForceClose.At.Sub(before); d < 3*time.Minute-time.Second || d > 3*time.Minute+time.Minute {
		t.Fatalf("force close %v after the check, want about 3m", d)
	}
	v, ok := s.Verdict(0)
	if !ok || v.Reason != anticheat.ReasonSignatureMismatch || !strings.Contains(v.Detail, s.ForceClose.At.UTC().Format(time.RFC3339)) || !v.At.IsZero() {
		t.Fatalf("mismatch verdict %+v %v", v, ok)
	}
	// An empty version checks the "latest" entry.
	if s, err := r.CheckLogin(ctx, "", anticheat.Presented{APKMD5: good}); err != nil || s.Result != anticheat.SignatureUnknownVersion || s.Version != anticheat.Latest {
		t.Fatalf("empty version without latest: %+v %v", s, err)
	}
	if err := r.Set(ctx, anticheat.Latest, good); err != nil {
		t.Fatal(err)
	}
	if s, err := r.CheckLogin(ctx, "", anticheat.Presented{APKMD5: good}); err != nil || s.Result != anticheat.SignatureOK {
		t.Fatalf("empty version with latest: %+v %v", s, err)
	}
	// A malformed version is the client's error.
	if _, err := r.CheckLogin(ctx, "1..2", anticheat.Presented{APKMD5: good}); !errors.Is(err, anticheat.ErrBadVersion) {
		t.Fatalf("malformed version: %v", err)
	}
}

// countingSigs counts a SignatureStore's reads.
type countingSigs struct {
	anticheat.SignatureStore
	reads atomic.Int64
}

func (c *countingSigs) GetSignature(ctx context.Context, v string) (anticheat.SignatureEntry, bool, error) {
	c.reads.Add(1)
	return c.SignatureStore.GetSignature(ctx, v)
}

func (c *countingSigs) ListSignatures(ctx context.Context) ([]anticheat.SignatureEntry, error) {
	c.reads.Add(1)
	return c.SignatureStore.ListSignatures(ctx)
}

// TestRegistryCacheTTL: with CacheTTL, checks read the store once per TTL;
// an entry another process sets is seen here once the copy is CacheTTL
// old, one set through this Registry at once.
func TestRegistryCacheTTL(t *testing.T) {
	ctx := context.Background()
	mem := anticheat.NewMemoryStore(anticheat.MemoryConfig{})
	store := &countingSigs{SignatureStore: mem}
	clk := anticheattest.NewClock(t0)
	const ttl = 5 * time.Second
	r := anticheat.NewRegistry(store, anticheat.RegistryConfig{Now: clk.Now, CacheTTL: ttl})
	ops := anticheat.NewRegistry(mem, anticheat.RegistryConfig{Now: clk.Now}) // another process
	if err := ops.Set(ctx, "1.0", md5A); err != nil {
		t.Fatal(err)
	}
	check := func(version, md5 string, want anticheat.SignatureResult) {
		t.Helper()
		if got, err := r.Check(ctx, version, anticheat.Presented{APKMD5: md5}); err != nil || got != want {
			t.Fatalf("Check(%s, %s) = %v, %v; want %v", version, md5, got, err, want)
		}
	}
	for range 10 {
		check("1.0", md5A, anticheat.SignatureOK)
		check("9.0", md5A, anticheat.SignatureUnknownVersion) // no entry, no latest
	}
	if n := store.reads.Load(); n != 1 {
		t.Fatalf("%d store reads for 20 checks, want 1", n)
	}
	// Another process changes the entry: seen within the TTL, not before
	// (the copy is kept that long).
	if err := ops.Set(ctx, "1.0", md5B); err != nil {
		t.Fatal(err)
	}
	clk.Advance(ttl - time.Millisecond)
	check("1.0", md5A, anticheat.SignatureOK)
	clk.Advance(time.Millisecond)
	check("1.0", md5B, anticheat.SignatureOK)
	check("1.0", md5A, anticheat.SignatureMismatch)
	if n := store.reads.Load(); n != 2 {
		t.Fatalf("%d store reads after one TTL, want 2", n)
	}
	// A change through the cached Registry itself: at once.
	if err := r.Set(ctx, "latest", md5B); err != nil {
		t.Fatal(err)
	}
	check("9.0", md5B, anticheat.SignatureOK)
	if err := r.Delete(ctx, "latest"); err != nil {
		t.Fatal(err)
	}
	check("9.0", md5B, anticheat.SignatureUnknownVersion)
	// A clock that went back does not keep the copy forever.
	if err := ops.Set(ctx, "latest", md5A); err != nil {
		t.Fatal(err)
	}
	clk.Set(t0.Add(-time.Hour))
	check("9.0", md5A, anticheat.SignatureOK)
}
