package load

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/realtime"
)

// Pseudo-commands the Chat scenario records beside the hub's own commands
// (realtime.CmdSubscribe, CmdPublish, CmdWhisper).
const (
	// CmdWSConnect is a websocket connection: the handshake with its token
	// check (and, with Config.WSDevLogin, the development login before it).
	CmdWSConnect = "ws.connect"
	// CmdChatEcho is a chat message's way back: from sending rt.publish
	// until the user's own message arrives as a push on its channel, the
	// time after which every subscriber of the room can have it.
	CmdChatEcho = "chat.echo"
)

// RealtimeStats is the websocket side of a run that ran the Chat scenario.
// Pushes are counted as they arrive at the users' connections.
type RealtimeStats struct {
	// URL is the websocket endpoint (Config.WSURL); Rooms the number of
	// chat rooms (Config.ChatRooms).
	URL   string `json:"url"`
	Rooms int    `json:"rooms"`
	// Mode is how the websocket frames are protected: Config.Mode, as
	// for HTTP.
	Mode Mode `json:"mode"`
	// DevLogin is Config.WSDevLogin.
	DevLogin bool `json:"dev_login,omitempty"`
	// Connects counts websocket connections made; Drops those the server
	// (or the network) ended while the user still had them, by close code
	// ("kicked" after a new login of the user, "slow_consumer", ...;
	// "closed" without a code). Connections the users close themselves
	// (at the end of the run, or after their session changed) are not
	// drops.
	Connects uint64            `json:"connects"`
	Drops    map[string]uint64 `json:"drops,omitempty"`
	// Pushes counts every push received; PushesPerS is Pushes over the
	// run's elapsed time: the hub's fan-out. Echoes are the users' own chat
	// messages back (each also a chat.echo call), Chat the chat messages of
	// other users, Whispers the whispers received, Other pushes of other
	// topics (notices, ...).
	Pushes     uint64  `json:"pushes"`
	PushesPerS float64 `json:"pushes_per_s"`
	Echoes     uint64  `json:"echoes"`
	Chat       uint64  `json:"chat"`
	Whispers   uint64  `json:"whispers"`
	Other      uint64  `json:"other"`
	// DeliveryP50Ms, DeliveryP99Ms and DeliveryMaxMs are the latency of
	// every chat and whisper push received (echoes included), from just
	// before its sender sent it until it arrived, in milliseconds. The
	// sender's time travels in the message (the users share one process
	// and its clock).
	DeliveryP50Ms float64 `json:"delivery_p50_ms"`
	DeliveryP99Ms float64 `json:"delivery_p99_ms"`
	DeliveryMaxMs float64 `json:"delivery_max_ms"`
}

// FrameMode returns Mode, or ModeXOR for a report written before the
// websocket followed Config.Mode (it always used XOR frames then).
func (s *RealtimeStats) FrameMode() Mode {
	if s.Mode == "" {
		return ModeXOR
	}
	return s.Mode
}

// rtTotals gathers the realtime counters of a run.
type rtTotals struct {
	used                                     atomic.Bool
	connects, pushes, echoes, chat, whispers atomic.Uint64
	other                                    atomic.Uint64
	// perSec counts pushes by second of the run (allocated on the first
	// connection; the last slot also takes pushes after the run's end).
	initOnce sync.Once
	perSec   []atomic.Uint64

	mu       sync.Mutex
	delivery Histogram
	drops    map[string]uint64
}

func (t *rtTotals) init(d time.Duration) {
	t.initOnce.Do(func() {
		t.perSec = make([]atomic.Uint64, int(d/time.Second)+2)
		t.used.Store(true) // after perSec: readers of used see it
	})
}

// pushAt counts one push arrived at second sec of the run.
func (t *rtTotals) pushAt(sec int) {
	t.pushes.Add(1)
	t.perSec[min(max(sec, 0), len(t.perSec)-1)].Add(1)
}

// pushesIn returns the pushes counted in second sec.
func (t *rtTotals) pushesIn(sec int) uint64 {
	if !t.used.Load() || sec < 0 || sec >= len(t.perSec) {
		return 0
	}
	return t.perSec[sec].Load()
}

