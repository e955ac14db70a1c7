package protocol

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
)

// envelopeCases are request and response envelopes the differential tests
// run through both decoders: what clients and servers send, and the corners
// of encoding/json's acceptance (case folding, escapes, duplicates, null,
// numbers of every form, invalid UTF-8, nesting, white space, syntax errors).
var envelopeCases = []string{
	// PROTOCOL.md §10.
	`{"cmd":"stage.clear","seq":12,"rid":"Vh3kX9cQeB2mT7wLp0sJdA","ctime":1767225600123,"payload":{"stage":"3-7","stars":3,"turns":14}}`,
	`{"seq":12,"rid":"Vh3kX9cQeB2mT7wLp0sJdA","code":0,"stime":1767225600187,"payload":{"gold":48210,"exp":85,"first_clear":true}}`,
	`{"code":14,"msg":"protocol: frame counter at or below the last accepted","stime":1767225601503}`,
	`{"push":"chat","ch":"guild.77","id":1024,"stime":1767225602000,"payload":{"from":10000042,"data":{"text":"raid in 5"}}}`,
	// Members: unknown, duplicated, null, out of order, empty object.
	`{}`, ` { } `, `{"cmd":"a"}`, `{"cmd":"a","extra":[1,{"x":null}],"zz":"q"}`,
	`{"cmd":"a","cmd":"b"}`, `{"cmd":"a","cmd":null}`, `{"cmd":null}`, `{"seq":1,"seq":2,"cmd":"x"}`,
	`{"cmd":"x","seq":5,"seq":null}`, `{"cmd":"x","payload":{"a":1},"payload":null}`, `{"cmd":"x","payload":null,"payload":[]}`,
	`{"cmd":"x","payload":"str"}`, `{"cmd":"x","payload":12.5e-3}`, `{"cmd":"x","payload":true}`, `{"cmd":"x","payload":{}}`,
	`{"code":3,"code":null,"replay":true,"replay":null,"msg":"m","msg":null}`, `{"replay":false}`, `{"replay":1}`,
	`{"payload":{"a":[]},"stime":-0}`, `{"stime":-1,"retry_ms":250}`,
	// Case-insensitive names (encoding/json folds; Unicode: ſ is s, K is k).
	`{"CMD":"a"}`, `{"Cmd":"a","cmd":"b"}`, `{"cmd":"a","CMD":"b"}`, `{"cmd":"a","ſeq":3}`, `{"cmd":"a","toKen":"t"}`,
	`{"Code":9,"MSG":"x","Replay":true,"Payload":1}`, `{"cmd":"a","\u0073eq":4}`, `{"\u0063md":"a"}`,
	// Strings: escapes, UTF-8, invalid UTF-8, control characters.
	`{"cmd":"a\"b"}`, `{"cmd":"a\/b\u00e9\n"}`, `{"cmd":"한국어"}`, "{\"cmd\":\"a\xffb\"}", "{\"cmd\":\"\xed\xa0\x80\"}",
	"{\"cmd\":\"a\x01\"}", `{"cmd":"\ud800"}`, `{"cmd":"\ud83d\ude00"}`, `{"cmd":"a","rid":"\u2028"}`, "{\"cmd\":\"a\",\"x\":\"\xff\"}",
	"{\"cmd\":\"a\",\"payload\":\"\xff\xfe\"}", `{"cmd":"a","x":"\q"}`, `{"cmd":"a","x":"\u12g4"}`, `{"msg":"\u0000"}`,
	// Numbers.
	`{"cmd":"a","seq":18446744073709551615}`, `{"cmd":"a","seq":18446744073709551616}`, `{"cmd":"a","seq":1844674407370955161}`,
	`{"cmd":"a","seq":-1}`, `{"cmd":"a","seq":-0}`, `{"cmd":"a","seq":1.0}`, `{"cmd":"a","seq":1e2}`, `{"cmd":"a","seq":01}`,
	`{"cmd":"a","seq":0}`, `{"cmd":"a","seq":"1"}`, `{"cmd":"a","ctime":-9223372036854775808}`, `{"cmd":"a","ctime":9223372036854775808}`,
	`{"cmd":"a","ctime":-123456789012345678}`, `{"cmd":"a","ctime":-}`, `{"cmd":"a","ctime":--1}`, `{"code":2147483647}`,
	`{"code":2147483648}`, `{"code":-2147483648}`, `{"code":999999999}`, `{"code":1E1}`, `{"cmd":"a","x":-0.0e+00}`, `{"cmd":"a","x":1.}`,
	`{"cmd":"a","x":.5}`, `{"cmd":"a","x":1e}`, `{"cmd":"a","x":+1}`,
	// Types.
	`{"cmd":1}`, `{"cmd":["a"]}`, `{"cmd":{"a":1}}`, `{"cmd":true}`, `{"cmd":"a","token":5}`, `{"stime":"1"}`, `{"seq":true}`,
	// Syntax.
	``, ` `, `null`, `[]`, `"x"`, `1`, `{`, `{"cmd"`, `{"cmd":}`, `{"cmd":"a",}`, `{"cmd":"a"}}`, `{"cmd":"a"} {}`, `{"cmd":"a"}x`,
	`{,"cmd":"a"}`, `{"cmd" "a"}`, `{"cmd":"a" "seq":1}`, `{'cmd':'a'}`, `{"cmd":"a","x":[1,]}`, `{"cmd":"a","x":[,1]}`,
	`{"cmd":"a","x":{"k"}}`, `{"cmd":"a","x":{1:2}}`, `{"cmd":"a","x":tru}`, `{"cmd":"a","x":nul}`, `{"cmd":"a","x":nulll}`,
	"\t{\r\n\"cmd\" :\t\"a\" ,\n\"seq\" : 3 }\n", "\ufeff{\"cmd\":\"a\"}", "{\"cmd\":\"a\"}\x00", `{"cmd":"a","payload":{"x":1}}   `,
	// Limits.
	`{"cmd":"` + strings.Repeat("c", MaxCommandLen) + `"}`, `{"cmd":"` + strings.Repeat("c", MaxCommandLen+1) + `"}`,
	`{"cmd":"a","rid":"` + strings.Repeat("r", MaxRequestIDLen+1) + `"}`, `{"cmd":"a","token":"` + strings.Repeat("t", MaxTokenLen) + `"}`,
	`{"cmd":"a","token":"` + strings.Repeat("t", MaxTokenLen+1) + `"}`, `{"cmd":"a","rid":"` + strings.Repeat("é", 100) + `"}`,
	// Nesting around the fast path's bound and encoding/json's.
	`{"cmd":"a","payload":` + strings.Repeat("[", scanMaxDepth-1) + strings.Repeat("]", scanMaxDepth-1) + `}`,
	`{"cmd":"a","payload":` + strings.Repeat("[", scanMaxDepth) + strings.Repeat("]", scanMaxDepth) + `}`,
	`{"cmd":"a","payload":` + strings.Repeat(`{"a":`, scanMaxDepth+3) + `1` + strings.Repeat("}", scanMaxDepth+3) + `}`,
	`{"cmd":"a","payload":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `}`,
	`{"cmd":"a","payload":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`,
}

// checkEnvelopeDiff decodes body with DecodeRequest/DecodeResponse and with
// their encoding/json reference; both must agree on success, every field
// and the error message.
func checkEnvelopeDiff(t *testing.T, body []byte) {
	t.Helper()
	var got, want Request
	errGot, errWant := DecodeRequest(body, &got), decodeRequestStd(body, &want)
	if errString(errGot) != errString(errWant) || !reflect.DeepEqual(got, want) {
		t.Fatalf("request %q:\n got %+v, %v\nwant %+v, %v (encoding/json)", body, got, errGot, want, errWant)
	}
	var gotR, wantR Response
	errGot, errWant = DecodeResponse(body, &gotR), decodeResponseStd(body, &wantR)
	if errString(errGot) != errString(errWant) || (errWant == nil && !reflect.DeepEqual(gotR, wantR)) {
		t.Fatalf("response %q:\n got %+v, %v\nwant %+v, %v (encoding/json)", body, gotR, errGot, wantR, errWant)
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

func TestEnvelopeScanMatchesEncodingJSON(t *testing.T) {
	for _, c := range envelopeCases {
		checkEnvelopeDiff(t, []byte(c))
	}
	for _, body := range vectorBodies(t) {
		checkEnvelopeDiff(t, []byte(body))
	}
	// What the package's own writers produce.
	for _, r := range []Request{
		{Command: "shop.buy", Seq: 3, RequestID: NewRequestID(), ClientTime: 1732500000000, Token: "10000042.xyz", Payload: json.RawMessage(`{"item":5}`)},
		{Command: "q\"\\\n\x01é\u2028", RequestID: "\xff", Token: "t"},
	} {
		checkEnvelopeDiff(t, AppendRequest(nil, &r))
	}
	for _, r := range []Response{
		{Seq: 8, RequestID: "r\"2", Code: CodeInFlight, Message: "still running", ServerTime: 5, RetryAfterMs: 250},
		{Seq: 9, Code: CodeGameBase + 7, Message: "보석이 부족합니다", ServerTime: -6, Replay: true, Payload: json.RawMessage(`[1,2,3]`)},
	} {
		checkEnvelopeDiff(t, AppendResponse(nil, &r))
	}
}

// vectorBodies returns the envelopes of protocol/testdata/vectors.json.
func vectorBodies(t testing.TB) []string {
	raw, err := os.ReadFile(vecPath)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Vectors []struct {
			Body string `json:"body"`
		} `json:"vectors"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Vectors) == 0 {
		t.Fatal("no vectors")
	}
	var out []string
	for _, v := range f.Vectors {
		out = append(out, v.Body)
	}
	return out
}

