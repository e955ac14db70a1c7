package realtime

import (
	"encoding/json"
	"testing"
)

func TestDecodeRoomMsg(t *testing.T) {
	good := `{"op":"input","room":"raid-1","user":7,"node":"n1","seq":3,"data":{"damage":5}}`
	var m roomMsg
	if err := decodeRoomMsg([]byte(good), &m); err != nil || m.Op != "input" || m.User != 7 || string(m.Data) != `{"damage":5}` {
		t.Fatalf("decode = %+v, %v", m, err)
	}
	for _, bad := range []string{
		``, `{`, `[]`, `{"op":"boom","room":"r","node":"n"}`,
		`{"op":"join","room":"bad room","node":"n"}`,
		`{"op":"join","room":"r","node":""}`,
		`{"op":"reply"}`,
		`{"op":"input","room":"r","node":"n","data":1}x`,
	} {
		var m roomMsg
		if err := decodeRoomMsg([]byte(bad), &m); err == nil {
			t.Errorf("decodeRoomMsg(%q) = %+v, want an error", bad, m)
		}
	}
}

// FuzzRoomMessage: no node message panics the decoder, and what it accepts
// marshals back to a message it accepts the same.
func FuzzRoomMessage(f *testing.F) {
	f.Add([]byte(`{"op":"join","room":"raid-1","user":1,"node":"n1","seq":1}`))
	f.Add([]byte(`{"op":"reply","seq":9,"code":52,"msg":"x","data":{"a":[1,2]}}`))
	f.Add([]byte(`{"op":"disconnect","room":"pvp-x","user":-3,"node":"a:b"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m roomMsg
		if decodeRoomMsg(b, &m) != nil {
			return
		}
		out, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("marshal %+v: %v", m, err)
		}
		var m2 roomMsg
		if err := decodeRoomMsg(out, &m2); err != nil {
			t.Fatalf("re-decode %s: %v", out, err)
		}
		if m2.Op != m.Op || m2.Room != m.Room || m2.User != m.User || m2.Node != m.Node || m2.Seq != m.Seq || m2.Code != m.Code {
			t.Fatalf("round trip %+v != %+v", m2, m)
		}
	})
}
