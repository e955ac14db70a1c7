package protocol

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/pierrec/lz4/v4"
)

// Version is the frame format version this package writes and accepts.
const Version = 1

// Flags is the frame's flag byte. Bits not defined here must be zero.
type Flags uint8

// The flag bits. FlagXOR and FlagAuthenticated are mutually exclusive.
const (
	// FlagCompressed: the body is an LZ4 raw block and the header carries the
	// uncompressed length.
	FlagCompressed Flags = 0x01
	// FlagXOR: the (possibly compressed) body is XORed with the shared key.
	FlagXOR Flags = 0x02
	// FlagAuthenticated: the body is sealed with AES-256-GCM; the header
	// carries the key id (and, in client frames, the counter).
	FlagAuthenticated Flags = 0x04
	// FlagFromServer: the frame was sent by the server (a response or push).
	FlagFromServer Flags = 0x08

	knownFlags = FlagCompressed | FlagXOR | FlagAuthenticated | FlagFromServer
)

// Frame layout constants; docs/PROTOCOL.md has the full byte layout.
const (
	fixedHeaderLen = 6  // version, flags, body length
	rawLenSize     = 4  // uncompressed length, when FlagCompressed
	counterSize    = 8  // client frames, when FlagAuthenticated
	gcmTagSize     = 16 // AES-GCM tag
	gcmNonceSize   = 12 // AES-GCM nonce
	// MaxKeyIDLen is the longest key id an authenticated frame can carry.
	MaxKeyIDLen = 64
	// maxSealOverhead is the most bytes sealing adds (server frames: nonce + tag).
	maxSealOverhead = gcmNonceSize + gcmTagSize
	// lz4MaxRatio bounds how much an LZ4 block can expand: each input byte
	// yields at most 255 output bytes, so a larger declared size is a lie.
	lz4MaxRatio = 255
)

// Defaults for Config.
const (
	DefaultCompressThreshold = 150
	DefaultMaxFrameSize      = 1 << 20 // 1 MiB
	DefaultMaxBodySize       = 4 << 20 // 4 MiB
	// DefaultMaxUnauthenticatedBodySize is the default decoded body limit
	// of plain and XOR client frames (Config.MaxUnauthenticatedBodySize).
	DefaultMaxUnauthenticatedBodySize = 64 << 10 // 64 KiB
	// MaxXORKeyLen is the longest XOR key Config accepts.
	MaxXORKeyLen = 1024
)

// Frame decoding errors. They are *Error values carrying a result code;
// decoders wrap them with detail, so test with errors.Is.
var (
	ErrTruncated     = &Error{Code: CodeBadFrame, Message: "protocol: truncated frame"}
	ErrFrameLength   = &Error{Code: CodeBadFrame, Message: "protocol: frame length does not match its header"}
	ErrVersion       = &Error{Code: CodeBadFrame, Message: "protocol: unsupported frame version"}
	ErrFlags         = &Error{Code: CodeBadFrame, Message: "protocol: invalid frame flags"}
	ErrDirection     = &Error{Code: CodeBadFrame, Message: "protocol: frame sent in the wrong direction"}
	ErrKeyID         = &Error{Code: CodeBadFrame, Message: "protocol: invalid key id"}
	ErrCounter       = &Error{Code: CodeBadFrame, Message: "protocol: frame counter must be at least 1"}
	ErrFrameTooLarge = &Error{Code: CodeTooLarge, Message: "protocol: frame exceeds the size limit"}
	ErrBodyTooLarge  = &Error{Code: CodeTooLarge, Message: "protocol: body exceeds the size limit"}
	ErrCorrupt       = &Error{Code: CodeBadFrame, Message: "protocol: corrupt compressed body"}
	ErrAuthFailed    = &Error{Code: CodeUnauthorized, Message: "protocol: frame authentication failed"}
	ErrNoKeys        = &Error{Code: CodeUnauthorized, Message: "protocol: no keys for the frame's key id"}
	ErrReplayed      = &Error{Code: CodeReplayed, Message: "protocol: frame counter at or below the last accepted"}
)

