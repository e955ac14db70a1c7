package server

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/realtime"
)

// The game server mounts the realtime hub on /ws in the same process: a
// player logged in over HTTP connects with the session token, chats with
// another player, runs a game command through the same chain as HTTP, is
// disconnected when a newer login kicks the session, and is told
// going_away when the server shuts down.
func TestRealtimeHubOnWS(t *testing.T) {
	base, srv := newGameServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	wsURL := "ws" + strings.TrimPrefix(base, "http") + WSPath
	opts := &realtime.DialOptions{Mode: protocol.ModeXOR, Codec: protocol.Config{XORKey: []byte(testXORKey)}}

	ca, _ := newClient(t, base)
	a := login(t, ca, "ws-a")
	cb, _ := newClient(t, base)
	b := login(t, cb, "ws-b")
	wa, err := realtime.Dial(ctx, wsURL, a.Token, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer wa.Close()
	wb, err := realtime.Dial(ctx, wsURL, b.Token, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer wb.Close()

	for _, c := range []*realtime.Client{wa, wb} {
		if _, err := c.Subscribe(ctx, "world.0", nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := wa.Publish(ctx, "world.0", "hello"); err != nil {
		t.Fatal(err)
	}
	p, err := wb.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		From int64           `json:"from"`
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(p.Payload, &m); err != nil || p.Channel != "world.0" || m.From != a.UserKey || string(m.Data) != `"hello"` {
		t.Fatalf("chat push %+v (%s): %+v %v", p, p.Payload, m, err)
	}

	// A game command over the websocket runs through the session, anti-cheat
	// and live-ops chain like over HTTP.
	r, err := wa.Call(ctx, game.CmdLoad, nil)
	if err != nil || r.Code != protocol.CodeOK {
		t.Fatalf("player.load over /ws: %+v %v", r, err)
	}
	var pl game.Player
	if err := json.Unmarshal(r.Payload, &pl); err != nil || pl.UserKey != a.UserKey {
		t.Fatalf("player over /ws: %+v %v", pl, err)
	}

	// HTTP and the hub share one decode budget: a body above its free
	// 4 KiB is charged to the same budget on either transport.
	big := json.RawMessage(`{"pad":"` + strings.Repeat("x", 8<<10) + `"}`)
	charged := srv.decodeBudget.Stats().Charged
	if _, err := wa.Call(ctx, game.CmdLoad, big); err != nil {
		t.Fatal(err)
	}
	if _, err := ca.Do(ctx, game.CmdLoad, big); err != nil {
		t.Fatal(err)
	}
	if got := srv.decodeBudget.Stats().Charged; got != charged+2 {
		t.Fatalf("decode budget charged %d bodies for one large websocket and one large HTTP request", got-charged)
	}

	// Server pushes reach the player.
	if err := srv.hub.PushUser(ctx, b.UserKey, "notice", json.RawMessage(`"hi b"`)); err != nil {
		t.Fatal(err)
	}
	for {
		p, err := wb.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if p.Topic == "notice" {
			if string(p.Payload) != `"hi b"` {
				t.Fatalf("notice %s", p.Payload)
			}
			break
		}
	}

	// A second login of player b kicks its websocket.
	cb2, _ := newClient(t, base)
	login(t, cb2, "ws-b")
	select {
	case <-wb.Done():
	case <-ctx.Done():
		t.Fatal("kicked websocket not closed")
	}
	if code, _ := wb.CloseCode(); code != protocol.CodeKicked {
		t.Fatalf("kicked websocket closed with %v", code)
	}

	// Shutdown tells the remaining client going_away.
	sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
	defer scancel()
	if err := srv.shutdownHub(sctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-wa.Done():
	case <-ctx.Done():
		t.Fatal("websocket not closed at shutdown")
	}
	if code, _ := wa.CloseCode(); code != protocol.CodeGoingAway {
		t.Fatalf("closed at shutdown with %v", code)
	}
}

// A purchase over /ws carries a request id like one over HTTP: sent twice
// with the same id (the second time on a new connection, as after a lost
// answer) it debits once and the second answer is the stored one, a
// replay; the same id over HTTP is answered from the same record. Without
// a request id the idempotent command would be refused.
func TestBuyOverWebsocketTwiceDebitsOnce(t *testing.T) {
	base, srv := newGameServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second) // a deadline for a failure, not a speed check
	defer cancel()
	wsURL := "ws" + strings.TrimPrefix(base, "http") + WSPath
	opts := &realtime.DialOptions{Mode: protocol.ModeXOR, Codec: protocol.Config{XORKey: []byte(testXORKey)}}
	c, _ := newClient(t, base)
	res := login(t, c, "ws-buyer")
	dial := func() *realtime.Client {
		w, err := realtime.Dial(ctx, wsURL, res.Token, opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.Close() })
		return w
	}
	item, _ := game.ShopItem("gold_small")
	rid := protocol.NewRequestID()
	buy := func(w *realtime.Client) (game.BuyResult, *protocol.Response) {
		t.Helper()
		r, err := w.CallWith(ctx, game.CmdShopBuy, game.Buy{ItemID: item.ID}, protocol.CallOptions{RequestID: rid})
		if err != nil {
			t.Fatal(err)
		}
		if r.Code != protocol.CodeOK || r.RequestID != rid {
			t.Fatalf("shop.buy over /ws: %v %s (rid %q)", r.Code, r.Message, r.RequestID)
		}
		var out game.BuyResult
		if err := json.Unmarshal(r.Payload, &out); err != nil {
			t.Fatal(err)
		}
		return out, r
	}
	first, r1 := buy(dial())
	if r1.Replay || first.Gems != game.StartGems-item.Gems {
		t.Fatalf("first purchase: %+v replay %v", first, r1.Replay)
	}
	again, r2 := buy(dial())
	if !r2.Replay || !reflect.DeepEqual(again, first) {
		t.Fatalf("purchase re-sent with its request id: %+v replay %v, want %+v replayed", again, r2.Replay, first)
	}
	var viaHTTP game.BuyResult
	r3, err := c.CallWith(ctx, game.CmdShopBuy, game.Buy{ItemID: item.ID}, &viaHTTP, protocol.CallOptions{RequestID: rid})
	if err != nil || !r3.Replay || !reflect.DeepEqual(viaHTTP, first) {
		t.Fatalf("the same request id over HTTP: %+v replay %v %v", viaHTTP, r3 != nil && r3.Replay, err)
	}
	if p := load(t, c); p.Gems != game.StartGems-item.Gems || p.Gold != game.StartGold+item.Gold {
		t.Fatalf("after one purchase sent three times: %+v (bought twice?)", p)
	}
	ledger, err := srv.game.Ledger(ctx, res.UserKey)
	if err != nil {
		t.Fatal(err)
	}
	if len(ledger) != 2 { // gems out, gold in, once
		t.Fatalf("ledger after one purchase sent three times: %+v", ledger)
	}
}
