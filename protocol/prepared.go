package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// Prepared is a body made ready to be sent to many receivers: compressed (or
// not) once, by Codec.Prepare. Codec.AppendPrepared then writes a frame for
// each receiver doing only that receiver's work: a copy of the shared bytes
// in ModePlain, XOR in ModeXOR, sealing in ModeAuthenticated. The frames are
// the ones AppendEncode would write for the same body and options.
//
// A Prepared is immutable and safe for concurrent use.
type Prepared struct {
	role   Role
	flags  Flags  // FlagCompressed and FlagFromServer as the codec decided
	rawLen int    // the body's length
	plain  []byte // the whole ModePlain frame
	hdrLen int    // length of plain's header; plain[hdrLen:] is the (compressed) body
}

// Prepare compresses body (when Config.CompressThreshold says so and it
// helps) once, for AppendPrepared. It fails like AppendEncode: a body over
// MaxBodySize, a frame over MaxFrameSize.
func (c *Codec) Prepare(body []byte) (*Prepared, error) {
	p := new(Prepared)
	if err := c.PrepareInto(p, body); err != nil {
		return nil, err
	}
	return p, nil
}

// PrepareInto is Prepare into a caller-owned Prepared, reusing its buffer.
// p must not be in use by AppendPrepared calls meanwhile.
func (c *Codec) PrepareInto(p *Prepared, body []byte) error {
	frame, err := c.AppendEncode(p.plain[:0], body, EncodeOptions{Mode: ModePlain})
	if err != nil {
		return err
	}
	h, err := ParseHeader(frame)
	if err != nil {
		return fmt.Errorf("protocol: prepare: %w", err) // cannot happen: we wrote it
	}
	*p = Prepared{role: c.role, flags: h.Flags, rawLen: len(body), plain: frame, hdrLen: h.HeaderLen}
	return nil
}

// PlainFrame returns the ModePlain frame of p, shared by every caller: do
// not modify it.
func (p *Prepared) PlainFrame() []byte { return p.plain }

// Compressed reports whether the prepared body is compressed.
func (p *Prepared) Compressed() bool { return p.flags&FlagCompressed != 0 }

var errPreparedRole = errors.New("protocol: Prepared made by a codec of the other role")

// AppendPrepared appends to dst the frame carrying p's body protected as o
// says, exactly as AppendEncode(dst, body, o) would (in ModeAuthenticated
// server frames the random nonce differs, as between two AppendEncode
// calls). p must come from a codec of the same role and configuration. With
// enough capacity in dst it does not allocate.
func (c *Codec) AppendPrepared(dst []byte, p *Prepared, o EncodeOptions) ([]byte, error) {
	if p.role != c.role {
		return dst, errPreparedRole
	}
	z := p.plain[p.hdrLen:]
	switch o.Mode {
	case ModePlain:
		return append(dst, p.plain...), nil
	case ModeXOR:
		if c.xor == nil {
			return dst, errNoXORKey
		}
		start := len(dst)
		dst = append(dst, p.plain[:p.hdrLen]...)
		dst[start+1] |= byte(FlagXOR)
		dst = slices.Grow(dst, len(z))
		n := len(dst)
		dst = dst[:n+len(z)]
		c.xor.apply(dst[n:], z)
		return dst, nil
	case ModeAuthenticated:
	default:
		return dst, fmt.Errorf("protocol: unknown mode %d", o.Mode)
	}
	if o.Keys == nil {
		return dst, errors.New("protocol: ModeAuthenticated needs EncodeOptions.Keys")
	}
	hdrLen := p.hdrLen + 1 + len(o.Keys.id)
	wireLen := len(z) + gcmTagSize
	if c.role == RoleServer {
		wireLen += gcmNonceSize
	} else {
		if o.Counter == 0 {
			return dst, ErrCounter
		}
		hdrLen += counterSize
	}
	if hdrLen+wireLen > c.maxFrame {
		return dst, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, hdrLen+wireLen, c.maxFrame)
	}
	start := len(dst)
	dst = slices.Grow(dst, hdrLen+wireLen+gcmNonceSize)
	buf := dst[:cap(dst)]
	hdr := buf[start : start+hdrLen]
	n := copy(hdr, p.plain[:p.hdrLen])
	hdr[1] |= byte(FlagAuthenticated)
	binary.BigEndian.PutUint32(hdr[2:], uint32(wireLen))
	hdr[n] = byte(len(o.Keys.id))
	n += 1 + copy(hdr[n+1:], o.Keys.id)
	out := buf[start+hdrLen : start+hdrLen]
	if c.role == RoleServer {
		out = o.Keys.s2c.Seal(out, nil, z, hdr)
		return dst[:start+hdrLen+len(out)], nil
	}
	binary.BigEndian.PutUint64(hdr[n:], o.Counter)
	nonce := buf[start+hdrLen+wireLen : start+hdrLen+wireLen+gcmNonceSize]
	counterNonce(nonce, o.Counter)
	out = o.Keys.c2s.Seal(out, nonce, z, hdr)
	return dst[:start+hdrLen+len(out)], nil
}

// CutFrame splits the first frame off msg, a byte string holding one or more
// whole frames back to back (a realtime websocket message, see
// docs/PROTOCOL.md): frame is the first, rest what follows it. Only the
// header is checked (ParseHeader); decode frame with AppendDecode. It fails
// with ErrTruncated when msg ends inside a frame. frame's capacity ends with
// it, so appending to it cannot overwrite rest.
func CutFrame(msg []byte) (frame, rest []byte, err error) {
	h, err := ParseHeader(msg)
	if err != nil {
		return nil, nil, err
	}
	n := h.FrameLen()
	if len(msg) < n {
		return nil, nil, fmt.Errorf("%w: %d of %d bytes", ErrTruncated, len(msg), n)
	}
	return msg[:n:n], msg[n:], nil
}
