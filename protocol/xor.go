package protocol

import (
	"crypto/subtle"
	"fmt"
)

// xorChunk is the minimum length of the precomputed key stream. Longer chunks
// mean fewer calls into crypto/subtle.XORBytes, which works a machine word (or
// a SIMD register) at a time rather than a byte at a time.
const xorChunk = 512

// xorStream is the XOR key repeated to a length that is a multiple of the key
// length, so consecutive chunks of the body line up with the key.
type xorStream struct {
	stream []byte
}

func newXORStream(key []byte) (*xorStream, error) {
	if len(key) == 0 || len(key) > MaxXORKeyLen {
		return nil, fmt.Errorf("protocol: XOR key length %d, want 1..%d", len(key), MaxXORKeyLen)
	}
	n := len(key) * ((xorChunk + len(key) - 1) / len(key))
	s := make([]byte, n)
	for i := 0; i < n; i += len(key) {
		copy(s[i:], key)
	}
	return &xorStream{stream: s}, nil
}

// apply sets dst[i] = src[i] ^ key[i % len(key)] for every byte of src. dst
// must be at least as long as src and overlap it exactly or not at all.
func (x *xorStream) apply(dst, src []byte) {
	for off := 0; off < len(src); off += len(x.stream) {
		end := min(off+len(x.stream), len(src))
		subtle.XORBytes(dst[off:end], src[off:end], x.stream)
	}
}
