package anticheat_test

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/anticheat/anticheattest"
	"github.com/madang-io/madang/protocol"
)

// A client whose clock runs twice as fast is caught within seconds.
func ExampleSpeedChecker() {
	c := anticheat.NewSpeedChecker(anticheat.SpeedConfig{})
	start := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for i := range 20 {
		server := start.Add(time.Duration(i) * time.Second)
		client := start.Add(2 * time.Duration(i) * time.Second)
		if r := c.Observe(42, "session", client.UnixMilli(), server); r.Flagged() {
			fmt.Printf("after %d s: %s, drift %v\n", i, r.Reason, r.Drift)
			break
		}
	}
	// Output: after 4 s: drift_ahead, drift 4s
}

func ExampleStatChecker() {
	c := anticheat.NewStatChecker(
		anticheat.Linear(anticheat.StatAttack, 100, 12), // 100 + 12 per level
		anticheat.MaxRate(anticheat.StatDamage, anticheat.StatPlayTime, 800),
	)
	r := &anticheat.Report{Level: 10, Values: map[anticheat.Stat]float64{
		anticheat.StatAttack: 999, anticheat.StatDamage: 90000, anticheat.StatPlayTime: 60,
	}}
	for _, v := range c.Check(r) {
		fmt.Println(v)
	}
	// Output:
	// stat_above attack=999 limit=220
	// stat_rate damage/play_time=1500 limit=800
}

func ExampleRegistry() {
	ctx := context.Background()
	reg := anticheat.NewRegistry(anticheat.NewMemoryStore(anticheat.MemoryConfig{}), anticheat.RegistryConfig{})
	_ = reg.Set(ctx, "1.4.2.0", "0123456789abcdef0123456789abcdef")
	_ = reg.Set(ctx, "latest", "fedcba9876543210fedcba9876543210")

	ok, _ := reg.Check(ctx, "1.4.2.0", anticheat.Presented{APKMD5: "0123456789abcdef0123456789abcdef"})
	repacked, _ := reg.Check(ctx, "1.4.2.0", anticheat.Presented{APKMD5: "00000000000000000000000000000000"})
	fallback, _ := reg.Check(ctx, "1.5.0.0", anticheat.Presented{APKMD5: "fedcba9876543210fedcba9876543210"})
	_ = reg.Set(ctx, "latest", "0") // the talk's tool: "0" deletes
	unknown, _ := reg.Check(ctx, "1.5.0.0", anticheat.Presented{APKMD5: "fedcba9876543210fedcba9876543210"})
	newer, _ := anticheat.CompareVersions("10.0.0", "9.0.0")
	fmt.Println(ok, repacked, fallback, unknown, newer)
	// Output: ok mismatch ok unknown_version 1
}

