package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/realtime"
)

// frameRecorder keeps the last request frame it carried.
type frameRecorder struct {
	next protocol.Transport
	mu   sync.Mutex
	last []byte
}

func (r *frameRecorder) RoundTrip(ctx context.Context, frame []byte) ([]byte, error) {
	r.mu.Lock()
	r.last = append([]byte(nil), frame...)
	r.mu.Unlock()
	return r.next.RoundTrip(ctx, frame)
}

func (r *frameRecorder) captured() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// postFrame sends a raw frame and returns the HTTP status and the reply's code
// (the reply opened with keys when it is sealed).
func postFrame(t *testing.T, base string, frame []byte, keys *protocol.Keys) (int, protocol.Code) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections() // the server's shutdown would wait for it
	resp, err := hc.Post(base+protocol.DefaultHTTPPath, protocol.ContentTypeFrame, bytes.NewReader(frame))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	codec, _ := protocol.NewCodec(protocol.Config{Role: protocol.RoleClient, XORKey: []byte(testXORKey)})
	body, _, err := codec.Decode(reply, keys)
	if err != nil {
		t.Fatalf("reply (HTTP %d): %v", resp.StatusCode, err)
	}
	var r protocol.Response
	if err := protocol.DecodeResponse(body, &r); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, r.Code
}

// TestSealedPublicFramesRunOnce: the public commands sys.time and
// auth.guest, sent in authenticated frames, run once per frame: a captured
// sealed sys.time posted again is refused (HTTP 401, replayed), and a
// captured sealed auth.guest posted again does not log in again, so the
// session that login opened is not kicked by the replay.
func TestSealedPublicFramesRunOnce(t *testing.T) {
	base, _ := newGameServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, lossy := newClient(t, base)
	rec := &frameRecorder{next: lossy.next}
	lossy.next = rec
	first := login(t, c, "sealed-public")
	secret, err := base64.StdEncoding.DecodeString(first.Secret)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := protocol.NewKeys([]byte(first.KeyID), secret)
	if err != nil {
		t.Fatal(err)
	}
	c.SetSession("", keys) // authenticated frames from now on

	if _, err := c.Call(ctx, CmdTime, nil, nil); err != nil {
		t.Fatal(err)
	}
	timeFrame := rec.captured()
	for i := range 2 {
		if status, code := postFrame(t, base, timeFrame, keys); status != http.StatusUnauthorized || code != protocol.CodeReplayed {
			t.Fatalf("sealed sys.time replayed (%d): HTTP %d %v, want 401 replayed", i+1, status, code)
		}
	}

	// A sealed login (the session's keys) runs once and opens a new
	// session, kicking the one that sealed it.
	var second game.LoginResult
	in := game.GuestLogin{DeviceID: "sealed-public", Platform: "android", ClientVersion: "1.0.0.0", Country: "KR", Language: "ko"}
	if _, err := c.Call(ctx, game.CmdGuestLogin, in, &second); err != nil {
		t.Fatalf("sealed login: %v", err)
	}
	loginFrame := rec.captured()
	if status, code := postFrame(t, base, loginFrame, keys); status != http.StatusUnauthorized || code == protocol.CodeOK {
		t.Fatalf("sealed auth.guest replayed: HTTP %d %v, want refused", status, code)
	}
	// The second session is still the player's: the replay logged nobody in.
	c2, _ := newClient(t, base)
	c2.SetSession(second.Token, nil)
	load(t, c2)
}

// TestLogout: auth.logout ends the session: its next request answers
// session_revoked (HTTP 401), its websocket is closed with 4013
// session_revoked, and the player can log in again.
func TestLogout(t *testing.T) {
	base, _ := newGameServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _ := newClient(t, base)
	res := login(t, c, "logout-1")
	ws, err := realtime.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+WSPath, res.Token,
		&realtime.DialOptions{Mode: protocol.ModeXOR, Codec: protocol.Config{XORKey: []byte(testXORKey)}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if _, err := c.Call(ctx, game.CmdLogout, nil, nil); err != nil {
		t.Fatalf("logout: %v", err)
	}
	if _, err := c.Call(ctx, game.CmdLoad, nil, nil); codeOf(t, err) != protocol.CodeSessionRevoked {
		t.Fatalf("a request after logout: %v, want session_revoked", err)
	}
	select {
	case <-ws.Done():
	case <-ctx.Done():
		t.Fatal("websocket of the ended session not closed")
	}
	if code, _ := ws.CloseCode(); code != protocol.CodeSessionRevoked {
		t.Fatalf("websocket closed with %v, want session_revoked", code)
	}
	// Without a session, auth.logout is refused like any other command.
	c3, _ := newClient(t, base)
	if _, err := c3.Call(ctx, game.CmdLogout, nil, nil); codeOf(t, err) != protocol.CodeUnauthorized {
		t.Fatalf("logout without a session: %v, want unauthorized", err)
	}
	login(t, c, "logout-1")
	load(t, c)
}
