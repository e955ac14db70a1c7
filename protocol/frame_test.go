package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// gameJSON returns realistic, compressible game JSON of about n bytes.
func gameJSON(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"player":{"userKey":10000042,"name":"hero","level":37,"gold":120500,"gems":350},"items":[`)
	for i := 0; b.Len() < n-40; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%d,"tpl":%d,"lv":%d,"qty":%d}`, 9000+i, 1100+i%17, 1+i%30, 1+i%5)
	}
	b.WriteString(`],"ok":true}`)
	return []byte(b.String())
}

func testKeys(t testing.TB) *Keys {
	t.Helper()
	k, err := NewKeys([]byte("10000042.k1"), bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func codecPair(t testing.TB, cfg Config) (server, client *Codec) {
	t.Helper()
	cfg.Role = RoleServer
	s, err := NewCodec(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Role = RoleClient
	c, err := NewCodec(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

func TestFrameRoundTrip(t *testing.T) {
	keys := testKeys(t)
	server, client := codecPair(t, Config{XORKey: []byte("madang-xor-key")})
	bodies := map[string][]byte{
		"empty":        {},
		"tiny":         []byte(`{}`),
		"below-thresh": gameJSON(120),
		"200B":         gameJSON(200),
		"1KB":          gameJSON(1024),
		"16KB":         gameJSON(16 << 10),
		"random":       bytes.Repeat([]byte{0x9e, 0x37, 0x79, 0xb9, 0x7f, 0x4a, 0x7c, 0x15, 0x11}, 50),
	}
	for _, mode := range []Mode{ModePlain, ModeXOR, ModeAuthenticated} {
		for name, body := range bodies {
			t.Run(mode.String()+"/"+name, func(t *testing.T) {
				for dir, enc := range map[string][2]*Codec{"c2s": {client, server}, "s2c": {server, client}} {
					frame, err := enc[0].Encode(body, EncodeOptions{Mode: mode, Keys: keys, Counter: 5})
					if err != nil {
						t.Fatalf("%s encode: %v", dir, err)
					}
					h, err := ParseHeader(frame)
					if err != nil {
						t.Fatalf("%s parse: %v", dir, err)
					}
					if got := ModeOf(h.Flags); got != mode {
						t.Fatalf("%s mode %v, want %v", dir, got, mode)
					}
					compressed := h.Flags&FlagCompressed != 0
					if wantTry := len(body) >= DefaultCompressThreshold; compressed && !wantTry {
						t.Fatalf("%s: compressed a %d-byte body below the threshold", dir, len(body))
					}
					if compressed && h.RawLen != len(body) {
						t.Fatalf("%s: raw len %d, want %d", dir, h.RawLen, len(body))
					}
					got, h2, err := enc[1].Decode(frame, keys)
					if err != nil {
						t.Fatalf("%s decode: %v", dir, err)
					}
					if !bytes.Equal(got, body) {
						t.Fatalf("%s: body mismatch", dir)
					}
					if mode == ModeAuthenticated && dir == "c2s" && h2.Counter != 5 {
						t.Fatalf("counter %d, want 5", h2.Counter)
					}
				}
			})
		}
	}
}

func TestCompressionOnlyWhenSmaller(t *testing.T) {
	server, _ := codecPair(t, Config{})
	// Compressible JSON above the threshold is compressed and smaller.
	body := gameJSON(1024)
	frame, err := server.Encode(body, EncodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if frame[1]&byte(FlagCompressed) == 0 || len(frame) >= len(body)+fixedHeaderLen {
		t.Fatalf("1 KB of JSON: flags %#x, frame %d bytes", frame[1], len(frame))
	}
	// Incompressible bytes stay raw: the frame is header + body.
	noise := make([]byte, 400)
	x := uint32(2463534242)
	for i := range noise {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		noise[i] = byte(x)
	}
	frame, err = server.Encode(noise, EncodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if frame[1]&byte(FlagCompressed) != 0 || len(frame) != len(noise)+fixedHeaderLen {
		t.Fatalf("noise: flags %#x, frame %d bytes", frame[1], len(frame))
	}
	// A negative threshold turns compression off.
	off, _ := codecPair(t, Config{CompressThreshold: -1})
	frame, _ = off.Encode(body, EncodeOptions{})
	if frame[1]&byte(FlagCompressed) != 0 {
		t.Fatal("compressed with compression off")
	}
}

func TestDecodeErrors(t *testing.T) {
	keys := testKeys(t)
	server, client := codecPair(t, Config{XORKey: []byte("k"), MaxFrameSize: 4096, MaxBodySize: 8192})
	plain, _ := client.Encode(gameJSON(1000), EncodeOptions{})
	sealed, _ := client.Encode(gameJSON(1000), EncodeOptions{Mode: ModeAuthenticated, Keys: keys, Counter: 1})
	fromServer, _ := server.Encode([]byte(`{}`), EncodeOptions{})
	other, _ := NewKeys(keys.ID(), bytes.Repeat([]byte{8}, 32))

	mut := func(b []byte, f func([]byte) []byte) []byte { return f(append([]byte(nil), b...)) }
	cases := []struct {
		name  string
		frame []byte
		keys  *Keys
		want  error
	}{
		{"empty", nil, nil, ErrTruncated},
		{"short header", plain[:3], nil, ErrTruncated},
		{"version", mut(plain, func(b []byte) []byte { b[0] = 2; return b }), nil, ErrVersion},
		{"unknown flag", mut(plain, func(b []byte) []byte { b[1] |= 0x40; return b }), nil, ErrFlags},
		{"xor+auth", mut(plain, func(b []byte) []byte { b[1] |= 0x06; return b }), nil, ErrFlags},
		{"truncated body", plain[:len(plain)-1], nil, ErrTruncated},
		{"trailing", append(append([]byte(nil), plain...), 0), nil, ErrFrameLength},
		{"wrong direction", fromServer, nil, ErrDirection},
		{"frame too large", mut(plain, func(b []byte) []byte { binary.BigEndian.PutUint32(b[2:], 5000); return b }), nil, ErrFrameTooLarge},
		{"bomb", mut(plain, func(b []byte) []byte { binary.BigEndian.PutUint32(b[6:], 1<<30); return b }), nil, ErrBodyTooLarge},
		{"ratio lie", mut(plain, func(b []byte) []byte { binary.BigEndian.PutUint32(b[6:], 8000); return b[:16:16] }), nil, ErrTruncated},
		{"corrupt lz4", mut(plain, func(b []byte) []byte {
			for i := 10; i < len(b); i++ {
				b[i] = 0xff // a literal run longer than the input
			}
			return b
		}), nil, ErrCorrupt},
		{"no keys", sealed, nil, ErrNoKeys},
		{"wrong secret", sealed, other, ErrAuthFailed},
		{"tampered body", mut(sealed, func(b []byte) []byte { b[len(b)-20] ^= 1; return b }), keys, ErrAuthFailed},
		{"tampered counter", mut(sealed, func(b []byte) []byte {
			h, _ := ParseHeader(b)
			b[h.HeaderLen-1] ^= 2
			return b
		}), keys, ErrAuthFailed},
		{"tampered key id", mut(sealed, func(b []byte) []byte { b[11] ^= 1; return b }), keys, ErrNoKeys},
		{"zero counter", mut(sealed, func(b []byte) []byte {
			h, _ := ParseHeader(b)
			binary.BigEndian.PutUint64(b[h.HeaderLen-8:], 0)
			return b
		}), keys, ErrCounter},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := server.Decode(tc.frame, tc.keys)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if CodeOf(err) == CodeOK || CodeOf(err) == CodeInternal {
				t.Fatalf("code %v for a bad frame", CodeOf(err))
			}
		})
	}
}
