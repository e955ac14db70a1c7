package session

import (
	"strings"
	"testing"
	"time"
)

func TestDataRoundTrip(t *testing.T) {
	n := CreateParams{UserKey: 5, ShardID: -3, ClientVersion: "1.0", Platform: "ios", DeviceID: "d\x00e",
		Country: "KR", Language: "ko-KR", Attrs: map[string]string{"": "empty key", "k": strings.Repeat("v", 300)}}
	secret := []byte("0123456789abcdef0123456789abcdef")
	var s Session
	if err := decodeData(encodeData(&n, 1764039600123, secret), &s); err != nil {
		t.Fatal(err)
	}
	if s.ShardID != -3 || s.ClientVersion != "1.0" || s.Platform != "ios" || s.DeviceID != "d\x00e" ||
		s.Country != "KR" || s.Language != "ko-KR" || !s.Created.Equal(time.UnixMilli(1764039600123)) ||
		string(s.Secret) != string(secret) || len(s.Attrs) != 2 || s.Attrs[""] != "empty key" || len(s.Attrs["k"]) != 300 {
		t.Fatalf("decoded %+v", s)
	}
	for _, bad := range []string{"", "\x05ab", "\x01", encodeData(&n, 1, secret)[:20]} {
		if err := decodeData(bad, &Session{}); err == nil {
			t.Errorf("decodeData(%q) accepted", bad)
		}
	}
}

// FuzzDecodeData: session data read back from Redis never panics the
// decoder, and what encodeData writes always decodes.
func FuzzDecodeData(f *testing.F) {
	f.Add(encodeData(&CreateParams{UserKey: 1, Attrs: map[string]string{"a": "b"}}, 1, make([]byte, 32)))
	f.Add("")
	f.Add("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff")
	f.Fuzz(func(t *testing.T, d string) {
		var s Session
		_ = decodeData(d, &s)
		n := CreateParams{UserKey: 1, ClientVersion: d, Attrs: map[string]string{d: d}}
		if err := decodeData(encodeData(&n, 7, []byte(d)), &s); err != nil || s.ClientVersion != d || s.Attrs[d] != d {
			t.Fatalf("round trip of %q: %v", d, err)
		}
	})
}

func FuzzParseEvent(f *testing.F) {
	f.Add("k 12.AAAAAAAAAAAA")
	f.Add("r 12.AAAAAAAAAAAA")
	f.Add("x")
	f.Fuzz(func(t *testing.T, p string) {
		ev, ok := parseEvent(p)
		if ok && (ev.UserKey <= 0 || (ev.Kind != EventKicked && ev.Kind != EventRevoked)) {
			t.Fatalf("parseEvent(%q) = %+v", p, ev)
		}
	})
}
