package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/realtime"
)

// POST /v1/notices on the ops API reaches the players subscribed to the
// system channel whose session matches the filter, with the topic given;
// bad requests and missing tokens are refused.
func TestOpsNotices(t *testing.T) {
	base, srv := newGameServer(t)
	a := newAdmin(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	wsURL := "ws" + strings.TrimPrefix(base, "http") + WSPath
	opts := &realtime.DialOptions{Mode: protocol.ModeXOR, Codec: protocol.Config{XORKey: []byte(testXORKey)}}

	ckr, _ := newClient(t, base)
	kr := loginFrom(t, ckr, "notice-kr", "KR")
	cjp, _ := newClient(t, base)
	jp := loginFrom(t, cjp, "notice-jp", "JP")
	var clients []*realtime.Client
	for _, tok := range []string{kr.Token, jp.Token} {
		c, err := realtime.Dial(ctx, wsURL, tok, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Subscribe(ctx, realtime.ChannelSystem, nil); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	wkr, wjp := clients[0], clients[1]

	// Only KR sessions: the JP client must not get this one.
	b := a.ok("POST", NoticesPath, map[string]any{
		"topic": "maintenance", "message": "KR servers restart at 04:00", "filter": map[string]string{"country": "KR"},
	})
	var pos realtime.StreamPosition
	if err := json.Unmarshal(b, &pos); err != nil || pos.Offset == 0 {
		t.Fatalf("notice answer %s: %v", b, err)
	}
	a.ok("POST", NoticesPath, map[string]any{"topic": "notice", "message": "hello everyone"})

	want := func(c *realtime.Client, topic, msg string) {
		t.Helper()
		p, err := c.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var np NoticePayload
		if err := json.Unmarshal(p.Payload, &np); err != nil || p.Channel != realtime.ChannelSystem || p.Topic != topic || np.Message != msg {
			t.Fatalf("push %+v (%s), want %s %q: %v", p, p.Payload, topic, msg, err)
		}
	}
	want(wkr, "maintenance", "KR servers restart at 04:00")
	want(wkr, "notice", "hello everyone")
	want(wjp, "notice", "hello everyone") // the filtered one skipped

	for _, tc := range []struct {
		name  string
		token string
		body  any
		code  int
	}{
		{"no token", "", map[string]any{"topic": "notice", "message": "x"}, http.StatusUnauthorized},
		{"wrong token", "wrong", map[string]any{"topic": "notice", "message": "x"}, http.StatusUnauthorized},
		{"bad topic", srv.AdminToken(), map[string]any{"topic": "chat", "message": "x"}, http.StatusBadRequest},
		{"no message", srv.AdminToken(), map[string]any{"topic": "notice", "message": "  "}, http.StatusBadRequest},
		{"long message", srv.AdminToken(), map[string]any{"topic": "event", "message": strings.Repeat("a", MaxNoticeLen+1)}, http.StatusBadRequest},
		{"unknown field", srv.AdminToken(), map[string]any{"topic": "notice", "message": "x", "to": 1}, http.StatusBadRequest},
		{"unknown filter", srv.AdminToken(), map[string]any{"topic": "notice", "message": "x", "filter": map[string]string{"guild": "1"}}, http.StatusBadRequest},
	} {
		if code, body := a.do("POST", NoticesPath, tc.token, tc.body); code != tc.code {
			t.Errorf("%s: %d %s, want %d", tc.name, code, body, tc.code)
		}
	}
	if code, _ := a.do("GET", NoticesPath, srv.AdminToken(), nil); code != http.StatusMethodNotAllowed {
		t.Errorf("GET %s: %d", NoticesPath, code)
	}
	// The rest of the ops API is still served behind the same listener.
	a.ok("GET", "/v1/maintenance", nil)

	// None of the refused requests was broadcast: the next push is this one.
	a.ok("POST", NoticesPath, map[string]any{"topic": "event", "message": "double gold", "filter": map[string]string{"client_version": "1.0."}})
	want(wjp, "event", "double gold")
}

// The notice body decoder never panics, and what it accepts is a valid
// notice: a known topic and a non-blank UTF-8 message within the limit.
func FuzzNoticeRequest(f *testing.F) {
	f.Add([]byte(`{"topic":"notice","message":"hi","filter":{"country":"KR"}}`))
	f.Add([]byte(`{"topic":"maintenance","message":"\u00ff","filter":{"client_version":"1."}}`))
	f.Add([]byte(`{"topic":"chat","message":"x"}`))
	f.Add([]byte(`{"topic":"event","message":"x"} {}`))
	f.Add([]byte("{\"topic\":\"notice\",\"message\":\"\xff\"}"))
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest("POST", NoticesPath, bytes.NewReader(body))
		var req NoticeRequest
		if err := decodeNotice(httptest.NewRecorder(), r, &req); err != nil {
			return
		}
		switch req.Topic {
		case NoticeTopicNotice, NoticeTopicMaintenance, NoticeTopicEvent:
		default:
			t.Fatalf("accepted topic %q", req.Topic)
		}
		if strings.TrimSpace(req.Message) == "" || len(req.Message) > MaxNoticeLen || !utf8.ValidString(req.Message) {
			t.Fatalf("accepted message %q", req.Message)
		}
	})
}