// Header is a parsed frame header. KeyID aliases the frame it was parsed from.
type Header struct {
	Flags     Flags
	HeaderLen int    // bytes before the body
	BodyLen   int    // bytes of body on the wire (after compression and sealing)
	RawLen    int    // uncompressed body length; only with FlagCompressed
	KeyID     []byte // only with FlagAuthenticated
	Counter   uint64 // only in authenticated client frames
}

// FrameLen is the length of the whole frame: header plus body.
func (h *Header) FrameLen() int { return h.HeaderLen + h.BodyLen }

// ParseHeader reads and validates the header at the start of frame. It does
// not need the whole frame, only the header, so stream transports can learn
// the frame's length from it. It never allocates.
func ParseHeader(frame []byte) (Header, error) {
	var h Header
	if len(frame) < fixedHeaderLen {
		return h, fmt.Errorf("%w: %d bytes, header needs %d", ErrTruncated, len(frame), fixedHeaderLen)
	}
	if frame[0] != Version {
		return h, fmt.Errorf("%w: %d", ErrVersion, frame[0])
	}
	h.Flags = Flags(frame[1])
	if h.Flags&^knownFlags != 0 {
		return h, fmt.Errorf("%w: unknown bits %#02x", ErrFlags, uint8(h.Flags&^knownFlags))
	}
	if h.Flags&FlagXOR != 0 && h.Flags&FlagAuthenticated != 0 {
		return h, fmt.Errorf("%w: XOR and authenticated together", ErrFlags)
	}
	body := binary.BigEndian.Uint32(frame[2:6])
	n := fixedHeaderLen
	if h.Flags&FlagCompressed != 0 {
		if len(frame) < n+rawLenSize {
			return h, fmt.Errorf("%w: uncompressed length missing", ErrTruncated)
		}
		raw := binary.BigEndian.Uint32(frame[n:])
		if raw == 0 {
			return h, fmt.Errorf("%w: compressed frame declares an empty body", ErrCorrupt)
		}
		h.RawLen = int(raw)
		n += rawLenSize
	}
	if h.Flags&FlagAuthenticated != 0 {
		if len(frame) < n+1 {
			return h, fmt.Errorf("%w: key id length missing", ErrTruncated)
		}
		k := int(frame[n])
		n++
		if k == 0 || k > MaxKeyIDLen {
			return h, fmt.Errorf("%w: length %d, want 1..%d", ErrKeyID, k, MaxKeyIDLen)
		}
		if len(frame) < n+k {
			return h, fmt.Errorf("%w: key id", ErrTruncated)
		}
		h.KeyID = frame[n : n+k : n+k]
		n += k
		minBody := uint32(maxSealOverhead)
		if h.Flags&FlagFromServer == 0 {
			if len(frame) < n+counterSize {
				return h, fmt.Errorf("%w: counter", ErrTruncated)
			}
			h.Counter = binary.BigEndian.Uint64(frame[n:])
			if h.Counter == 0 {
				return h, ErrCounter
			}
			n += counterSize
			minBody = gcmTagSize
		}
		if body < minBody {
			return h, fmt.Errorf("%w: sealed body of %d bytes is shorter than the AEAD overhead", ErrTruncated, body)
		}
	}
	h.HeaderLen = n
	// Body lengths above 2 GiB are refused here so FrameLen never overflows
	// on 32-bit platforms; Codec limits are far lower anyway.
	if body > 1<<31-1-uint32(n) {
		return h, fmt.Errorf("%w: body length %d", ErrFrameTooLarge, body)
	}
	h.BodyLen = int(body)
	return h, nil
}

// Role says which side of the connection a Codec is on: it decides which
// frames the codec writes (FlagFromServer set or not) and which it accepts.
type Role uint8

// Roles.
const (
	// RoleServer decodes client frames and encodes server frames (the default).
	RoleServer Role = iota
	// RoleClient decodes server frames and encodes client frames.
	RoleClient
)

