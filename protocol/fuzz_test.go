package protocol

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"
)

// fuzzLimits keep fuzzing fast while still exercising the limit checks.
var fuzzLimits = Config{MaxFrameSize: 64 << 10, MaxBodySize: 256 << 10, XORKey: []byte("fuzz-xor")}

func fuzzCodecs(f *testing.F) (server, client *Codec, keys *Keys) {
	server, client = codecPair(f, fuzzLimits)
	return server, client, testKeys(f)
}

// FuzzFrameDecode feeds arbitrary bytes to both decoders: they must never
// panic, never return a body beyond the limits, and whatever they accept must
// survive a re-encode and decode unchanged.
func FuzzFrameDecode(f *testing.F) {
	server, client, keys := fuzzCodecs(f)
	for _, body := range [][]byte{nil, []byte(`{"cmd":"a"}`), gameJSON(300)} {
		for _, mode := range []Mode{ModePlain, ModeXOR, ModeAuthenticated} {
			for _, c := range []*Codec{server, client} {
				frame, err := c.Encode(body, EncodeOptions{Mode: mode, Keys: keys, Counter: 1})
				if err != nil {
					f.Fatal(err)
				}
				f.Add(frame)
			}
		}
	}
	// Compressed frames declaring more than a plain or XOR client frame may
	// (Config.MaxUnauthenticatedBodySize) but within MaxBodySize.
	for _, mode := range []Mode{ModePlain, ModeXOR, ModeAuthenticated} {
		frame, err := client.Encode(bytes.Repeat([]byte{'z'}, 100<<10), EncodeOptions{Mode: mode, Keys: keys, Counter: 1})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(frame)
	}
	budget := NewDecodeBudget(DecodeBudgetConfig{Bytes: 1 << 20, FreeBytes: -1, Wait: -1})
	f.Fuzz(func(t *testing.T, frame []byte) {
		// The budgeted decoder decodes what the plain one does and holds
		// nothing once its lease is released.
		b1, _, err1 := server.Decode(frame, keys)
		b2, _, lease, err2 := server.AppendDecodeBudget(context.Background(), budget, nil, frame, keys)
		if (err1 == nil) != (err2 == nil) || !bytes.Equal(b1, b2) || (err2 == nil && lease.Bytes() != int64(len(b2))) {
			t.Fatalf("budgeted decode differs: %v / %v, lease %d", err1, err2, lease.Bytes())
		}
		lease.Release()
		if s := budget.Stats(); s.InUse != 0 {
			t.Fatalf("budget holds %d bytes after release", s.InUse)
		}
		for _, c := range []*Codec{server, client} {
			body, h, err := c.Decode(frame, keys)
			if err != nil {
				if CodeOf(err) == CodeOK || CodeOf(err) == CodeInternal {
					t.Fatalf("decode error without a protocol code: %v", err)
				}
				continue
			}
			if len(body) > c.MaxBodySizeFor(ModeOf(h.Flags)) || cap(body) > c.MaxBodySize()+c.MaxFrameSize()+gcmNonceSize {
				t.Fatalf("body len %d cap %d beyond the limits", len(body), cap(body))
			}
			// What c accepts, the codec on the other side must be able to
			// send again, and c must read it back unchanged.
			peer := client
			if c == client {
				peer = server
			}
			again, err := peer.Encode(body, EncodeOptions{Mode: ModeOf(h.Flags), Keys: keys, Counter: 1})
			if CodeOf(err) == CodeTooLarge {
				continue // a body near the limits may compress differently
			}
			if err != nil {
				t.Fatalf("re-encode: %v", err)
			}
			back, _, err := c.Decode(again, keys)
			if err != nil || !bytes.Equal(back, body) {
				t.Fatalf("re-encoded body does not survive: %v", err)
			}
		}
	})
}

// FuzzFrameRoundTrip checks decode(encode(x)) == x for any body, mode and
// compression threshold.
func FuzzFrameRoundTrip(f *testing.F) {
	_, _, keys := fuzzCodecs(f)
	f.Add([]byte(`{"cmd":"shop.buy","payload":{"item":7}}`), uint8(0), int16(150))
	f.Add(gameJSON(2000), uint8(1), int16(0))
	f.Add(bytes.Repeat([]byte{0}, 5000), uint8(2), int16(1))
	f.Add([]byte{}, uint8(2), int16(-1))
	f.Fuzz(func(t *testing.T, body []byte, mode uint8, threshold int16) {
		cfg := fuzzLimits
		cfg.CompressThreshold = int(threshold)
		server, client := codecPair(t, cfg)
		opts := EncodeOptions{Mode: Mode(mode % 3), Keys: keys, Counter: uint64(len(body)) + 1}
		for _, pair := range [][2]*Codec{{client, server}, {server, client}} {
			frame, err := pair[0].Encode(body, opts)
			if err != nil {
				if len(body) > cfg.MaxBodySize || len(frame) > cfg.MaxFrameSize {
					continue
				}
				if CodeOf(err) == CodeTooLarge {
					continue
				}
				t.Fatalf("encode: %v", err)
			}
			got, _, err := pair[1].Decode(frame, keys)
			if errors.Is(err, ErrBodyTooLarge) && len(body) > pair[1].MaxBodySizeFor(opts.Mode) {
				continue // a plain or XOR client frame over MaxUnauthenticatedBodySize
			}
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !bytes.Equal(got, body) {
				t.Fatal("round trip changed the body")
			}
		}
	})
}

// FuzzEnvelopeDecode feeds arbitrary JSON to the request and response
// decoders: no panic; what they accept survives a re-encode unchanged.
func FuzzEnvelopeDecode(f *testing.F) {
	f.Add([]byte(`{"cmd":"dungeon.finish","seq":12,"rid":"r1","ctime":1732500000000,"token":"1.x","payload":{"damage":[1,2,3]}}`))
	f.Add([]byte(`{"seq":3,"rid":"q","code":30,"msg":"in flight","stime":5,"retry_ms":200,"replay":true,"payload":"x"}`))
	f.Add([]byte(`{"cmd":"a\u0000\"b","payload":null}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var req Request
		if err := DecodeRequest(body, &req); err == nil {
			var again Request
			if err := DecodeRequest(AppendRequest(nil, &req), &again); err != nil {
				t.Fatalf("re-encoded request refused: %v", err)
			}
			if again.Command != req.Command || again.Seq != req.Seq || again.RequestID != req.RequestID ||
				again.ClientTime != req.ClientTime || again.Token != req.Token || !bytes.Equal(again.Payload, req.Payload) {
				t.Fatalf("request changed: %+v -> %+v", req, again)
			}
		} else if CodeOf(err) != CodeBadRequest {
			t.Fatalf("request error code %v", CodeOf(err))
		}
		var resp Response
		if err := DecodeResponse(body, &resp); err == nil {
			out := AppendResponse(nil, &resp)
			if !json.Valid(out) {
				t.Fatalf("re-encoded response is not JSON: %s", out)
			}
			var again Response
			if err := DecodeResponse(out, &again); err != nil {
				t.Fatalf("re-encoded response refused: %v", err)
			}
			if again.Code != resp.Code || again.Message != resp.Message || again.Seq != resp.Seq || !bytes.Equal(again.Payload, resp.Payload) {
				t.Fatalf("response changed: %+v -> %+v", resp, again)
			}
		}
	})
}
