package realtime

import (
	"bytes"
	"testing"
	"time"

	"github.com/madang-io/madang/protocol"
)

func TestMessageRoundTrip(t *testing.T) {
	for _, f := range []*Filter{nil, {}, {ClientVersion: "1.4.", Country: "KR", Language: "ko", Platform: "ios"}} {
		b := appendMessage(nil, 1234, "notice", f, []byte(`{"a":1}`))
		var m message
		if err := parseMessage(b, &m); err != nil {
			t.Fatal(err)
		}
		if m.stime != 1234 || string(m.topic) != "notice" || string(m.payload) != `{"a":1}` || m.hasFilter != (f != nil && !f.empty()) {
			t.Fatalf("%+v", m)
		}
		if m.hasFilter && (string(m.filter.version) != "1.4." || string(m.filter.platform) != "ios") {
			t.Fatalf("filter %+v", m.filter)
		}
	}
	var m message
	for _, bad := range [][]byte{nil, {1}, {2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {1, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 'a'}} {
		if err := parseMessage(bad, &m); err == nil {
			t.Fatalf("accepted %x", bad)
		}
	}
}

func TestFilterMatch(t *testing.T) {
	p := &protocol.Principal{ClientVersion: "1.4.2", Country: "KR", Language: "ko", Platform: "android"}
	cases := []struct {
		f    Filter
		want bool
	}{
		{Filter{}, true},
		{Filter{ClientVersion: "1.4."}, true},
		{Filter{ClientVersion: "1.5."}, false},
		{Filter{Country: "KR", Language: "ko"}, true},
		{Filter{Country: "KR", Platform: "ios"}, false},
	}
	for _, c := range cases {
		var m message
		if err := parseMessage(appendMessage(nil, 0, "x", &c.f, nil), &m); err != nil {
			t.Fatal(err)
		}
		if got := !m.hasFilter || matchFilter(&m.filter, p); got != c.want {
			t.Errorf("%+v: %v", c.f, got)
		}
	}
}

func TestTokenBucket(t *testing.T) {
	var b tokenBucket
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for i := range 3 {
		if ok, _, _ := b.take(now, 1, 3); !ok {
			t.Fatalf("burst token %d refused", i)
		}
	}
	ok, wait, flood := b.take(now, 1, 3)
	if ok || wait <= 0 || flood {
		t.Fatalf("over the burst: %v %v %v", ok, wait, flood)
	}
	for range 2 {
		b.take(now, 1, 3)
	}
	if _, _, flood := b.take(now, 1, 3); !flood {
		t.Fatal("flooding not detected")
	}
	if ok, _, _ := b.take(now.Add(time.Hour), 1, 3); !ok {
		t.Fatal("no refill")
	}
}

// FuzzParseMessage: broker messages from another node never panic the
// decoder, and what it accepts re-encodes to a message that decodes the same
// (the bytes may differ: a non-minimal varint length is accepted).
func FuzzParseMessage(f *testing.F) {
	f.Add(appendMessage(nil, 1, "chat", nil, []byte(`{"from":1}`)))
	f.Add(appendMessage(nil, 1, "notice", &Filter{Country: "KR"}, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m message
		if parseMessage(b, &m) != nil {
			return
		}
		var f *Filter
		if m.hasFilter {
			f = &Filter{ClientVersion: string(m.filter.version), Country: string(m.filter.country), Language: string(m.filter.language), Platform: string(m.filter.platform)}
		}
		out := appendMessage(nil, m.stime, string(m.topic), f, m.payload)
		var m2 message
		if err := parseMessage(out, &m2); err != nil {
			t.Fatalf("re-encoded message refused: %v", err)
		}
		if m2.stime != m.stime || !bytes.Equal(m2.topic, m.topic) || !bytes.Equal(m2.payload, m.payload) || m2.filter.country != nil && !bytes.Equal(m2.filter.country, m.filter.country) {
			t.Fatalf("re-encoded %x decodes differently from %x", out, b)
		}
	})
}