// Config configures a Codec. The zero value is a working server codec without
// XOR.
type Config struct {
	// Role is the side this codec is on. Default RoleServer.
	Role Role
	// CompressThreshold is the body size from which compression is tried; it
	// is used only when it makes the frame smaller. 0 means the default, 150
	// bytes; a negative value turns compression off.
	CompressThreshold int
	// MaxFrameSize limits a whole frame on the wire. Default 1 MiB.
	MaxFrameSize int
	// MaxBodySize limits a body after decompression, checked against the
	// declared length before anything is allocated. Default 4 MiB.
	MaxBodySize int
	// MaxUnauthenticatedBodySize limits, in a RoleServer codec, the body of
	// a client frame that is not sealed with session keys (plain or XOR:
	// anyone can send one, and it is decoded before anything authenticates
	// it), after decompression, checked like MaxBodySize. Authenticated
	// frames get MaxBodySize: their AEAD is opened before their body is
	// decompressed. Default 64 KiB (at most MaxBodySize); a negative value
	// applies MaxBodySize. A RoleClient codec ignores it.
	MaxUnauthenticatedBodySize int
	// XORKey is the shared obfuscation key for ModeXOR (1–1024 bytes). XOR is
	// obfuscation against casual packet inspection, not security: anyone with
	// the client binary has the key. Nil disables ModeXOR.
	XORKey []byte
}

// Codec encodes and decodes frames. It is immutable and safe for concurrent
// use; create one per configuration and share it.
type Codec struct {
	role      Role
	threshold int // < 0: never compress
	maxFrame  int
	maxBody   int
	maxUnauth int // plain and XOR client frames (RoleServer)
	xor       *xorStream
}

// NewCodec returns a Codec for cfg, applying defaults to zero fields.
func NewCodec(cfg Config) (*Codec, error) {
	c := &Codec{role: cfg.Role, threshold: cfg.CompressThreshold, maxFrame: cfg.MaxFrameSize, maxBody: cfg.MaxBodySize}
	if cfg.Role != RoleServer && cfg.Role != RoleClient {
		return nil, fmt.Errorf("protocol: unknown role %d", cfg.Role)
	}
	if c.threshold == 0 {
		c.threshold = DefaultCompressThreshold
	}
	if c.maxFrame <= 0 {
		c.maxFrame = DefaultMaxFrameSize
	}
	if c.maxBody <= 0 {
		c.maxBody = DefaultMaxBodySize
	}
	switch c.maxUnauth = cfg.MaxUnauthenticatedBodySize; {
	case cfg.Role == RoleClient || c.maxUnauth < 0:
		c.maxUnauth = c.maxBody
	case c.maxUnauth == 0:
		c.maxUnauth = min(DefaultMaxUnauthenticatedBodySize, c.maxBody)
	default:
		c.maxUnauth = min(c.maxUnauth, c.maxBody)
	}
	if cfg.XORKey != nil {
		x, err := newXORStream(cfg.XORKey)
		if err != nil {
			return nil, err
		}
		c.xor = x
	}
	return c, nil
}

// MaxFrameSize returns the codec's frame size limit.
func (c *Codec) MaxFrameSize() int { return c.maxFrame }

// MaxBodySize returns the codec's decompressed body size limit.
func (c *Codec) MaxBodySize() int { return c.maxBody }

// MaxBodySizeFor returns the decompressed body size limit of frames in
// mode m: MaxBodySize for authenticated frames (and in a RoleClient codec),
// Config.MaxUnauthenticatedBodySize for plain and XOR frames.
func (c *Codec) MaxBodySizeFor(m Mode) int {
	if m == ModeAuthenticated {
		return c.maxBody
	}
	return c.maxUnauth
}

// Role returns the side this codec is on.
func (c *Codec) Role() Role { return c.role }

// Mode is how a frame's body is protected.
type Mode uint8

// Modes.
const (
	// ModePlain: no obfuscation (compression still applies).
	ModePlain Mode = iota
	// ModeXOR: XOR obfuscation with Config.XORKey.
	ModeXOR
	// ModeAuthenticated: AES-256-GCM with the session's Keys.
	ModeAuthenticated
)