// A login middleware of your own (the Guard runs the same check): check
// the signature the client sent, answer the force-close directive, and
// record the verdict once the login knows its user.
func ExampleRegistry_CheckLogin() {
	ctx := context.Background()
	store := anticheat.NewMemoryStore(anticheat.MemoryConfig{})
	reg := anticheat.NewRegistry(store, anticheat.RegistryConfig{})
	mon := anticheat.NewMonitor(anticheat.MonitorConfig{Log: store, Blocks: store})
	_ = reg.Set(ctx, "latest", "0123456789abcdef0123456789abcdef")

	sig, err := reg.CheckLogin(ctx, "1.4.2", anticheat.Presented{APKMD5: "ffffffffffffffffffffffffffffffff"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(sig.Result, "force close:", !sig.ForceClose.At.IsZero())
	// ... the login handler runs and logs in user 42 ...
	if v, ok := sig.Verdict(42); ok {
		_, _ = mon.Report(ctx, v)
	}
	counts, _ := mon.Log().UserCounts(ctx, 42)
	fmt.Println("signature verdicts:", counts[anticheat.KindSignature])
	// Output:
	// mismatch force close: true
	// signature verdicts: 1
}

// The Guard in a protocol chain: the fifth speed verdict blocks the user.
func ExampleGuard() {
	start := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	mon := anticheat.NewMonitor(anticheat.MonitorConfig{Now: func() time.Time { return start }})
	g := anticheat.NewGuard(anticheat.GuardConfig{Monitor: mon})
	h := protocol.Chain(protocol.HandlerFunc(func(context.Context, *protocol.Request) (*protocol.Response, error) {
		return nil, nil
	}), g.Middleware())
	p := &protocol.Principal{UserKey: 42, SessionID: "s"}
	for i := range 100 {
		at := start.Add(time.Duration(i) * time.Second)
		req := &protocol.Request{Command: "stage.clear", ClientTime: at.Add(time.Duration(i) * time.Second).UnixMilli(), ReceivedAt: at, Principal: p}
		if resp := protocol.Dispatch(context.Background(), h, req, nil); resp.Code != protocol.CodeOK {
			fmt.Println("request", i, "->", resp.Code)
			break
		}
	}
	counts, _ := mon.Log().UserCounts(context.Background(), 42)
	fmt.Println("speed verdicts:", counts[anticheat.KindSpeed])
	// Output:
	// request 20 -> blocked
	// speed verdicts: 5
}

func ExampleRedeemer() {
	ctx := context.Background()
	fake := anticheattest.NewVerifier()
	fake.Add("receipt-1", anticheat.Purchase{TransactionID: "2000000123", ProductID: "gems_100"})
	rd, _ := anticheat.NewRedeemer(anticheat.RedeemerConfig{
		Verifier:    anticheat.StoreVerifiers{anticheat.StoreApple: fake},
		Redemptions: anticheat.NewMemoryStore(anticheat.MemoryConfig{}),
	})
	r, _ := rd.Redeem(ctx, 10, "1.4.2.0", anticheat.StoreApple, "receipt-1")
	fmt.Println("grant:", r.First, r.Purchase.ProductID)
	r, _ = rd.Redeem(ctx, 10, "1.4.2.0", anticheat.StoreApple, "receipt-1")
	fmt.Println("retry grants again:", r.First)
	_, err := rd.Redeem(ctx, 11, "1.4.2.0", anticheat.StoreApple, "receipt-1")
	fmt.Println("other account:", protocol.CodeOf(err))
	// Output:
	// grant: true gems_100
	// retry grants again: false
	// other account: receipt_used
}

func ExampleIntegrityPolicy() {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	cert := "1111111111111111111111111111111111111111111111111111111111111111"
	pol := &anticheat.IntegrityPolicy{PackageName: "io.madang.game", CertSHA256: []string{cert},
		MinDevice: anticheat.DeviceIntegrity, Now: func() time.Time { return now }}
	v := anticheattest.GoodVerdict("io.madang.game", cert, "req-hash", now.Add(-30*time.Second))
	fmt.Println(pol.Check(&v, anticheat.Expect{RequestHash: "req-hash"}))
	v.DeviceIntegrity.DeviceRecognitionVerdict = []string{"MEETS_BASIC_INTEGRITY"}
	err := pol.Check(&v, anticheat.Expect{RequestHash: "req-hash"})
	fmt.Println(err, protocol.CodeOf(err))
	// Output:
	// <nil>
	// anticheat: integrity_device: device labels [MEETS_BASIC_INTEGRITY] forbidden
}

func ExampleMonitor() {
	ctx := context.Background()
	day := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	mon := anticheat.NewMonitor(anticheat.MonitorConfig{Now: func() time.Time { return day.Add(time.Hour) }})
	for _, v := range []anticheat.Verdict{
		{UserKey: 1, Kind: anticheat.KindSpeed, Reason: anticheat.ReasonDriftAhead},
		{UserKey: 1, Kind: anticheat.KindStat, Reason: anticheat.ReasonStatAbove},
		{UserKey: 2, Kind: anticheat.KindSpeed, Reason: anticheat.ReasonDriftAhead},
	} {
		_, _ = mon.Report(ctx, v)
	}
	perDay, _ := mon.Log().DailyCounts(ctx, day, day.Add(24*time.Hour))
	for _, d := range perDay {
		fmt.Println(d.Day.Format("2006-01-02"), d.Kind, d.Count)
	}
	top, _ := mon.Log().TopOffenders(ctx, day, 10)
	b, _ := json.Marshal(top)
	fmt.Println(string(b))
	// Output:
	// 2026-11-25 speed 2
	// 2026-11-25 stat 1
	// [{"UserKey":1,"Count":2},{"UserKey":2,"Count":1}]
}
