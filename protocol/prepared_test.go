package protocol

import (
	"bytes"
	"errors"
	"testing"
)

// TestAppendPreparedMatchesAppendEncode: for every role, mode and body shape,
// AppendPrepared writes the frame AppendEncode writes (byte for byte, except
// the random nonce of authenticated server frames, which are compared by
// header and decoded body).
func TestAppendPreparedMatchesAppendEncode(t *testing.T) {
	keys := testKeys(t)
	server, client := codecPair(t, Config{XORKey: []byte("madang-xor-key")})
	peer := map[*Codec]*Codec{server: client, client: server}
	bodies := map[string][]byte{
		"empty":  {},
		"tiny":   []byte(`{}`),
		"200B":   gameJSON(200),
		"16KB":   gameJSON(16 << 10),
		"random": bytes.Repeat([]byte{0x9e, 0x37, 0x79, 0xb9, 0x7f, 0x4a, 0x7c, 0x15, 0x11}, 50),
	}
	for name, body := range bodies {
		for _, c := range []*Codec{server, client} {
			p, err := c.Prepare(body)
			if err != nil {
				t.Fatal(err)
			}
			for _, mode := range []Mode{ModePlain, ModeXOR, ModeAuthenticated} {
				o := EncodeOptions{Mode: mode, Keys: keys, Counter: 42}
				want, err := c.Encode(body, o)
				if err != nil {
					t.Fatal(err)
				}
				prefix := []byte("prefix")
				got, err := c.AppendPrepared(prefix, p, o)
				if err != nil {
					t.Fatalf("%s role %d %v: %v", name, c.Role(), mode, err)
				}
				if !bytes.Equal(got[:6], []byte("prefix")) {
					t.Fatal("prefix overwritten")
				}
				got = got[6:]
				if mode == ModeAuthenticated && c.Role() == RoleServer {
					hw, _ := ParseHeader(want)
					hg, err := ParseHeader(got)
					if err != nil || len(got) != len(want) || hg.HeaderLen != hw.HeaderLen || !bytes.Equal(got[:hg.HeaderLen], want[:hw.HeaderLen]) {
						t.Fatalf("%s server auth: header %x, want %x (%v)", name, got[:min(len(got), hw.HeaderLen)], want[:hw.HeaderLen], err)
					}
					dec, _, err := peer[c].Decode(got, keys)
					if err != nil || !bytes.Equal(dec, body) {
						t.Fatalf("%s server auth: decoded %q, %v", name, dec, err)
					}
					continue
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("%s role %d %v:\n got %x\nwant %x", name, c.Role(), mode, got, want)
				}
			}
		}
	}
}

func TestAppendPreparedErrors(t *testing.T) {
	keys := testKeys(t)
	server, client := codecPair(t, Config{MaxFrameSize: 1000})
	noise := make([]byte, 960) // incompressible
	x := uint32(2463534242)
	for i := range noise {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		noise[i] = byte(x)
	}
	p, err := server.Prepare(noise)
	if err == nil {
		// Plain fits; sealing adds key id and AEAD overhead over the limit.
		if _, err := server.AppendPrepared(nil, p, EncodeOptions{Mode: ModeAuthenticated, Keys: keys}); !errors.Is(err, ErrFrameTooLarge) {
			t.Fatalf("oversize sealed frame: %v", err)
		}
		if _, err := server.AppendPrepared(nil, p, EncodeOptions{Mode: ModeXOR}); err == nil {
			t.Fatal("XOR without key accepted")
		}
		if _, err := client.AppendPrepared(nil, p, EncodeOptions{}); err == nil {
			t.Fatal("prepared of the other role accepted")
		}
	} else if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatal(err)
	}
	if _, err := server.Prepare(make([]byte, DefaultMaxBodySize+1)); !errors.Is(err, ErrBodyTooLarge) {
		t.Fatalf("oversize body: %v", err)
	}
	cp, err := client.Prepare([]byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.AppendPrepared(nil, cp, EncodeOptions{Mode: ModeAuthenticated, Keys: keys}); !errors.Is(err, ErrCounter) {
		t.Fatalf("client frame without counter: %v", err)
	}
}

func TestAppendPreparedNoAlloc(t *testing.T) {
	keys := testKeys(t)
	server, _ := codecPair(t, Config{XORKey: []byte("k")})
	p, err := server.Prepare(gameJSON(1024))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, 4096)
	for _, mode := range []Mode{ModePlain, ModeXOR, ModeAuthenticated} {
		o := EncodeOptions{Mode: mode, Keys: keys}
		if n := testing.AllocsPerRun(100, func() { _, _ = server.AppendPrepared(buf[:0], p, o) }); n != 0 {
			t.Errorf("%v: %v allocs", mode, n)
		}
	}
	body := gameJSON(1024)[:900]
	if n := testing.AllocsPerRun(100, func() { _ = server.PrepareInto(p, body) }); n > 0 {
		t.Errorf("PrepareInto: %v allocs", n)
	}
}

func TestCutFrame(t *testing.T) {
	server, client := codecPair(t, Config{})
	var msg []byte
	bodies := [][]byte{[]byte(`{"a":1}`), gameJSON(500), {}}
	for _, b := range bodies {
		var err error
		msg, err = server.AppendEncode(msg, b, EncodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	rest := msg
	for i, want := range bodies {
		var frame []byte
		var err error
		frame, rest, err = CutFrame(rest)
		if err != nil {
			t.Fatal(err)
		}
		body, _, err := client.Decode(frame, nil)
		if err != nil || !bytes.Equal(body, want) {
			t.Fatalf("frame %d: %q %v", i, body, err)
		}
	}
	if len(rest) != 0 {
		t.Fatalf("%d bytes left", len(rest))
	}
	if _, _, err := CutFrame(msg[:len(msg)-1]); err != nil {
		// the first frame is whole; cut the last one short
		t.Fatal(err)
	}
	last := msg[len(msg)-7:]
	if _, _, err := CutFrame(last[:5]); !errors.Is(err, ErrTruncated) {
		t.Fatalf("short header: %v", err)
	}
	one, _ := server.Encode([]byte(`{"a":1}`), EncodeOptions{})
	if _, _, err := CutFrame(one[:len(one)-1]); !errors.Is(err, ErrTruncated) {
		t.Fatalf("short body: %v", err)
	}
}

// FuzzCutFrame: splitting a message never panics, every frame it yields
// parses, and the frames plus the rest are the message.
func FuzzCutFrame(f *testing.F) {
	server, _ := codecPair(f, Config{})
	var msg []byte
	for _, b := range [][]byte{[]byte(`{"a":1}`), gameJSON(300)} {
		msg, _ = server.AppendEncode(msg, b, EncodeOptions{})
	}
	f.Add(msg)
	f.Add(msg[:len(msg)-3])
	f.Add([]byte{1, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, msg []byte) {
		rest := msg
		total := 0
		for len(rest) > 0 {
			frame, r, err := CutFrame(rest)
			if err != nil {
				if CodeOf(err) != CodeBadFrame && CodeOf(err) != CodeTooLarge {
					t.Fatalf("error without a frame code: %v", err)
				}
				return
			}
			h, err := ParseHeader(frame)
			if err != nil || h.FrameLen() != len(frame) || len(frame) == 0 {
				t.Fatalf("cut a frame that does not parse: %v", err)
			}
			total += len(frame)
			rest = r
		}
		if total != len(msg) {
			t.Fatalf("frames cover %d of %d bytes", total, len(msg))
		}
	})
}
