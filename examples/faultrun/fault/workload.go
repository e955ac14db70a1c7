package fault

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/examples/gameserver/ops"
	"github.com/madang-io/madang/protocol"
)

// End is how one copy of a request ended.
type End int

// Ends of a copy.
const (
	// EndOK: answered code 0 (first run or replay).
	EndOK End = iota
	// EndRefused: answered a code that is not retryable (PROTOCOL.md §8),
	// other than the session codes a client answers by logging in again.
	EndRefused
	// EndGaveUp: no final answer before the copy's deadline.
	EndGaveUp
)

func (e End) String() string {
	switch e {
	case EndOK:
		return "ok"
	case EndRefused:
		return "refused"
	}
	return "gave_up"
}

// MarshalText implements encoding.TextMarshaler.
func (e End) MarshalText() ([]byte, error) { return []byte(e.String()), nil }

// Copy is one sender of a request: a racing duplicate with its own
// retries, all with the request's id.
type Copy struct {
	// Sends is how many frames it sent; Lost how many replies it did not
	// get (transport errors, undecodable replies).
	Sends, Lost int
	// Codes counts the answers it got, by code.
	Codes map[protocol.Code]int
	// Relogins is how many times it waited for a new session (session
	// codes 10-13 answered to it).
	Relogins int
	End      End
	// Code is the final code (EndRefused), or the last code seen (EndGaveUp;
	// -1 when it never got an answer).
	Code protocol.Code
	// Replay and Payload are those of the OK answer.
	Replay  bool            `json:",omitempty"`
	Payload json.RawMessage `json:",omitempty"`
}

// Request is one logical request of a player (one request id) and what
// every copy of it was answered.
type Request struct {
	RID     string
	Cmd     string
	Player  int
	UserKey int64
	Payload json.RawMessage
	// Store and TransactionID of an in-app purchase's receipt.
	Store, TransactionID string `json:",omitempty"`
	Copies               []*Copy
}

// player is one virtual player: a device, its user key and its session.
type player struct {
	idx     int
	device  string
	userKey int64

	mu    sync.Mutex
	token string
}

func (p *player) currentToken() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.token
}

// clientStats counts what the clients saw outside the requests' copies.
type clientStats struct {
	mu          sync.Mutex
	loginCodes  map[protocol.Code]int
	loginLost   int
	logins      int
	mailRounds  int
	mailsFailed int
}

func (s *clientStats) login(code protocol.Code, lost bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if lost {
		s.loginLost++
		return
	}
	s.loginCodes[code]++
}

// sessionCode reports whether a client answers code by logging in again
// and sending the same request again (PROTOCOL.md §8: unauthorized,
// session_expired, kicked, revoked).
func sessionCode(c protocol.Code) bool {
	switch c {
	case protocol.CodeUnauthorized, protocol.CodeSessionExpired, protocol.CodeKicked, protocol.CodeSessionRevoked:
		return true
	}
	return false
}

// backoff of the clients' retries: from retryMin, doubled, at most retryMax;
// a server's retry_ms wins when longer.
const (
	retryMin = 100 * time.Millisecond
	retryMax = 2 * time.Second
)

// sleepUntil waits d, or less when the deadline or ctx comes first; it
// reports whether there is time left after.
func sleepUntil(ctx context.Context, d time.Duration, deadline time.Time) bool {
	if left := time.Until(deadline); d > left {
		d = left
	}
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
	return time.Now().Before(deadline)
}

// login logs p in (auth.guest), retrying lost replies and retryable codes,
// and, as a player tapping "retry" after an error, other codes after a
// second, until deadline.
func (r *runner) login(ctx context.Context, p *player, deadline time.Time) error {
	in := game.GuestLogin{DeviceID: p.device, Platform: "android", ClientVersion: "1.0.0"}
	wait := retryMin
	for seq := uint64(1); ; seq++ {
		resp, err := r.wire.send(ctx, &protocol.Request{Command: game.CmdGuestLogin, Seq: seq, Payload: payload(in)})
		r.stats.login(codeOf(resp), err != nil)
		switch {
		case err != nil:
		case resp.Code == protocol.CodeOK:
			var out game.LoginResult
			if err := json.Unmarshal(resp.Payload, &out); err != nil || out.Token == "" || out.UserKey <= 0 {
				return fmt.Errorf("login of %s: bad answer %s", p.device, resp.Payload)
			}
			p.token, p.userKey = out.Token, out.UserKey
			r.stats.mu.Lock()
			r.stats.logins++
			r.stats.mu.Unlock()
			return nil
		case resp.Code.Retryable():
			wait = max(wait, time.Duration(resp.RetryAfterMs)*time.Millisecond)
		default:
			wait = max(wait, time.Second)
		}
		if !sleepUntil(ctx, wait, deadline) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("login of %s: no session before the deadline", p.device)
		}
		wait = min(2*wait, retryMax)
	}
}

