package fault

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/madang-io/madang/protocol"
)

// wire sends single frames with a request id of the caller's choosing (the
// protocol.Client makes its own ids and sends one copy at a time; a racing
// duplicate needs two frames with one id on the wire at once). Frames are
// XOR-obfuscated and carry the session token, so copies need no counters.
type wire struct {
	codec *protocol.Codec
	tr    *protocol.HTTPTransport
}

func newWire(url string, xorKey []byte, attemptTimeout time.Duration) (*wire, error) {
	codec, err := protocol.NewCodec(protocol.Config{Role: protocol.RoleClient, XORKey: xorKey})
	if err != nil {
		return nil, err
	}
	hc := &http.Client{
		Timeout: attemptTimeout,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 3 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     30 * time.Second,
		},
	}
	return &wire{codec: codec, tr: &protocol.HTTPTransport{URL: url, Client: hc, MaxReplySize: codec.MaxFrameSize()}}, nil
}

// send sends req once. A nil response with an error is a lost reply
// (transport error, or an undecodable reply).
func (w *wire) send(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
	req.ClientTime = time.Now().UnixMilli()
	frame, err := w.codec.AppendEncode(nil, protocol.AppendRequest(nil, req), protocol.EncodeOptions{Mode: protocol.ModeXOR})
	if err != nil {
		return nil, err
	}
	reply, err := w.tr.RoundTrip(ctx, frame)
	if err != nil {
		return nil, err
	}
	body, _, err := w.codec.Decode(reply, nil)
	if err != nil {
		return nil, fmt.Errorf("reply: %w", err)
	}
	var resp protocol.Response
	if err := protocol.DecodeResponse(body, &resp); err != nil {
		return nil, fmt.Errorf("reply: %w", err)
	}
	if resp.Seq != req.Seq && resp.Seq != 0 {
		return nil, fmt.Errorf("reply for seq %d to seq %d", resp.Seq, req.Seq)
	}
	return &resp, nil
}

// payload marshals v (nil: none).
func payload(v any) json.RawMessage {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // our own structs
	}
	return b
}