// TestEnvelopeScanFastPath: the envelopes clients and servers send are read
// by the fast path (so the speed-up is real), and the corners it leaves to
// encoding/json are left to it (so the differential test covers them).
func TestEnvelopeScanFastPath(t *testing.T) {
	fast := append(vectorBodies(t),
		`{"cmd":"a","extra":[1,{"x":null}],"zz":"q"}`, `{"cmd":"a","cmd":"b"}`, `{"cmd":"a","cmd":null}`,
		`{"cmd":"x","payload":{"a":"\u00e9\n"},"payload":null}`, `{"code":3,"replay":true,"msg":"한국어"}`,
		"\t{\r\n\"cmd\" :\t\"a\" ,\n\"seq\" : 3 }\n", `{}`, `{"CMDX":1,"payloads":2}`)
	for _, b := range fast {
		var w reqSpans
		var r respSpans
		if !scanRequest([]byte(b), &w) || !scanResponse([]byte(b), &r) {
			t.Errorf("fast path refused %s", b)
		}
	}
	for _, b := range []string{
		`{"CMD":"a"}`, `{"cmd":"a","Seq":1}`, `{"ſeq":1}`, `{"\u0063md":"a"}`, `{"cmd":"a\"b"}`, "{\"cmd\":\"a\xffb\"}",
		`{"cmd":"a","seq":1.0}`, `{"cmd":"a","seq":-1}`, `{"cmd":"a","seq":18446744073709551615}`, `{"cmd":1}`,
		`{"cmd":"a",}`, `{"cmd":"a"}x`, `null`, `[]`, `{"cmd":"a","x":"\q"}`,
		`{"cmd":"a","payload":` + strings.Repeat("[", scanMaxDepth) + strings.Repeat("]", scanMaxDepth) + `}`,
	} {
		var w reqSpans
		if scanRequest([]byte(b), &w) {
			t.Errorf("fast path read %s, which it must leave to encoding/json", b)
		}
	}
}

