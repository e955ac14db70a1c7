package liveops

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/madang-io/madang/protocol"
)

// memberCases are JSON payloads, valid or not, for the fast paths'
// equivalence with the map code.
var memberCases = []string{
	``, `{}`, ` { } `, `null`, `[]`, `[1,2]`, `"x"`, `12`, `true`, `{`, `}`, `{"a":}`, `{"a":1,}`, `{"a" 1}`,
	`{"a":1}{}`, `{"a":1} x`,
	`{"platform":"android","client_version":"1.2.3","device_id":"d1"}`,
	`{ "platform" : "ios" , "client_version":"2.0", "apk_md5":"abc", "cert_sha256":["x","y"] }`,
	"{\n\t\"platform\":\"android\",\r\n\"client_version\":\"1.0\"}\n",
	`{"platform":"an\"droid","client_version":"1\u00e9"}`,
	`{"platform":"andröid","client_version":"1.0"}`,
	`{"platform":"a","platform":"b"}`,
	`{"plat\u0066orm":"x","platform":"y"}`,
	`{"platform":null,"client_version":5,"device_id":{"a":[1,{"b":"}"}]},"z":[]}`,
	`{"platform":"<b>&amp;</b>","liveops":{"old":true}}`,
	`{"token":"t","key_id":"k","secret":"c2VjcmV0","user_key":42,"new_user":true,"server_time":1700000000000}`,
	`{"b":1,"a":{"x":[1, 2, {"y" : "z w"}]},"c":"q r","d":-1.5e3,"e":false,"f":null}`,
	`{"a":"x\\\"y","b":"\\"}`,
	`{"liveops":1,"liveops":2}`,
	`{"zz":1,"aa":2,"zz":3}`,
	"{\"a\":\"\u2028\"}",
}

// TestParseLoginPayloadMatchesMap: the login middleware reads each member
// as the map[string]json.RawMessage decode did, and fails where it failed.
func TestParseLoginPayloadMatchesMap(t *testing.T) {
	names := []string{"platform", "client_version", "device_id", "apk_md5", "cert_sha256", "absent", "z", "plat\\u0066orm"}
	for _, c := range memberCases {
		var want map[string]json.RawMessage
		werr := error(nil)
		if len(c) > 0 {
			werr = json.Unmarshal([]byte(c), &want)
		}
		got, gerr := parseLoginPayload([]byte(c), nil)
		if (werr != nil) != (gerr != nil) {
			t.Errorf("%q: error %v, the map decode's %v", c, gerr, werr)
			continue
		}
		if werr != nil {
			continue
		}
		for _, n := range names {
			if g, w := got.raw(n), want[n]; !bytes.Equal(g, w) {
				t.Errorf("%q: raw(%q) = %q, the map decode's %q", c, n, g, w)
			}
			var ws string
			_ = json.Unmarshal(want[n], &ws)
			if g := got.str(n); g != ws {
				t.Errorf("%q: str(%q) = %q, the map decode's %q", c, n, g, ws)
			}
		}
	}
}