// rtReport returns the run's RealtimeStats, nil when no user connected.
func (e *engine) rtReport(elapsed time.Duration) *RealtimeStats {
	t := &e.rt
	if !t.used.Load() {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	s := &RealtimeStats{
		URL: e.cfg.WSURL, Rooms: e.cfg.ChatRooms, Mode: e.cfg.Mode, DevLogin: e.cfg.WSDevLogin,
		Connects: t.connects.Load(), Pushes: t.pushes.Load(), Echoes: t.echoes.Load(),
		Chat: t.chat.Load(), Whispers: t.whispers.Load(), Other: t.other.Load(),
		DeliveryP50Ms: ms(t.delivery.QuantileMicros(0.50)), DeliveryP99Ms: ms(t.delivery.QuantileMicros(0.99)),
		DeliveryMaxMs: ms(t.delivery.max),
	}
	if len(t.drops) > 0 {
		s.Drops = maps.Clone(t.drops)
	}
	if elapsed > 0 {
		s.PushesPerS = float64(s.Pushes) / elapsed.Seconds()
	}
	return s
}

// chatData is what the Chat scenario publishes: the sending user, its
// message number and its send time (nanoseconds since the run's start:
// every user shares the run's clock), and some text.
type chatData struct {
	User int    `json:"u"`
	N    uint64 `json:"n"`
	T    int64  `json:"t"`
	Text string `json:"text"`
}

// echo is a user's own message seen by its connection's reader.
type echo struct {
	n  uint64
	at time.Time
}

// rtConn is a user's websocket connection: the client, the room it joined
// and the goroutine that reads every push (so the client's queue never
// fills) and hands the user's own messages to it.
type rtConn struct {
	c         *realtime.Client
	gameToken string // the game session it was made for
	userKey   int64
	room      string
	echoes    chan echo
	readerEnd chan struct{}
	hist      Histogram // delivery latencies, the reader's until readerEnd
	closing   atomic.Bool
}

// realtime returns the user's websocket connection, subscribed to its
// room: the one it has, or a new one when it has none, the server closed
// it, or the user's game session changed (a new login kicks the old
// connection). The connection and the subscription are recorded
// (CmdWSConnect, realtime.CmdSubscribe).
func (vu *VU) realtime(ctx context.Context) (*rtConn, error) {
	token := vu.Client.Token()
	if rc := vu.rt; rc != nil {
		select {
		case <-rc.c.Done():
		default:
			if rc.gameToken == token {
				return rc, nil
			}
		}
		vu.closeRealtime()
	}
	e := vu.e
	e.rt.init(e.cfg.Duration)
	cctx, cancel := context.WithTimeout(ctx, e.cfg.RequestTimeout)
	defer cancel()
	t0 := time.Now()
	c, err := vu.dialWS(cctx, token)
	end := time.Now()
	if ctx.Err() != nil {
		if c != nil {
			c.Close()
		}
		return nil, ctx.Err()
	}
	e.rec.Record(CmdWSConnect, end, end.Sub(t0), err, false)
	if err != nil {
		return nil, err
	}
	e.rt.connects.Add(1)
	rc := &rtConn{c: c, gameToken: token, userKey: vu.UserKey, echoes: make(chan echo, 8), readerEnd: make(chan struct{})}
	go rc.read(vu)
	vu.rt = rc

	room := realtime.WorldChannel(vu.ID % e.cfg.ChatRooms)
	t0 = time.Now()
	joined, err := c.Subscribe(cctx, room, nil)
	end = time.Now()
	if ctx.Err() != nil {
		vu.closeRealtime()
		return nil, ctx.Err()
	}
	err = rtError(err)
	if err == nil && joined.Channel != room {
		err = &AnswerError{Command: realtime.CmdSubscribe, Err: fmt.Errorf("joined %q, asked for %q", joined.Channel, room)}
	}
	e.rec.Record(realtime.CmdSubscribe, end, end.Sub(t0), err, false)
	if err != nil {
		vu.closeRealtime()
		return nil, err
	}
	rc.room = room
	return rc, nil
}

// dialWS connects to Config.WSURL with the game session's token or, with
// Config.WSDevLogin, one from the node's development login. In
// ModeAuthenticated its frames are sealed with the session's keys: the game
// session's, taking their counters from the user's protocol client
// (Client.Counter), so that HTTP requests and websocket frames share the
// session's counter (docs/PROTOCOL.md §7.4, §16.1); or the development
// session's, with a counter of their own. In ModeXOR they are XORed. A
// handshake the hub refused is a *realtime.HandshakeError, which
// ErrorKind names by its result code (unauthorized, kicked, going_away,
// ...); an error status without a code (a proxy's page, a wrong path) is
// "http_<status>", a connection that could not be made "transport".
func (vu *VU) dialWS(ctx context.Context, gameToken string) (*realtime.Client, error) {
	e := vu.e
	opts := &realtime.DialOptions{Mode: protocol.ModeXOR, Codec: protocol.Config{XORKey: []byte(e.cfg.XORKey)}}
	token := gameToken
	if e.cfg.WSDevLogin {
		dl, err := vu.devLogin(ctx)
		if err != nil {
			return nil, err
		}
		token = dl.Token
		if e.cfg.Mode == ModeAuthenticated {
			secret, err := base64.StdEncoding.DecodeString(dl.Secret)
			if err != nil {
				return nil, &AnswerError{Command: "dev login", Err: fmt.Errorf("secret: %w", err)}
			}
			if opts.Keys, err = protocol.NewKeys([]byte(dl.KeyID), secret); err != nil {
				return nil, &AnswerError{Command: "dev login", Err: err}
			}
			opts.Mode = protocol.ModeAuthenticated // a new session: its counter starts at 1
		}
	} else if e.cfg.Mode == ModeAuthenticated && vu.keys != nil {
		opts.Mode, opts.Keys, opts.Counters = protocol.ModeAuthenticated, vu.keys, vu.Client.Counter()
	}
	c, err := realtime.Dial(ctx, e.cfg.WSURL, token, opts)
	if err != nil {
		var he *realtime.HandshakeError
		switch {
		case errors.As(err, &he) && he.Code != protocol.CodeOK:
			return nil, err // the hub's refusal, by its code
		case he != nil:
			return nil, &protocol.TransportError{Status: he.Status, Err: err} // not a hub's answer
		}
		return nil, &protocol.TransportError{Err: err}
	}
	return c, nil
}

// devLoginAnswer is the part of the realtime node's /dev/login answer
// (examples/realtimeserver's node.DevLogin) the load tool uses.
type devLoginAnswer struct {
	Token  string `json:"token"`
	KeyID  string `json:"key_id"`
	Secret string `json:"secret"`
}

// devLogin asks the realtime node for a session of the user's key (GET
// /dev/login?user=K on WSURL's host).
func (vu *VU) devLogin(ctx context.Context) (*devLoginAnswer, error) {
	u, err := url.Parse(vu.e.cfg.WSURL)
	if err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	}
	u.Path, u.RawPath, u.Fragment = "/dev/login", "", ""
	u.RawQuery = url.Values{"user": {strconv.FormatInt(vu.UserKey, 10)}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := vu.e.hc.Do(req)
	if err != nil {
		return nil, &protocol.TransportError{Err: fmt.Errorf("load: dev login: %w", err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &protocol.TransportError{Status: resp.StatusCode, Err: fmt.Errorf("load: dev login: HTTP %d (is the realtime node in dev and memory mode?)", resp.StatusCode)}
	}
	var out devLoginAnswer
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Token == "" {
		return nil, &AnswerError{Command: "dev login", Err: fmt.Errorf("no token in the answer (%v)", err)}
	}
	if vu.e.cfg.Mode == ModeAuthenticated && (out.KeyID == "" || out.Secret == "") {
		return nil, &AnswerError{Command: "dev login", Err: errors.New("no key_id and secret in the answer, needed for -mode auth (an older realtime node? use -mode xor)")}
	}
	return &out, nil
}

// read takes every push of the connection until it ends: it counts them,
// records the delivery latency of chat messages and whispers, and hands the
// user's own chat messages to the user (dropping them when the user has
// several unread: it waits for the latest only).
func (rc *rtConn) read(vu *VU) {
	defer close(rc.readerEnd)
	e, t := vu.e, &vu.e.rt
	for {
		p, err := rc.c.Next(context.Background())
		if err != nil {
			if !rc.closing.Load() {
				kind := "closed"
				if code, ok := rc.c.CloseCode(); ok {
					kind = code.String()
				}
				t.mu.Lock()
				if t.drops == nil {
					t.drops = map[string]uint64{}
				}
				t.drops[kind]++
				t.mu.Unlock()
			}
			t.mu.Lock()
			t.delivery.Merge(&rc.hist)
			t.mu.Unlock()
			return
		}
		now := time.Now()
		t.pushAt(int(now.Sub(e.start) / time.Second))
		if p.Topic != realtime.TopicChat && p.Topic != realtime.TopicWhisper {
			t.other.Add(1)
			continue
		}
		var m realtime.ChatPush
		var d chatData
		if json.Unmarshal(p.Payload, &m) == nil && json.Unmarshal(m.Data, &d) == nil && d.T > 0 {
			rc.hist.Record(now.Sub(e.start) - time.Duration(d.T))
		}
		switch {
		case p.Topic == realtime.TopicWhisper:
			t.whispers.Add(1)
		case m.From == rc.userKey && d.User == vu.ID:
			t.echoes.Add(1)
			select {
			case rc.echoes <- echo{n: d.N, at: now}:
			default:
			}
		default:
			t.chat.Add(1)
		}
	}
}

// closeRealtime closes the user's websocket connection, if any, and waits
// for its reader.
func (vu *VU) closeRealtime() {
	rc := vu.rt
	if rc == nil {
		return
	}
	vu.rt = nil
	rc.closing.Store(true)
	rc.c.Close()
	<-rc.readerEnd
}

// rtError turns a realtime client error into one ErrorKind names: answers
// of the hub are *protocol.Error already, refused handshakes
// *realtime.HandshakeError; a connection that failed is a transport
// error.
func rtError(err error) error {
	var pe *protocol.Error
	var he *realtime.HandshakeError
	if err == nil || errors.As(err, &pe) || errors.As(err, &he) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return err
	}
	return &protocol.TransportError{Err: err}
}
