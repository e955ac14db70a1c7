package realtime_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/madang-io/madang/realtime"
	"github.com/madang-io/madang/session/sessiontest"
)

// The chat and whisper pushes decode into ChatPush, and ChatPush marshals
// back to the very bytes the hub sent: the exported type is the wire format.
func TestChatPushIsThePayload(t *testing.T) {
	store := sessiontest.NewStore(t, nil)
	n := startHub(t, store, realtime.Config{
		// Validate rewrites the data: the push carries what it left.
		Validate: func(_ context.Context, m *realtime.ChatMessage) error {
			m.Data = json.RawMessage(`{"text":"filtered"}`)
			return nil
		},
	})
	ctx := ctxT(t)
	a := dial(t, n, sessiontest.Login(t, store, 41), nil)
	b := dial(t, n, sessiontest.Login(t, store, 42), nil)
	for _, c := range []*realtime.Client{a, b} {
		if _, err := c.Subscribe(ctx, "world.3", nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Publish(ctx, "world.3", map[string]string{"text": "hello"}); err != nil {
		t.Fatal(err)
	}
	if err := a.Whisper(ctx, 42, "psst"); err != nil {
		t.Fatal(err)
	}
	// The chat push and the whisper travel different channels (world.3 and
	// b's own), so either may arrive first.
	got := map[string]bool{}
	for range 2 {
		p := next(t, b)
		if (p.Topic != realtime.TopicChat && p.Topic != realtime.TopicWhisper) || got[p.Topic] {
			t.Fatalf("push %q after %v, want one chat and one whisper", p.Topic, got)
		}
		got[p.Topic] = true
		// The documented wire format (docs/PROTOCOL.md §16.3).
		if string(p.Payload) != `{"from":41,"data":{"text":"filtered"}}` {
			t.Fatalf("%s payload %s", p.Topic, p.Payload)
		}
		var m realtime.ChatPush
		if err := json.Unmarshal(p.Payload, &m); err != nil {
			t.Fatal(err)
		}
		if m.From != 41 || string(m.Data) != `{"text":"filtered"}` {
			t.Fatalf("%s push decoded as %+v (%s)", p.Topic, m, p.Payload)
		}
		back, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(back, p.Payload) {
			t.Fatalf("ChatPush marshals to %s, the hub sent %s", back, p.Payload)
		}
	}
}
