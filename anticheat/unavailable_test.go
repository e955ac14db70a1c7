package anticheat_test

import (
	"context"
	"testing"

	_ "github.com/go-sql-driver/mysql"

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/internal/testdb"
	"github.com/madang-io/madang/protocol"
)

// okVerifier accepts every receipt as transaction "t1" of product "p".
type okVerifier struct{}

func (okVerifier) Verify(context.Context, string, string) (anticheat.Purchase, error) {
	return anticheat.Purchase{TransactionID: "t1", ProductID: "p", Quantity: 1}, nil
}

// A SQL store whose database refuses connections: the block lookup of
// every request, and a receipt redemption, answer unavailable (41,
// retryable), never internal (40). Before the one classification they
// answered 40 with the driver's error.
func TestSQLStoreDownIsUnavailable(t *testing.T) {
	st := refusingStore(t)
	mon := anticheat.NewMonitor(anticheat.MonitorConfig{Log: st, Blocks: st})
	g := anticheat.NewGuard(anticheat.GuardConfig{Monitor: mon})
	calls := 0
	h := protocol.Chain(okHandler(&calls), g.Middleware())
	r := protocol.Dispatch(context.Background(), h, &protocol.Request{Command: "x", Principal: &protocol.Principal{UserKey: 1}}, nil)
	if r.Code != protocol.CodeUnavailable || calls != 0 {
		t.Fatalf("block lookup on a refused database: %+v (calls %d)", r, calls)
	}

	red, err := anticheat.NewRedeemer(anticheat.RedeemerConfig{Verifier: okVerifier{}, Redemptions: st})
	if err != nil {
		t.Fatal(err)
	}
	_, err = red.Redeem(context.Background(), 1, "1.0", anticheat.StoreApple, "r")
	if c := protocol.CodeOf(err); c != protocol.CodeUnavailable {
		t.Fatalf("redeem on a refused database: %v (%v)", c, err)
	}
	if _, err := mon.Report(context.Background(), anticheat.Verdict{UserKey: 1, Kind: anticheat.KindSpeed, Reason: "x"}); protocol.CodeOf(err) != protocol.CodeUnavailable {
		t.Fatalf("report on a refused database: %v", err)
	}

	// A bug (the tables were never created) stays internal.
	lite := testdb.SQLite(t, "notables")
	bug, err := anticheat.NewSQLStore(t.Context(), lite, anticheat.SQLConfig{})
	if err != nil {
		t.Fatal(err)
	}
	g2 := anticheat.NewGuard(anticheat.GuardConfig{Monitor: anticheat.NewMonitor(anticheat.MonitorConfig{Log: bug, Blocks: bug})})
	r = protocol.Dispatch(context.Background(), protocol.Chain(okHandler(&calls), g2.Middleware()), &protocol.Request{Command: "x", Principal: &protocol.Principal{UserKey: 1}}, nil)
	if r.Code != protocol.CodeInternal {
		t.Fatalf("missing tables: %+v", r)
	}
}
