package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/session/sessiontest"
	"github.com/madang-io/madang/shard/shardtest"
)

// cutProxy is a TCP proxy the test controls, in front of a backend: Cut
// closes every proxied connection (as a crashed or unreachable server
// does) and makes new ones close at once; Restore proxies again. The
// backend itself (a shared service) is never touched.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func startCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.Cut()
		p.wg.Wait()
	})
	return p
}

func (p *cutProxy) Addr() string { return p.ln.Addr().String() }

func (p *cutProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		b, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			c.Close()
			b.Close()
			continue
		}
		p.conns[c], p.conns[b] = struct{}{}, struct{}{}
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			defer p.wg.Done()
			_, _ = io.Copy(dst, src)
			dst.Close()
			src.Close()
			p.mu.Lock()
			delete(p.conns, dst)
			delete(p.conns, src)
			p.mu.Unlock()
		}
		p.wg.Add(2)
		go pipe(b, c)
		go pipe(c, b)
	}
}

// Cut closes every proxied connection and refuses new ones.
func (p *cutProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
}

// Restore proxies new connections again.
func (p *cutProxy) Restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// codeCounts counts the answers clients got, by code.
type codeCounts struct {
	mu sync.Mutex
	m  map[protocol.Code]int
}

func (c *codeCounts) add(code protocol.Code) {
	c.mu.Lock()
	c.m[code]++
	c.mu.Unlock()
}

func (c *codeCounts) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var keys []int
	for k := range c.m {
		keys = append(keys, int(k))
	}
	sort.Ints(keys)
	s := ""
	for _, k := range keys {
		s += fmt.Sprintf(" %v:%d", protocol.Code(k), c.m[protocol.Code(k)])
	}
	return s
}

