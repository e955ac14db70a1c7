package server

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/session"
)

const testXORKey = "game-test-key"

// lossyTransport runs every request on the server but loses the replies
// while lose is positive (one per request).
type lossyTransport struct {
	next protocol.Transport
	lose atomic.Int32
}

func (l *lossyTransport) RoundTrip(ctx context.Context, frame []byte) ([]byte, error) {
	reply, err := l.next.RoundTrip(ctx, frame)
	if err == nil && l.lose.Add(-1) >= 0 {
		return nil, &protocol.TransportError{Err: errors.New("connection reset (simulated)")}
	}
	return reply, err
}

// newGameServer starts a server on fresh databases (see testConfig).
func newGameServer(t *testing.T) (base string, srv *Server) {
	t.Helper()
	return startServerOn(t, testConfig(t))
}

// newClient returns an XOR client of base through a lossy transport (which
// loses nothing until told to).
func newClient(t *testing.T, base string) (*protocol.Client, *lossyTransport) {
	t.Helper()
	// An HTTP client of its own, whose idle connections are closed before
	// the server shuts down: http.Server.Shutdown waits up to 5 s for a
	// connection the client dialled but never used.
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	lossy := &lossyTransport{next: &protocol.HTTPTransport{URL: base + protocol.DefaultHTTPPath, Client: hc}}
	c, err := protocol.NewClient(protocol.ClientConfig{
		Transport: lossy, Codec: protocol.Config{XORKey: []byte(testXORKey)}, Mode: protocol.ModeXOR,
		RetryBackoff: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c, lossy
}

func login(t *testing.T, c *protocol.Client, device string) game.LoginResult {
	t.Helper()
	var res game.LoginResult
	in := game.GuestLogin{DeviceID: device, Platform: "android", ClientVersion: "1.0.0.0", Country: "KR", Language: "ko"}
	if _, err := c.Call(context.Background(), game.CmdGuestLogin, in, &res); err != nil {
		t.Fatalf("login %s: %v", device, err)
	}
	if res.Token == "" || res.KeyID == "" || res.UserKey <= 0 || res.ServerTime <= 0 {
		t.Fatalf("login %s: %+v", device, res)
	}
	c.SetSession(res.Token, nil)
	return res
}

func load(t *testing.T, c *protocol.Client) game.Player {
	t.Helper()
	var p game.Player
	if _, err := c.Call(context.Background(), game.CmdLoad, nil, &p); err != nil {
		t.Fatalf("load: %v", err)
	}
	return p
}

func codeOf(t *testing.T, err error) protocol.Code {
	t.Helper()
	var pe *protocol.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v is not a *protocol.Error", err)
	}
	return pe.Code
}

func TestLoginLoadBuy(t *testing.T) {
	ctx := context.Background()
	base, srv := newGameServer(t)
	c, _ := newClient(t, base)

	res := login(t, c, "device-a")
	if !res.NewUser || res.UserKey < EmbeddedKeyRange {
		t.Fatalf("first login: %+v", res)
	}
	p := load(t, c)
	if p.UserKey != res.UserKey || p.Gold != game.StartGold || p.Gems != game.StartGems || p.Stamina.Current != game.StaminaMax {
		t.Fatalf("new player: %+v", p)
	}

	var bought game.BuyResult
	resp, err := c.Call(ctx, game.CmdShopBuy, game.Buy{ItemID: "gold_small"}, &bought)
	if err != nil {
		t.Fatal(err)
	}
	item, _ := game.ShopItem("gold_small")
	wantGold, wantGems := int64(game.StartGold)+item.Gold, int64(game.StartGems)-item.Gems
	if resp.Replay || bought.Gold != wantGold || bought.Gems != wantGems {
		t.Fatalf("buy: %+v (replay %v)", bought, resp.Replay)
	}
	p = load(t, c)
	if p.Gold != wantGold || p.Gems != wantGems {
		t.Fatalf("after buy: %+v", p)
	}

	ledger, err := srv.game.Ledger(ctx, res.UserKey)
	if err != nil {
		t.Fatal(err)
	}
	if len(ledger) != 2 {
		t.Fatalf("ledger: %+v, want one row per currency", ledger)
	}
	want := map[string][2]int64{"gems": {-item.Gems, wantGems}, "gold": {item.Gold, wantGold}}
	for _, e := range ledger {
		w, ok := want[e.Currency]
		if !ok || e.Delta != w[0] || e.BalanceAfter != w[1] || e.RequestID != resp.RequestID || e.RequestID == "" || e.Reason != "shop:gold_small" {
			t.Errorf("ledger row %+v, want %v with request id %q", e, w, resp.RequestID)
		}
		delete(want, e.Currency)
	}

	// The same session in authenticated frames, with the key id and secret
	// from the login answer.
	secret, err := base64.StdEncoding.DecodeString(res.Secret)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := protocol.NewKeys([]byte(res.KeyID), secret)
	if err != nil {
		t.Fatal(err)
	}
	c.SetSession(res.Token, keys)
	if p2 := load(t, c); !reflect.DeepEqual(p2, p) {
		t.Fatalf("authenticated load: %+v, want %+v", p2, p)
	}
}

func TestBuyRetriedAfterLostReplyDebitsOnce(t *testing.T) {
	ctx := context.Background()
	base, srv := newGameServer(t)
	c, lossy := newClient(t, base)
	res := login(t, c, "device-lossy")

	lossy.lose.Store(1) // the purchase runs, its reply is lost, the client re-sends
	var bought game.BuyResult
	resp, err := c.Call(ctx, game.CmdShopBuy, game.Buy{ItemID: "gold_small"}, &bought)
	if err != nil {
		t.Fatal(err)
	}
	if lossy.lose.Load() >= 0 {
		t.Fatal("no reply was lost: the test did not test anything")
	}
	if !resp.Replay {
		t.Fatal("the retry was not answered as a replay")
	}
	item, _ := game.ShopItem("gold_small")
	if bought.Gems != game.StartGems-item.Gems {
		t.Fatalf("replayed result %+v", bought)
	}
	if p := load(t, c); p.Gems != game.StartGems-item.Gems || p.Gold != game.StartGold+item.Gold {
		t.Fatalf("after a retried buy: %+v (bought twice?)", p)
	}
	ledger, err := srv.game.Ledger(ctx, res.UserKey)
	if err != nil {
		t.Fatal(err)
	}
	if len(ledger) != 2 {
		t.Fatalf("ledger after a retried buy: %+v", ledger)
	}
}

func TestNotEnoughGemsIsADefinitiveAnswer(t *testing.T) {
	ctx := context.Background()
	base, srv := newGameServer(t)
	c, lossy := newClient(t, base)
	res := login(t, c, "device-poor")
	item, _ := game.ShopItem("gold_large")
	n := game.StartGems / item.Gems
	for i := int64(0); i < n; i++ {
		if _, err := c.Call(ctx, game.CmdShopBuy, game.Buy{ItemID: item.ID}, nil); err != nil {
			t.Fatalf("buy %d: %v", i, err)
		}
	}

	lossy.lose.Store(1) // the refusal is stored: the retry gets it replayed
	resp, err := c.Call(ctx, game.CmdShopBuy, game.Buy{ItemID: item.ID}, nil)
	if got := codeOf(t, err); got != game.CodeNotEnoughGems || got < protocol.CodeGameBase {
		t.Fatalf("code %v, want CodeNotEnoughGems", got)
	}
	if resp == nil || !resp.Replay || resp.Message != "not enough gems" {
		t.Fatalf("retried refusal: %+v", resp)
	}
	p := load(t, c)
	if p.Gems != game.StartGems-n*item.Gems || p.Gold != game.StartGold+n*item.Gold {
		t.Fatalf("after the refusal: %+v", p)
	}
	ledger, err := srv.game.Ledger(ctx, res.UserKey)
	if err != nil {
		t.Fatal(err)
	}
	if len(ledger) != int(2*n) {
		t.Fatalf("ledger: %d rows, want %d", len(ledger), 2*n)
	}

	_, err = c.Call(ctx, game.CmdShopBuy, game.Buy{ItemID: "no_such_item"}, nil)
	if got := codeOf(t, err); got != game.CodeUnknownItem {
		t.Fatalf("unknown item: code %v", got)
	}
}

func TestSecondLoginKicksTheFirst(t *testing.T) {
	ctx := context.Background()
	base, _ := newGameServer(t)
	first, _ := newClient(t, base)
	second, _ := newClient(t, base)
	a := login(t, first, "device-twice")
	load(t, first)
	b := login(t, second, "device-twice")
	if a.UserKey != b.UserKey || b.NewUser || a.Token == b.Token {
		t.Fatalf("logins %+v and %+v", a, b)
	}
	_, err := first.Call(ctx, game.CmdLoad, nil, nil)
	if got := codeOf(t, err); got != protocol.CodeKicked {
		t.Fatalf("first session after the second login: code %v, want kicked", got)
	}
	load(t, second)
}

func TestCommandsNeedASession(t *testing.T) {
	base, _ := newGameServer(t)
	c, _ := newClient(t, base)
	_, err := c.Call(context.Background(), game.CmdLoad, nil, nil)
	if got := codeOf(t, err); got != protocol.CodeUnauthorized {
		t.Fatalf("load without a session: code %v", got)
	}
	_, err = c.Call(context.Background(), game.CmdGuestLogin, game.GuestLogin{}, nil)
	if got := codeOf(t, err); got != protocol.CodeBadRequest {
		t.Fatalf("login without a device id: code %v", got)
	}
}

func TestRestartOnTheSameDataDir(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)

	srv1, err := New(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Three users spread over the databases (the emptiest gets the next).
	keys := map[string]int64{}
	for _, dev := range []string{"r1", "r2", "r3"} {
		res, _, err := srv1.game.Login(ctx, game.GuestLogin{DeviceID: dev})
		if err != nil {
			t.Fatal(err)
		}
		keys[dev] = res.UserKey
	}
	if err := srv1.Close(); err != nil {
		t.Fatal(err)
	}

	base, srv2 := startServerOn(t, cfg)
	dbs := srv2.store.router.Databases()
	if len(dbs) != EmbeddedGameDBs {
		t.Fatalf("directory after restart: %d databases, want %d", len(dbs), EmbeddedGameDBs)
	}
	wantDriver := "sqlite"
	if cfg.MySQLDSN != "" {
		wantDriver = "mysql"
	}
	for i, d := range dbs {
		if d.ID != i+1 || d.FirstKey != int64(i+1)*EmbeddedKeyRange || d.Driver != wantDriver {
			t.Errorf("database %+v, want driver %s", d, wantDriver)
		}
		if wantDriver == "mysql" && (d.DSN != "" || d.Host == "") {
			t.Errorf("MySQL directory row %+v: want host/port/name and no DSN (no credentials in the common database)", d)
		}
	}
	if _, isRedis := srv2.sessionBackend().(*session.RedisStore); isRedis != (cfg.RedisAddr != "") {
		t.Errorf("session store %T with RedisAddr %q", srv2.sessionBackend(), cfg.RedisAddr)
	}
	c, _ := newClient(t, base)
	for dev, key := range keys {
		res := login(t, c, dev)
		if res.UserKey != key || res.NewUser {
			t.Errorf("%s after restart: %+v, want user key %d", dev, res, key)
		}
	}
	if p := load(t, c); p.Gems != game.StartGems {
		t.Fatalf("player after restart: %+v", p)
	}
}

func TestConcurrentPurchasesNeverOverspend(t *testing.T) {
	ctx := context.Background()
	base, srv := newGameServer(t)
	c, _ := newClient(t, base)
	res := login(t, c, "device-rush")
	item, _ := game.ShopItem("gold_small")
	affordable := game.StartGems / item.Gems
	n := int(affordable) + 4

	count := callConcurrently(ctx, t, c, int(n), game.CmdShopBuy, game.Buy{ItemID: item.ID})
	if count[protocol.CodeOK] != int(affordable) || count[game.CodeNotEnoughGems] != n-int(affordable) {
		t.Fatalf("results %v, want %d ok and %d not enough gems", count, affordable, n-int(affordable))
	}
	p := load(t, c)
	if p.Gems != 0 || p.Gold != game.StartGold+affordable*item.Gold {
		t.Fatalf("after the rush: %+v", p)
	}
	ledger, err := srv.game.Ledger(ctx, res.UserKey)
	if err != nil {
		t.Fatal(err)
	}
	if len(ledger) != int(2*affordable) {
		t.Fatalf("ledger: %d rows, want %d", len(ledger), 2*affordable)
	}
}

func TestBlockedUserIsRefused(t *testing.T) {
	ctx := context.Background()
	base, srv := newGameServer(t)
	c, _ := newClient(t, base)
	res := login(t, c, "device-bad")
	if err := srv.guard.Monitor().Block(ctx, res.UserKey, time.Hour, "test"); err != nil {
		t.Fatal(err)
	}
	_, err := c.Call(ctx, game.CmdLoad, nil, nil)
	if got := codeOf(t, err); got != protocol.CodeBlocked {
		t.Fatalf("load while blocked: code %v", got)
	}
	_, err = c.Call(ctx, game.CmdGuestLogin, game.GuestLogin{DeviceID: "device-bad"}, nil)
	if got := codeOf(t, err); got != protocol.CodeBlocked {
		t.Fatalf("login while blocked: code %v", got)
	}
	if err := srv.guard.Monitor().Unblock(ctx, res.UserKey); err != nil {
		t.Fatal(err)
	}
	login(t, c, "device-bad")
	load(t, c)
}

func TestSpeedHackIsFlagged(t *testing.T) {
	base, srv := newGameServer(t)
	honest, _ := newClient(t, base)
	login(t, honest, "device-honest")
	for range 10 {
		load(t, honest)
	}
	if got := srv.guard.Stats().SpeedVerdicts; got != 0 {
		t.Fatalf("%d speed verdicts for an honest client", got)
	}
	// A client whose clock runs ahead by one more second on every reading:
	// the drift builds up gradually, as under a speed hack.
	var readings atomic.Int64
	fast := func() time.Time { return time.Now().Add(time.Duration(readings.Add(1)) * time.Second) }
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	c, err := protocol.NewClient(protocol.ClientConfig{
		Transport: &protocol.HTTPTransport{URL: base + protocol.DefaultHTTPPath, Client: hc}, Codec: protocol.Config{XORKey: []byte(testXORKey)}, Mode: protocol.ModeXOR, Now: fast,
	})
	if err != nil {
		t.Fatal(err)
	}
	login(t, c, "device-fast")
	for range 10 {
		if _, err := c.Call(context.Background(), CmdTime, nil, nil); err != nil {
			break // a policy may block the user: the verdict is what counts
		}
		if _, err := c.Call(context.Background(), game.CmdLoad, nil, nil); err != nil {
			break
		}
	}
	if got := srv.guard.Stats().SpeedVerdicts; got == 0 {
		t.Fatal("no speed verdict for a client clock running ahead")
	}
}

func TestConcurrentFirstStarts(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	scfg := storageConfig{DataDir: cfg.DataDir, MySQLDSN: cfg.MySQLDSN}
	const n = 3
	stores := make([]*storage, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = openStorage(ctx, scfg, nil)
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("start %d: %v", i, errs[i])
		}
		defer stores[i].Close()
	}
	dbs, err := stores[0].directory.Databases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(dbs) != EmbeddedGameDBs {
		t.Fatalf("%d directory rows after concurrent first starts, want %d", len(dbs), EmbeddedGameDBs)
	}
}

// callConcurrently calls cmd with in n times at once on c and counts the
// answers by result code (transport failures fail the test).
func callConcurrently(ctx context.Context, t *testing.T, c *protocol.Client, n int, cmd string, in any) map[protocol.Code]int {
	t.Helper()
	codes := make(chan protocol.Code, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Call(ctx, cmd, in, nil)
			var pe *protocol.Error
			switch {
			case err == nil:
				codes <- protocol.CodeOK
			case errors.As(err, &pe):
				codes <- pe.Code
			default:
				t.Errorf("%s: %v", cmd, err)
			}
		}()
	}
	wg.Wait()
	close(codes)
	count := map[protocol.Code]int{}
	for code := range codes {
		count[code]++
	}
	return count
}