func codeOf(resp *protocol.Response) protocol.Code {
	if resp == nil {
		return -1
	}
	return resp.Code
}

// relogin gets p a new session unless another copy already replaced the
// stale token.
func (r *runner) relogin(ctx context.Context, p *player, stale string, deadline time.Time) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.token != stale {
		return nil
	}
	return r.login(ctx, p, deadline)
}

// runCopy sends one copy of req until it gets a final answer or deadline
// passes (PROTOCOL.md §12: lost replies and retryable codes are sent again
// with the same request id; session codes log in again first).
func (r *runner) runCopy(ctx context.Context, p *player, req *Request, c *Copy, seq uint64, deadline time.Time) {
	c.Codes = map[protocol.Code]int{}
	c.Code = -1
	wait := retryMin
	for {
		token := p.currentToken()
		resp, err := r.wire.send(ctx, &protocol.Request{Command: req.Cmd, Seq: seq, RequestID: req.RID, Token: token, Payload: req.Payload})
		c.Sends++
		if err != nil {
			c.Lost++
		} else {
			c.Codes[resp.Code]++
			c.Code = resp.Code
			switch {
			case resp.Code == protocol.CodeOK:
				c.End, c.Replay, c.Payload = EndOK, resp.Replay, resp.Payload
				return
			case sessionCode(resp.Code):
				c.Relogins++
				if err := r.relogin(ctx, p, token, deadline); err != nil {
					c.End = EndGaveUp
					return
				}
				wait = retryMin
				continue
			case resp.Code.Retryable():
				wait = max(wait, time.Duration(resp.RetryAfterMs)*time.Millisecond)
			default:
				c.End = EndRefused
				return
			}
		}
		if !sleepUntil(ctx, wait, deadline) {
			c.End = EndGaveUp
			return
		}
		wait = min(2*wait, retryMax)
	}
}

// What the players buy (the default game data). The mix spends more gems
// than it buys, so some purchases are refused (not enough gems): final
// refusals that must not be applied. unknownItem is refused as well.
var (
	shopItems   = []string{"gold_large", "gold_large", "gold_large", "gold_small", "potion_pack", "adventurer_kit"}
	products    = []string{"gems_100", "gems_100", "gems_100", "gems_100", "gems_100", "gems_100", "gems_100", "starter_pack", "starter_pack", "gems_550"}
	unknownItem = "no_such_item"
)

// next makes player p's n-th logical request: shop.buy 57% (1 in 20 of
// them for an item that does not exist), shop.buy_iap 13%, mail.claim_all
// 30%.
func (r *runner) next(p *player, rng *rand.Rand, n int) *Request {
	req := &Request{RID: fmt.Sprintf("%s-p%d-%d", r.id, p.idx, n), Player: p.idx, UserKey: p.userKey}
	switch x := rng.IntN(100); {
	case x < 3:
		req.Cmd = game.CmdShopBuy
		req.Payload = payload(game.Buy{ItemID: unknownItem})
	case x < 57:
		req.Cmd = game.CmdShopBuy
		req.Payload = payload(game.Buy{ItemID: shopItems[rng.IntN(len(shopItems))]})
	case x < 70:
		req.Cmd = game.CmdShopBuyIAP
		product := products[rng.IntN(len(products))]
		platform, store := "android", anticheat.StoreGoogle
		if rng.IntN(2) == 0 {
			platform, store = "ios", anticheat.StoreApple
		}
		tx := fmt.Sprintf("%s-p%d-%d", r.id, p.idx, n)
		req.Store, req.TransactionID = store, "dev-"+tx // game.DevVerifier's transaction id
		req.Payload = payload(game.BuyIAP{ProductID: product, Platform: platform, Receipt: game.DevReceiptPrefix + tx + ":" + product})
	default:
		req.Cmd = game.CmdMailClaimAll
	}
	return req
}