// MariaDB (the common and every game database) and then Redis (sessions,
// rankings) go down in the middle of play, behind TCP proxies the test
// cuts: every answer players get while a backend is down is unavailable
// (41) or timeout (42) — retryable, as docs/FAILURES.md promises — never
// internal (40); and play goes on once the backend is back. Before the one
// classification, the dead database's errors reached players as 40.
func TestBackendDownMidPlayIsNeverInternal(t *testing.T) {
	ctx := context.Background()
	began := time.Now()
	dsn := shardtest.MySQL().NewDSN(t)
	rc := sessiontest.Redis(t)
	mc, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	dbProxy := startCutProxy(t, mc.Addr)
	redisProxy := startCutProxy(t, rc.Options().Addr)
	mc.Addr = dbProxy.Addr()
	cfg := Config{XORKey: testXORKey, Dev: true, LiveOpsPoll: -1,
		MySQLDSN: mc.FormatDSN(), RedisAddr: redisProxy.Addr(), RedisPrefix: sessiontest.RedisPrefix(t, rc)}
	dropGameDBs(t, dsn, EmbeddedGameDBs)
	base, _ := startServerOn(t, cfg)
	t.Logf("server up after %v", time.Since(began).Round(time.Millisecond))

	// Clients that send each request once: the test sees every answer.
	const players = 4
	clients := make([]*protocol.Client, players)
	for i := range clients {
		clients[i] = floodClient(t, base)
		login(t, clients[i], fmt.Sprintf("outage-%d", i))
	}

	var iap atomic.Int64
	// One round of play: every kind of command, a login among them.
	round := func(i int, c *protocol.Client, record func(cmd string, err error)) {
		n := iap.Add(1)
		calls := []struct {
			cmd string
			in  any
		}{
			{game.CmdLoad, nil},
			{game.CmdShopBuy, game.Buy{ItemID: "potion_pack"}},
			{game.CmdMailList, nil},
			{game.CmdMailClaimAll, nil},
			{game.CmdRankTop, game.RankTop{N: 10}},
			{game.CmdDungeonStart, game.StartDungeon{DungeonID: "forest"}},
			{game.CmdShopBuyIAP, game.BuyIAP{ProductID: "gems_100", Platform: "ios", Receipt: fmt.Sprintf("dev-receipt:outage-%d:gems_100", n)}},
		}
		for _, call := range calls {
			_, err := c.Call(ctx, call.cmd, call.in, nil)
			record(call.cmd, err)
		}
		other := floodClient(t, base)
		_, err := other.Call(ctx, game.CmdGuestLogin, game.GuestLogin{DeviceID: fmt.Sprintf("outage-new-%d-%d", i, n), Platform: "android", ClientVersion: "1.0.0.0"}, nil)
		record(game.CmdGuestLogin, err)
	}
	codeOfErr := func(err error) protocol.Code {
		if err == nil {
			return protocol.CodeOK
		}
		return codeOf(t, err)
	}

	for _, outage := range []struct {
		name  string
		proxy *cutProxy
	}{{"mariadb", dbProxy}, {"redis", redisProxy}} {
		counts := &codeCounts{m: map[protocol.Code]int{}}
		var bad []string
		var badMu sync.Mutex
		record := func(cmd string, err error) {
			code := codeOfErr(err)
			counts.add(code)
			if code == protocol.CodeOK || code >= protocol.CodeGameBase {
				return
			}
			if code != protocol.CodeUnavailable && code != protocol.CodeTimeout && code != protocol.CodeRateLimited {
				badMu.Lock()
				bad = append(bad, fmt.Sprintf("%s: %v", cmd, err))
				badMu.Unlock()
			}
		}
		// Players play; the backend goes down while they do.
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for range 2 {
					round(i, c, record)
				}
			}()
		}
		close(start)
		time.Sleep(20 * time.Millisecond) // some rounds in flight
		outage.proxy.Cut()
		wg.Wait()
		// And a full round each with the backend certainly down.
		for i, c := range clients {
			round(i, c, record)
		}
		t.Logf("%s down: answers%s (%v since the test began)", outage.name, counts, time.Since(began).Round(time.Millisecond))
		if len(bad) > 0 {
			t.Errorf("%s down: %d answers neither unavailable nor timeout, e.g. %v", outage.name, len(bad), bad[:min(len(bad), 5)])
		}
		if counts.m[protocol.CodeUnavailable] == 0 {
			t.Errorf("%s down: no unavailable answer at all:%s", outage.name, counts)
		}
		if counts.m[protocol.CodeInternal] != 0 {
			t.Errorf("%s down: %d internal answers", outage.name, counts.m[protocol.CodeInternal])
		}

		// Back up: every player plays again (bounded wait, polling).
		outage.proxy.Restore()
		for i, c := range clients {
			deadline := time.Now().Add(30 * time.Second)
			for {
				_, err := c.Call(ctx, game.CmdLoad, nil, nil)
				if err == nil {
					break
				}
				if code := codeOfErr(err); !code.Retryable() || time.Now().After(deadline) {
					t.Fatalf("player %d after %s came back: %v", i, outage.name, err)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
		t.Logf("%s back: players play (%v since the test began)", outage.name, time.Since(began).Round(time.Millisecond))
	}
}

// The server's sweep grants a noted purchase whose grant never committed
// (here a note written straight into the common database, as a purchase
// leaves it when the game database dies after the redemption), without
// the player logging in again or resending the receipt: once.
func TestServerSweepGrantsNotedPurchase(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	cfg.Dev = true
	cfg.IAPSweepInterval = 100 * time.Millisecond
	base, srv := startServerOn(t, cfg)
	c, _ := newClient(t, base)
	res := login(t, c, "sweep-player")
	before := load(t, c)
	receipt := "dev-receipt:swept-1:gems_100"
	h := sha256.Sum256([]byte("ios\x00" + receipt))
	if _, err := srv.store.common.ExecContext(ctx, "INSERT INTO iap_pending (user_key, receipt_sha256, platform, product_id, client_version, request_id, receipt, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
		res.UserKey, hex.EncodeToString(h[:]), "ios", "gems_100", "1.0.0.0", "iap-swept", receipt, 0); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for load(t, c).Gems == before.Gems {
		if time.Now().After(deadline) {
			t.Fatal("the sweep did not grant the noted purchase in 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The note is gone, and the gems were given once, even after more sweeps.
	for {
		var n int
		if err := srv.store.common.QueryRowContext(ctx, "SELECT COUNT(*) FROM iap_pending").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d notes left", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // a few more sweeps
	if p := load(t, c); p.Gems != before.Gems+100 {
		t.Fatalf("gems %d, want %d", p.Gems, before.Gems+100)
	}
	// The client's own retry of that purchase now grants nothing more.
	var again game.IAPResult
	if _, err := c.Call(ctx, game.CmdShopBuyIAP, game.BuyIAP{ProductID: "gems_100", Platform: "ios", Receipt: receipt}, &again); err != nil || again.Granted || again.Gems != before.Gems+100 {
		t.Fatalf("retry after the sweep: %+v %v", again, err)
	}
}