// TestEnvelopeMembers pins what docs/PROTOCOL.md §9 says of members:
// unknown members are ignored, names match case-insensitively (do not rely
// on it), the last of duplicate members wins, and a null member reads as
// absent (a null payload as no payload).
func TestEnvelopeMembers(t *testing.T) {
	for body, want := range map[string]Request{
		`{"cmd":"a","unknown":{"x":[1]},"seq":2}`:                  {Command: "a", Seq: 2},
		`{"cmd":"a","cmd":"b","rid":"1","rid":"2"}`:                {Command: "b", RequestID: "2"},
		`{"Cmd":"a","SEQ":7}`:                                      {Command: "a", Seq: 7},
		`{"cmd":"a","token":"t","token":null}`:                     {Command: "a", Token: "t"},
		`{"cmd":"a","payload":{"x":1},"payload":null}`:             {Command: "a"},
		`{"cmd":"a","payload":null,"payload":{"x":1}}`:             {Command: "a", Payload: json.RawMessage(`{"x":1}`)},
		`{"cmd":"a","ctime":-5,"payload":[1, 2 ,3] ,"x":"\u0000"}`: {Command: "a", ClientTime: -5, Payload: json.RawMessage(`[1, 2 ,3]`)},
	} {
		var got Request
		if err := DecodeRequest([]byte(body), &got); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %+v, %v; want %+v", body, got, err, want)
		}
	}
}