// copiesOf picks how many copies race: 1 (40%), 2 (40%) or 3 (20%).
func copiesOf(rng *rand.Rand) int {
	switch x := rng.IntN(10); {
	case x < 4:
		return 1
	case x < 8:
		return 2
	}
	return 3
}

// play runs player p's requests until the fault phase ends; each request's
// copies race, then it waits a random think time.
func (r *runner) play(ctx context.Context, p *player, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, uint64(p.idx)))
	for n := 1; ctx.Err() == nil && time.Now().Before(r.faultEnd); n++ {
		req := r.next(p, rng, n)
		req.Copies = make([]*Copy, copiesOf(rng))
		deadline := time.Now()
		if deadline.Before(r.faultEnd) {
			deadline = r.faultEnd
		}
		deadline = deadline.Add(r.cfg.GiveUp)
		var wg sync.WaitGroup
		for i := range req.Copies {
			c := &Copy{}
			req.Copies[i] = c
			stagger := time.Duration(rng.IntN(20)) * time.Millisecond
			wg.Add(1)
			go func() {
				defer wg.Done()
				if i > 0 {
					time.Sleep(stagger)
				}
				r.runCopy(ctx, p, req, c, uint64(n), deadline)
			}()
		}
		wg.Wait()
		r.record(req)
		if r.cfg.Think > 0 {
			sleepUntil(ctx, time.Duration(rng.Int64N(int64(r.cfg.Think))), r.faultEnd)
		}
	}
}

func (r *runner) record(req *Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = append(r.requests, req)
}

// mailRound sends one operator grant (POST /v1/mail, key key) to every
// player, sending it again to those it failed for until deadline (the key
// makes the grant safe to send again). It reports whether everyone got it.
func (r *runner) mailRound(ctx context.Context, key string, deadline time.Time) bool {
	todo := make([]int64, 0, len(r.players))
	for _, p := range r.players {
		todo = append(todo, p.userKey)
	}
	for len(todo) > 0 {
		batch := todo[:min(len(todo), ops.MaxMailBatch)]
		failed, err := r.sendMail(ctx, key, batch)
		if err != nil {
			failed = batch
		}
		todo = append(failed, todo[len(batch):]...)
		if len(failed) > 0 {
			r.stats.mu.Lock()
			r.stats.mailsFailed += len(failed)
			r.stats.mu.Unlock()
			if !sleepUntil(ctx, 500*time.Millisecond, deadline) {
				return false
			}
		}
	}
	r.stats.mu.Lock()
	r.stats.mailRounds++
	r.stats.mu.Unlock()
	return true
}

func (r *runner) sendMail(ctx context.Context, key string, users []int64) ([]int64, error) {
	body, _ := json.Marshal(ops.MailRequest{UserKeys: users, Key: key, Title: "Fault run grant " + key,
		Gold: 100, Gems: 10, Items: []game.ItemCount{{ItemID: "potion", Count: 1}}})
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	hreq, err := http.NewRequestWithContext(rctx, http.MethodPost, "http://"+r.gs.admin+"/v1/mail", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hreq.Header.Set("Authorization", "Bearer "+r.adminToken)
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("POST /v1/mail: HTTP %d", resp.StatusCode)
	}
	var out struct {
		Failed []ops.MailFailed `json:"failed"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	failed := make([]int64, 0, len(out.Failed))
	for _, f := range out.Failed {
		failed = append(failed, f.UserKey)
	}
	return failed, nil
}

// mailer grants a mail to every player every interval until the fault
// phase ends, so mail.claim_all has something to claim.
func (r *runner) mailer(ctx context.Context, interval time.Duration) {
	for n := 2; ; n++ {
		if !sleepUntil(ctx, interval, r.faultEnd) {
			return
		}
		r.mailRound(ctx, fmt.Sprintf("%s-mail-%d", r.id, n), r.faultEnd)
	}
}
