package fault

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/examples/gameserver/server"
	"github.com/madang-io/madang/protocol"
)

const testXORKey = "faultrun-test-key"

// testRunner serves an embedded game server (SQLite, memory sessions, dev
// receipts) on 127.0.0.1:0 until the test ends, and returns a runner whose
// clients talk to it.
func testRunner(t *testing.T) *runner {
	t.Helper()
	srv, err := server.New(context.Background(), server.Config{
		DataDir: filepath.Join(t.TempDir(), "data"), XORKey: testXORKey, Dev: true, AdminAddr: server.AdminOff,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		<-done
		srv.Close()
	})
	w, err := newWire("http://"+ln.Addr().String()+protocol.DefaultHTTPPath, []byte(testXORKey), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	r := &runner{cfg: Config{}.Defaults(), id: "t" + randHex(3), wire: w}
	r.stats.loginCodes = map[protocol.Code]int{}
	return r
}

func loggedIn(t *testing.T, r *runner, idx int) *player {
	t.Helper()
	p := &player{idx: idx, device: r.id + "-device"}
	if err := r.login(context.Background(), p, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	return p
}

// runCopies runs req's n copies at once, as play does.
func runCopies(r *runner, p *player, req *Request, n int, deadline time.Time) {
	req.Copies = make([]*Copy, n)
	done := make(chan struct{}, n)
	for i := range req.Copies {
		c := &Copy{}
		req.Copies[i] = c
		go func() {
			r.runCopy(context.Background(), p, req, c, 1, deadline)
			done <- struct{}{}
		}()
	}
	for range n {
		<-done
	}
}

// Racing copies of one purchase: every copy ends OK with the same answer,
// one of them the first run and the others replays.
func TestRacingCopiesAnsweredOnce(t *testing.T) {
	r := testRunner(t)
	p := loggedIn(t, r, 0)
	req := &Request{RID: r.id + "-buy", Cmd: game.CmdShopBuy, UserKey: p.userKey, Payload: payload(game.Buy{ItemID: "gold_small"})}
	runCopies(r, p, req, 3, time.Now().Add(time.Minute))
	first := 0
	for i, c := range req.Copies {
		if c.End != EndOK {
			t.Fatalf("copy %d ended %v code %d (%v)", i, c.End, c.Code, c.Codes)
		}
		if !c.Replay {
			first++
		}
		if !jsonEqual(c.Payload, req.Copies[0].Payload) {
			t.Errorf("copy %d answered %s, copy 0 %s", i, c.Payload, req.Copies[0].Payload)
		}
	}
	if first != 1 {
		t.Errorf("%d copies ran the purchase, want 1", first)
	}
	var out game.BuyResult
	if err := json.Unmarshal(req.Copies[0].Payload, &out); err != nil || out.Gems != game.StartGems-10 {
		t.Errorf("answer %s (%v), want gems %d", req.Copies[0].Payload, err, game.StartGems-10)
	}
}

// A copy answered kicked logs in again and sends the same request again.
func TestCopyLogsInAgainAfterKick(t *testing.T) {
	r := testRunner(t)
	p := loggedIn(t, r, 0)
	old := p.token
	other := &player{idx: 0, device: p.device}
	if err := r.login(context.Background(), other, time.Now().Add(time.Minute)); err != nil { // kicks p's session
		t.Fatal(err)
	}
	req := &Request{RID: r.id + "-claim", Cmd: game.CmdMailClaimAll, UserKey: p.userKey}
	runCopies(r, p, req, 1, time.Now().Add(time.Minute))
	c := req.Copies[0]
	if c.End != EndOK || c.Relogins != 1 || c.Codes[protocol.CodeKicked] != 1 {
		t.Fatalf("ended %v, relogins %d, answers %v; want ok after one kicked and one login", c.End, c.Relogins, c.Codes)
	}
	if p.currentToken() == old {
		t.Error("the token was not replaced")
	}
	var out game.ClaimResult
	if err := json.Unmarshal(c.Payload, &out); err != nil || len(out.MailIDs) != 1 {
		t.Errorf("claim answered %s (%v), want the welcome mail", c.Payload, err)
	}
}

// A final code ends a copy at once; a server that never answers makes it
// give up at its deadline.
func TestCopyRefusedAndGaveUp(t *testing.T) {
	r := testRunner(t)
	p := loggedIn(t, r, 0)
	req := &Request{RID: r.id + "-unknown", Cmd: game.CmdShopBuy, UserKey: p.userKey, Payload: payload(game.Buy{ItemID: unknownItem})}
	runCopies(r, p, req, 2, time.Now().Add(time.Minute))
	for i, c := range req.Copies {
		if c.End != EndRefused || c.Code != game.CodeUnknownItem || c.Sends != 1 {
			t.Errorf("copy %d ended %v code %d after %d sends, want refused %d after 1", i, c.End, c.Code, c.Sends, game.CodeUnknownItem)
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nobody listens there now
	if r.wire, err = newWire("http://"+addr+protocol.DefaultHTTPPath, []byte(testXORKey), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	req = &Request{RID: r.id + "-lost", Cmd: game.CmdShopBuy, UserKey: p.userKey, Payload: payload(game.Buy{ItemID: "gold_small"})}
	runCopies(r, p, req, 1, time.Now().Add(time.Second))
	if c := req.Copies[0]; c.End != EndGaveUp || c.Lost == 0 || c.Lost != c.Sends || c.Code != -1 {
		t.Errorf("ended %v, %d of %d lost, code %d; want gave up with every reply lost", c.End, c.Lost, c.Sends, c.Code)
	}
}