// addMemberByMap is addMember as it was: the reference of its output.
func addMemberByMap(resp *protocol.Response, name string, v any) *protocol.Response {
	if resp == nil {
		resp = &protocol.Response{}
	}
	obj := map[string]json.RawMessage{}
	if len(resp.Payload) > 0 {
		if err := json.Unmarshal(resp.Payload, &obj); err != nil {
			return resp
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return resp
	}
	obj[name] = b
	out, err := json.Marshal(obj)
	if err != nil {
		return resp
	}
	c := *resp
	c.Payload = out
	return &c
}

// TestAddMemberMatchesMap: the login answer's bytes are the map code's,
// byte for byte, for every payload the map code takes; a payload it
// leaves alone is left alone.
func TestAddMemberMatchesMap(t *testing.T) {
	values := []any{
		LoginInfo{}, LoginInfo{DataVersion: "d1", AssetVersion: "a<1>", ReviewServerURL: "https://r?a=1&b=2", DirectiveCode: DirectiveForceClose, CloseAt: 7},
		map[string]any{"x": "é"}, 3, nil,
	}
	fast := 0
	for _, c := range memberCases {
		if c == `null` {
			continue // the map code panics on it (a nil map), as it always did
		}
		for _, name := range []string{"liveops", "a", "zz", "<x>", `q"`} {
			for _, v := range values {
				in := &protocol.Response{Code: protocol.CodeOK, Message: "m", Payload: []byte(c)}
				want := addMemberByMap(in, name, v)
				got := addMember(in, name, v)
				if !bytes.Equal(got.Payload, want.Payload) || got.Code != want.Code || got.Message != want.Message {
					t.Errorf("%q + %q: %v: got %q, the map code's %q", c, name, v, got.Payload, want.Payload)
				}
				if b, err := json.Marshal(v); err == nil {
					if _, ok := withMember([]byte(c), name, b); ok {
						fast++
					}
				}
			}
		}
	}
	if fast == 0 {
		t.Fatal("the fast path never applied")
	}
	if got := addMember(nil, "liveops", LoginInfo{DataVersion: "v"}); string(got.Payload) != `{"liveops":{"data_version":"v"}}` {
		t.Errorf("nil response: %q", got.Payload)
	}
}

// BenchmarkAddMember is addMember on an auth.guest answer.
func BenchmarkAddMember(b *testing.B) {
	resp := &protocol.Response{Payload: []byte(`{"token":"42.abcdefghijklmnopqrstuv.ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef","key_id":"42.abcdefghijklmnopqrstuv","secret":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0","user_key":42,"new_user":true,"server_time":1700000000000}`)}
	info := LoginInfo{DataVersion: "d1", AssetVersion: "a1"}
	b.ReportAllocs()
	for b.Loop() {
		addMember(resp, "liveops", info)
	}
}

// BenchmarkParseLoginPayload is the login middleware's read of an
// auth.guest payload's platform and version.
func BenchmarkParseLoginPayload(b *testing.B) {
	p := []byte(`{"device_id":"dev-0123456789abcdef","platform":"android","client_version":"1.0.0","country":"KR","language":"ko"}`)
	b.ReportAllocs()
	for b.Loop() {
		mp := memberPool.Get().(*[]member)
		in, err := parseLoginPayload(p, *mp)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = in.str("platform"), in.str("client_version")
		*mp = in.members[:0]
		memberPool.Put(mp)
	}
}

// BenchmarkAddMemberByMap is the map code BenchmarkAddMember replaced.
func BenchmarkAddMemberByMap(b *testing.B) {
	resp := &protocol.Response{Payload: []byte(`{"token":"42.abcdefghijklmnopqrstuv.ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef","key_id":"42.abcdefghijklmnopqrstuv","secret":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0","user_key":42,"new_user":true,"server_time":1700000000000}`)}
	info := LoginInfo{DataVersion: "d1", AssetVersion: "a1"}
	b.ReportAllocs()
	for b.Loop() {
		addMemberByMap(resp, "liveops", info)
	}
}

// BenchmarkParseLoginPayloadByMap is the map code BenchmarkParseLoginPayload
// replaced.
func BenchmarkParseLoginPayloadByMap(b *testing.B) {
	p := []byte(`{"device_id":"dev-0123456789abcdef","platform":"android","client_version":"1.0.0","country":"KR","language":"ko"}`)
	b.ReportAllocs()
	for b.Loop() {
		var in map[string]json.RawMessage
		if err := json.Unmarshal(p, &in); err != nil {
			b.Fatal(err)
		}
		var s1, s2 string
		_ = json.Unmarshal(in["platform"], &s1)
		_ = json.Unmarshal(in["client_version"], &s2)
	}
}

// FuzzLoginMembers runs the payload read's and the answer member's
// equivalence with the map code on any payload.
func FuzzLoginMembers(f *testing.F) {
	for _, c := range memberCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		var want map[string]json.RawMessage
		werr := error(nil)
		if len(p) > 0 {
			werr = json.Unmarshal(p, &want)
		}
		got, gerr := parseLoginPayload(p, nil)
		if (werr != nil) != (gerr != nil) {
			t.Fatalf("%q: error %v, the map decode's %v", p, gerr, werr)
		}
		if werr == nil {
			for k := range want {
				if g := got.raw(k); !bytes.Equal(g, want[k]) {
					t.Fatalf("%q: raw(%q) = %q, the map decode's %q", p, k, g, want[k])
				}
				var ws string
				_ = json.Unmarshal(want[k], &ws)
				if g := got.str(k); g != ws {
					t.Fatalf("%q: str(%q) = %q, the map decode's %q", p, k, g, ws)
				}
			}
		}
		if out, ok := withMember(p, "liveops", []byte(`{"data_version":"v"}`)); ok {
			ref := addMemberByMap(&protocol.Response{Payload: p}, "liveops", json.RawMessage(`{"data_version":"v"}`))
			if !bytes.Equal(out, ref.Payload) {
				t.Fatalf("%q: %q, the map code's %q", p, out, ref.Payload)
			}
		}
	})
}
