package realtime

import (
	"bytes"
	"testing"
)

func TestDecodePayload(t *testing.T) {
	p := Publication{Channel: "a:b{c}", Offset: 42, Epoch: "ep1", Data: []byte("12:x:3:abc\x00")}
	got, ok := decodePayload(encodePayload(p))
	if !ok || got.Channel != p.Channel || got.Offset != p.Offset || got.Epoch != p.Epoch || !bytes.Equal(got.Data, p.Data) {
		t.Fatalf("round trip: %+v, %v", got, ok)
	}
	for _, bad := range []string{"", "1", "1:e", "1:e:", "x:e:1:a", "1:e:-1:a", "1:e:5:abc", "1:e:x:abc", "-1:e:1:a"} {
		if p, ok := decodePayload(bad); ok {
			t.Errorf("decodePayload(%q) = %+v, want failure", bad, p)
		}
	}
}

// FuzzDecodePayload: no input panics, and what decodes encodes back to
// something that decodes the same.
func FuzzDecodePayload(f *testing.F) {
	f.Add("0::4:chatdata")
	f.Add("12:ab3:0:")
	f.Add("1:e:3:a:b:c")
	f.Fuzz(func(t *testing.T, s string) {
		p, ok := decodePayload(s)
		if !ok {
			return
		}
		q, ok := decodePayload(encodePayload(p))
		if !ok || q.Channel != p.Channel || q.Offset != p.Offset || q.Epoch != p.Epoch || !bytes.Equal(q.Data, p.Data) {
			t.Fatalf("%q decodes to %+v, which re-encodes to %+v, %v", s, p, q, ok)
		}
	})
}

// FuzzParseConnField: no input panics, and connField inverts it.
func FuzzParseConnField(f *testing.F) {
	f.Add("6:node-a17")
	f.Add("0:")
	f.Add("3:a:bc:d")
	f.Fuzz(func(t *testing.T, s string) {
		node, conn, ok := parseConnField(s)
		if !ok {
			return
		}
		n2, c2, ok := parseConnField(connField(PresenceConn{Node: node, ConnID: conn}))
		if !ok || n2 != node || c2 != conn {
			t.Fatalf("%q -> (%q, %q) -> (%q, %q, %v)", s, node, conn, n2, c2, ok)
		}
	})
}
