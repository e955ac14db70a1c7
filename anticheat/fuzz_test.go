package anticheat_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/anticheat/anticheattest"
	"github.com/madang-io/madang/protocol"
)

// Seed corpora are in testdata/fuzz/<name>.

func FuzzCompareVersions(f *testing.F) {
	f.Add("10.0.0", "9.0.0")
	f.Fuzz(func(t *testing.T, a, b string) {
		ab, errA := anticheat.CompareVersions(a, b)
		ba, errB := anticheat.CompareVersions(b, a)
		if (errA == nil) != (errB == nil) {
			t.Fatalf("errors differ: %v / %v", errA, errB)
		}
		if errA == nil && ab != -ba {
			t.Fatalf("not antisymmetric: %d %d", ab, ba)
		}
		if c, err := anticheat.CanonicalVersion(a); err == nil {
			if again, err := anticheat.CanonicalVersion(c); err != nil || again != c {
				t.Fatalf("canonical of %q: %q then %q (%v)", a, c, again, err)
			}
		}
	})
}

func FuzzAppleVerify(f *testing.F) {
	ca := anticheattest.NewAppleCA(f, t0)
	v, err := anticheat.NewAppleVerifier(anticheat.AppleVerifierConfig{Root: ca.Root, BundleID: "io.madang.game", Now: func() time.Time { return t0 }})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ca.Sign(f, goodTx()))
	f.Fuzz(func(t *testing.T, jws string) {
		p, err := v.Verify(context.Background(), "apple", jws)
		if err == nil && p.TransactionID == "" {
			t.Fatal("verified without a transaction id")
		}
		if err != nil && protocol.CodeOf(err) == protocol.CodeInternal {
			t.Fatalf("untyped error: %v", err)
		}
	})
}

func FuzzGuardLogin(f *testing.F) {
	store := anticheat.NewMemoryStore(anticheat.MemoryConfig{})
	reg := anticheat.NewRegistry(store, anticheat.RegistryConfig{})
	if err := reg.Set(context.Background(), "1.0.0.0", md5A, certO); err != nil {
		f.Fatal(err)
	}
	g := anticheat.NewGuard(anticheat.GuardConfig{Registry: reg, Monitor: anticheat.NewMonitor(anticheat.MonitorConfig{Log: store, Blocks: store})})
	h := g.Middleware()(protocol.HandlerFunc(func(context.Context, *protocol.Request) (*protocol.Response, error) {
		return &protocol.Response{Payload: json.RawMessage(`{"ok":true}`)}, nil
	}))
	f.Add([]byte(testSig))
	f.Fuzz(func(t *testing.T, payload []byte) {
		resp, err := h.Serve(context.Background(), &protocol.Request{Command: "login", Payload: payload})
		if err != nil {
			if c := protocol.CodeOf(err); c != protocol.CodeBadRequest {
				t.Fatalf("code %v: %v", c, err)
			}
			return
		}
		if !json.Valid(resp.Payload) {
			t.Fatalf("invalid response payload %q", resp.Payload)
		}
	})
}