// String returns "plain", "xor" or "authenticated".
func (m Mode) String() string {
	switch m {
	case ModePlain:
		return "plain"
	case ModeXOR:
		return "xor"
	case ModeAuthenticated:
		return "authenticated"
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// ModeOf returns the protection mode a frame's flags declare.
func ModeOf(f Flags) Mode {
	switch {
	case f&FlagAuthenticated != 0:
		return ModeAuthenticated
	case f&FlagXOR != 0:
		return ModeXOR
	}
	return ModePlain
}

// EncodeOptions says how to protect one frame.
type EncodeOptions struct {
	Mode Mode
	// Keys are the session keys; required for ModeAuthenticated.
	Keys *Keys
	// Counter is the frame counter of an authenticated client frame: at least
	// 1 and larger than any counter sent before with the same keys (a retried
	// request gets a new counter). Ignored in server frames.
	Counter uint64
}

var compressorPool = sync.Pool{New: func() any { return new(lz4.Compressor) }}

var errNoXORKey = errors.New("protocol: ModeXOR needs Config.XORKey")

// AppendEncode appends to dst the frame carrying body and returns the
// extended buffer. With enough capacity in dst it does not allocate. body
// must not overlap dst's spare capacity.
func (c *Codec) AppendEncode(dst, body []byte, o EncodeOptions) ([]byte, error) {
	if len(body) > c.maxBody {
		return dst, fmt.Errorf("%w: %d bytes, limit %d", ErrBodyTooLarge, len(body), c.maxBody)
	}
	flags := Flags(0)
	if c.role == RoleServer {
		flags |= FlagFromServer
	}
	authLen := 0
	switch o.Mode {
	case ModePlain:
	case ModeXOR:
		if c.xor == nil {
			return dst, errNoXORKey
		}
		flags |= FlagXOR
	case ModeAuthenticated:
		if o.Keys == nil {
			return dst, errors.New("protocol: ModeAuthenticated needs EncodeOptions.Keys")
		}
		flags |= FlagAuthenticated
		authLen = 1 + len(o.Keys.id)
		if c.role == RoleClient {
			if o.Counter == 0 {
				return dst, ErrCounter
			}
			authLen += counterSize
		}
	default:
		return dst, fmt.Errorf("protocol: unknown mode %d", o.Mode)
	}

	start := len(dst)
	plainHdr := fixedHeaderLen + authLen
	compHdr := plainHdr + rawLenSize
	dst = slices.Grow(dst, compHdr+len(body)+maxSealOverhead)
	buf := dst[:cap(dst)]

	// Compress straight into place, into room that is 5 bytes shorter than
	// the body: if the block does not fit there, compression would not make
	// the frame smaller (it adds a 4-byte length), so the body goes raw.
	hdrLen, zLen := plainHdr, len(body)
	if c.threshold >= 0 && len(body) >= c.threshold && len(body) > rawLenSize+1 {
		room := buf[start+compHdr : start+compHdr+len(body)-rawLenSize-1]
		comp := compressorPool.Get().(*lz4.Compressor)
		n, err := comp.CompressBlock(body, room)
		compressorPool.Put(comp)
		if err == nil && n > 0 {
			flags |= FlagCompressed
			hdrLen, zLen = compHdr, n
		}
	}
	z := buf[start+hdrLen : start+hdrLen+zLen]
	if flags&FlagCompressed == 0 {
		copy(z, body)
	}
	if flags&FlagXOR != 0 {
		c.xor.apply(z, z)
	}

	wireLen := zLen
	if flags&FlagAuthenticated != 0 {
		wireLen += gcmTagSize
		if c.role == RoleServer {
			wireLen += gcmNonceSize
		}
	}
	if hdrLen+wireLen > c.maxFrame {
		return dst[:start], fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, hdrLen+wireLen, c.maxFrame)
	}
	hdr := buf[start : start+hdrLen]
	hdr[0] = Version
	hdr[1] = byte(flags)
	binary.BigEndian.PutUint32(hdr[2:], uint32(wireLen))
	n := fixedHeaderLen
	if flags&FlagCompressed != 0 {
		binary.BigEndian.PutUint32(hdr[n:], uint32(len(body)))
		n += rawLenSize
	}
	if flags&FlagAuthenticated == 0 {
		return dst[:start+hdrLen+zLen], nil
	}
	hdr[n] = byte(len(o.Keys.id))
	n += 1 + copy(hdr[n+1:], o.Keys.id)
	if c.role == RoleServer {
		out := o.Keys.s2c.Seal(z[:0], nil, z, hdr)
		return dst[:start+hdrLen+len(out)], nil
	}
	binary.BigEndian.PutUint64(hdr[n:], o.Counter)
	// The nonce is built in the spare room behind the sealed output, so that
	// no stack array escapes through the AEAD interface (no allocation).
	nonce := buf[start+hdrLen+zLen+gcmTagSize : start+hdrLen+zLen+gcmTagSize+gcmNonceSize]
	counterNonce(nonce, o.Counter)
	out := o.Keys.c2s.Seal(z[:0], nonce, z, hdr)
	return dst[:start+hdrLen+len(out)], nil
}

// Encode returns a new frame carrying body.
func (c *Codec) Encode(body []byte, o EncodeOptions) ([]byte, error) {
	return c.AppendEncode(nil, body, o)
}

// counterNonce writes the nonce of a client frame: four zero bytes, then the
// counter as a big-endian uint64.
func counterNonce(nonce []byte, counter uint64) {
	clear(nonce[:4])
	binary.BigEndian.PutUint64(nonce[4:], counter)
}

// AppendDecode decodes the whole frame, appends its body to dst and returns
// the extended buffer with the parsed header. keys are needed only when the
// frame is authenticated; find them by the key id from ParseHeader. frame is
// not modified. With enough capacity in dst it does not allocate.
//
// Limits are checked before any allocation: the frame against MaxFrameSize,
// the declared uncompressed length against MaxBodySize (for plain and XOR
// client frames in a server codec, Config.MaxUnauthenticatedBodySize). An
// authenticated frame's AEAD is opened before its body is decompressed, so
// only authenticated bytes are ever decompressed. A server decoding frames
// from many clients uses AppendDecodeBudget, which also bounds the bytes
// all frames decode at once.
func (c *Codec) AppendDecode(dst, frame []byte, keys *Keys) ([]byte, Header, error) {
	body, h, _, err := c.appendDecode(context.Background(), nil, dst, frame, keys)
	return body, h, err
}

// AppendDecodeBudget is AppendDecode charging the body's decoded length to
// budget (DecodeBudget.Acquire) before the body is allocated: after the
// header's limits are checked and, for an authenticated frame, after its
// AEAD is opened. Plain and XOR frames are charged as unauthenticated. ctx
// bounds the wait for room. The caller releases the lease when the body,
// and anything it copied from it, is no longer held (a request: when its
// response is written); on error nothing is held. A nil budget charges
// nothing.
func (c *Codec) AppendDecodeBudget(ctx context.Context, budget *DecodeBudget, dst, frame []byte, keys *Keys) ([]byte, Header, DecodeLease, error) {
	return c.appendDecode(ctx, budget, dst, frame, keys)
}

func (c *Codec) appendDecode(ctx context.Context, budget *DecodeBudget, dst, frame []byte, keys *Keys) ([]byte, Header, DecodeLease, error) {
	var lease DecodeLease
	h, err := ParseHeader(frame)
	if err != nil {
		return dst, h, lease, err
	}
	if h.FrameLen() > c.maxFrame || len(frame) > c.maxFrame {
		return dst, h, lease, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, max(h.FrameLen(), len(frame)), c.maxFrame)
	}
	if len(frame) < h.FrameLen() {
		return dst, h, lease, fmt.Errorf("%w: %d of %d bytes", ErrTruncated, len(frame), h.FrameLen())
	}
	if len(frame) > h.FrameLen() {
		return dst, h, lease, fmt.Errorf("%w: %d trailing bytes", ErrFrameLength, len(frame)-h.FrameLen())
	}
	if fromServer := h.Flags&FlagFromServer != 0; fromServer != (c.role == RoleClient) {
		return dst, h, lease, ErrDirection
	}
	authenticated := h.Flags&FlagAuthenticated != 0
	switch {
	case h.Flags&FlagXOR != 0 && c.xor == nil:
		return dst, h, lease, fmt.Errorf("%w: XOR frame but no XOR key configured", ErrFlags)
	case authenticated && keys == nil:
		return dst, h, lease, ErrNoKeys
	case authenticated && !bytes.Equal(keys.id, h.KeyID):
		return dst, h, lease, fmt.Errorf("%w: keys are for another key id", ErrNoKeys)
	}

	wire := frame[h.HeaderLen:]
	zLen := len(wire)
	if authenticated {
		zLen -= gcmTagSize
		if h.Flags&FlagFromServer != 0 {
			zLen -= gcmNonceSize
		}
	}
	maxBody := c.maxBody
	if !authenticated {
		maxBody = c.maxUnauth
	}
	compressed := h.Flags&FlagCompressed != 0
	outLen := zLen
	if compressed {
		if h.RawLen > maxBody {
			return dst, h, lease, fmt.Errorf("%w: declares %d bytes, limit %d", ErrBodyTooLarge, h.RawLen, maxBody)
		}
		if h.RawLen > zLen*lz4MaxRatio {
			return dst, h, lease, fmt.Errorf("%w: declares %d bytes from %d", ErrCorrupt, h.RawLen, zLen)
		}
		outLen = h.RawLen
	} else if zLen > maxBody {
		return dst, h, lease, fmt.Errorf("%w: %d bytes, limit %d", ErrBodyTooLarge, zLen, maxBody)
	}

	// An unauthenticated uncompressed body is charged before it is copied;
	// an authenticated one after its AEAD is opened (it is no larger than
	// the frame, so opening it first allocates nothing the sender did not
	// send); a compressed one after it is opened or de-XORed, before the
	// decompressed body is allocated.
	if !compressed && !authenticated {
		if lease, err = budget.Acquire(ctx, outLen, true); err != nil {
			return dst, h, lease, err
		}
	}

	// Room in dst: the body, then (when compressed) the compressed bytes it
	// is decompressed from, then a nonce: regions that never overlap. When
	// dst is too small for all of it and the body must be decompressed, the
	// compressed bytes are opened or de-XORed into a buffer of their own
	// first, so that nothing as large as the declared body is allocated (or
	// charged) before the frame is authenticated; a plain frame is
	// decompressed straight from the frame.
	start := len(dst)
	var z, nonce []byte
	switch {
	case compressed && !authenticated && h.Flags&FlagXOR == 0:
		z = wire
	case compressed && cap(dst)-start < outLen+zLen+gcmNonceSize:
		tmp := make([]byte, zLen+gcmNonceSize)
		z, nonce = tmp[:zLen], tmp[zLen:]
	default:
		zOff := start
		if compressed {
			zOff = start + outLen
		}
		dst = slices.Grow(dst, zOff-start+zLen+gcmNonceSize)
		buf := dst[:cap(dst)]
		z, nonce = buf[zOff:zOff+zLen], buf[zOff+zLen:zOff+zLen+gcmNonceSize]
	}

	switch {
	case authenticated && h.Flags&FlagFromServer != 0:
		if _, err := keys.s2c.Open(z[:0], nil, wire, frame[:h.HeaderLen]); err != nil {
			lease.Release()
			return dst[:start], h, DecodeLease{}, ErrAuthFailed
		}
	case authenticated:
		counterNonce(nonce, h.Counter)
		if _, err := keys.c2s.Open(z[:0], nonce, wire, frame[:h.HeaderLen]); err != nil {
			lease.Release()
			return dst[:start], h, DecodeLease{}, ErrAuthFailed
		}
	case h.Flags&FlagXOR != 0:
		c.xor.apply(z, wire)
	case !compressed:
		copy(z, wire)
	}
	if authenticated || compressed {
		if lease, err = budget.Acquire(ctx, outLen, !authenticated); err != nil {
			return dst[:start], h, lease, err
		}
	}
	if !compressed {
		return dst[:start+zLen], h, lease, nil
	}
	dst = slices.Grow(dst, outLen) // no-op unless z has a buffer of its own
	n, err := lz4.UncompressBlock(z, dst[start:start+outLen])
	if err != nil || n != outLen {
		lease.Release()
		return dst[:start], h, DecodeLease{}, fmt.Errorf("%w: decompressed %d of %d declared bytes", ErrCorrupt, n, outLen)
	}
	return dst[:start+outLen], h, lease, nil
}

// Decode decodes a whole frame into a new body.
func (c *Codec) Decode(frame []byte, keys *Keys) ([]byte, Header, error) {
	return c.AppendDecode(nil, frame, keys)
}