// TestDecodeCopies: the decoded strings and payload do not alias the body,
// which the HTTP adapter reuses for the next request.
func TestDecodeCopies(t *testing.T) {
	body := []byte(`{"cmd":"shop.buy","rid":"r1","token":"1.t","payload":{"item":5}}`)
	var r Request
	if err := DecodeRequest(body, &r); err != nil {
		t.Fatal(err)
	}
	resp := []byte(`{"seq":1,"rid":"r1","code":0,"msg":"ok","stime":5,"payload":{"item":5}}`)
	var rr Response
	if err := DecodeResponse(resp, &rr); err != nil {
		t.Fatal(err)
	}
	for i := range body {
		body[i] = 'X'
	}
	for i := range resp {
		resp[i] = 'X'
	}
	if r.Command != "shop.buy" || r.RequestID != "r1" || r.Token != "1.t" || string(r.Payload) != `{"item":5}` {
		t.Fatalf("request aliases its body: %+v", r)
	}
	if rr.RequestID != "r1" || rr.Message != "ok" || string(rr.Payload) != `{"item":5}` {
		t.Fatalf("response aliases its body: %+v", rr)
	}
}

// FuzzEnvelopeDifferential compares the envelope decoders with their
// encoding/json reference on any input: same acceptance, same fields, same
// error.
func FuzzEnvelopeDifferential(f *testing.F) {
	for _, c := range envelopeCases {
		if len(c) < 4096 {
			f.Add([]byte(c))
		}
	}
	for _, b := range vectorBodies(f) {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkEnvelopeDiff(t, body)
	})
}

// BenchmarkEnvelopeDecode: the envelope decoders (fast path) against their
// encoding/json reference on the PROTOCOL.md §10 envelopes.
func BenchmarkEnvelopeDecode(b *testing.B) {
	req := []byte(`{"cmd":"stage.clear","seq":12,"rid":"Vh3kX9cQeB2mT7wLp0sJdA","ctime":1767225600123,"token":"10000042.9f8e7d6c5b4a39281706f5e4d3c2b1a0","payload":{"stage":"3-7","stars":3,"turns":14}}`)
	resp := []byte(`{"seq":12,"rid":"Vh3kX9cQeB2mT7wLp0sJdA","code":0,"stime":1767225600187,"payload":{"gold":48210,"exp":85,"first_clear":true}}`)
	for _, c := range []struct {
		name string
		fn   func([]byte, *Request) error
	}{{"request/encoding-json", decodeRequestStd}, {"request/scan", DecodeRequest}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(req)))
			for b.Loop() {
				var r Request
				if err := c.fn(req, &r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	for _, c := range []struct {
		name string
		fn   func([]byte, *Response) error
	}{{"response/encoding-json", decodeResponseStd}, {"response/scan", DecodeResponse}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(resp)))
			for b.Loop() {
				var r Response
				if err := c.fn(resp, &r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
