package protocol

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{
		"", "plain", `quo"te`, `back\slash`, "new\nline\r\t", "\x00\x01\x1f\x7f",
		"한국어 채팅", "emoji 🐉", "bad \xff utf8 \xc3", "<html>&amp;", "line\u2028sep\u2029",
	} {
		got := appendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%q: our output %s is not JSON: %v", s, got, err)
		}
		want, _ := json.Marshal(s)
		var wantBack string
		_ = json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Fatalf("%q: decodes to %q, encoding/json gives %q", s, back, wantBack)
		}
	}
}

func TestResponseRoundTrip(t *testing.T) {
	cases := []Response{
		{ServerTime: 1},
		{Seq: 7, RequestID: "r-1", Code: CodeOK, ServerTime: 1732500000123, Payload: json.RawMessage(`{"gold":10}`)},
		{Seq: 8, RequestID: "r\"2", Code: CodeInFlight, Message: "still running", ServerTime: 5, RetryAfterMs: 250},
		{Seq: 9, Code: CodeGameBase + 7, Message: "보석이 부족합니다", ServerTime: 6, Replay: true, Payload: json.RawMessage(`[1,2,3]`)},
	}
	for _, want := range cases {
		b := AppendResponse(nil, &want)
		var std Response
		if err := json.Unmarshal(b, &std); err != nil {
			t.Fatalf("%s: not JSON: %v", b, err)
		}
		var got Response
		if err := DecodeResponse(b, &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(std, want) {
			t.Fatalf("round trip of %+v: got %+v (encoding/json: %+v) from %s", want, got, std, b)
		}
	}
}

func TestRequestRoundTrip(t *testing.T) {
	want := Request{Command: "shop.buy", Seq: 3, RequestID: "abc", ClientTime: 1732500000000, Token: "10000042.xyz", Payload: json.RawMessage(`{"item":5}`)}
	var got Request
	if err := DecodeRequest(AppendRequest(nil, &want), &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestDecodeRequestRejects(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	for name, body := range map[string]string{
		"not json":      `{"cmd":`,
		"no cmd":        `{"seq":1}`,
		"empty cmd":     `{"cmd":""}`,
		"long cmd":      `{"cmd":"` + long(MaxCommandLen+1) + `"}`,
		"long rid":      `{"cmd":"a","rid":"` + long(MaxRequestIDLen+1) + `"}`,
		"long token":    `{"cmd":"a","token":"` + long(MaxTokenLen+1) + `"}`,
		"negative seq":  `{"cmd":"a","seq":-1}`,
		"string ctime":  `{"cmd":"a","ctime":"now"}`,
		"array":         `[1,2]`,
		"trailing junk": `{"cmd":"a"} x`,
	} {
		var r Request
		err := DecodeRequest([]byte(body), &r)
		if !errors.Is(err, ErrEnvelope) || CodeOf(err) != CodeBadRequest {
			t.Errorf("%s: err = %v (code %v), want ErrEnvelope", name, err, CodeOf(err))
		}
	}
	var r Request
	if err := DecodeRequest([]byte(`{"cmd":"a","payload":null}`), &r); err != nil || r.Payload != nil {
		t.Fatalf("null payload: %v %q", err, r.Payload)
	}
}

func TestPushEncoding(t *testing.T) {
	p := Push{Topic: "chat", Channel: "world:3", ID: 42, Epoch: "e1", ServerTime: 99, Payload: json.RawMessage(`{"text":"hi"}`)}
	b := AppendPush(nil, &p)
	if !IsPush(b) {
		t.Fatalf("IsPush(%s) = false", b)
	}
	var got Push
	if err := json.Unmarshal(b, &got); err != nil || !reflect.DeepEqual(got, p) {
		t.Fatalf("got %+v, %v", got, err)
	}
	if IsPush(AppendResponse(nil, &Response{Seq: 1})) {
		t.Fatal("a response reads as a push")
	}
}

func TestCodeOf(t *testing.T) {
	if CodeOf(nil) != CodeOK {
		t.Fatal("nil")
	}
	if got := CodeOf(errors.New("boom")); got != CodeInternal {
		t.Fatalf("plain error: %v", got)
	}
	wrapped := errors.Join(errors.New("ctx"), &Error{Code: CodeKicked})
	if got := CodeOf(wrapped); got != CodeKicked {
		t.Fatalf("wrapped: %v", got)
	}
	if got := CodeOf(coded(CodeBlocked)); got != CodeBlocked {
		t.Fatalf("Coder: %v", got)
	}
	if CodeMaintenance.String() != "maintenance" || Code(1234).String() != "game_1234" || Code(999).String() != "code_999" {
		t.Fatal("String")
	}
	// Every code in the table has a distinct name.
	seen := map[string]Code{}
	for c, n := range codeNames {
		if o, dup := seen[n]; dup {
			t.Fatalf("codes %d and %d share the name %q", c, o, n)
		}
		seen[n] = c
	}
}

type coded Code

func (c coded) Error() string    { return "coded" }
func (c coded) ResultCode() Code { return Code(c) }
