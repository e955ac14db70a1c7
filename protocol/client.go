package protocol

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// Transport carries one encoded request frame to the server and returns the
// reply frame. An error means the reply was lost (the request may or may not
// have run); the Client then re-sends the same request.
type Transport interface {
	RoundTrip(ctx context.Context, frame []byte) ([]byte, error)
}

// HTTPTransport posts frames to a URL.
type HTTPTransport struct {
	URL    string
	Client *http.Client // default http.DefaultClient
	// Header is added to every request (for example an Idempotency-Key
	// set by a test).
	Header http.Header
	// MaxReplySize bounds how much of a reply is read; a longer reply is
	// cut there and then fails to decode. Default DefaultMaxFrameSize.
	MaxReplySize int
}

// TransportError is a lost reply: a network error, or an error status without
// a protocol frame. The request may have run on the server.
type TransportError struct {
	Status int // HTTP status, 0 for a network error
	Err    error
}

// Error implements error.
func (e *TransportError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("protocol: transport: HTTP %d", e.Status)
	}
	return "protocol: transport: " + e.Err.Error()
}

// Unwrap returns the network or status error.
func (e *TransportError) Unwrap() error { return e.Err }

// RoundTrip implements Transport. Every reply that carries a frame (2xx, and
// the server's refusals with 4xx or 5xx statuses) is returned as a reply;
// other non-2xx replies (a proxy's error page) are TransportErrors.
func (t *HTTPTransport) RoundTrip(ctx context.Context, frame []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(frame))
	if err != nil {
		return nil, err
	}
	for k, v := range t.Header {
		req.Header[k] = v
	}
	req.Header["Content-Type"] = hdrFrame // shared, see HTTPHandler.write
	hc := t.Client
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, &TransportError{Err: err}
	}
	defer resp.Body.Close()
	limit := t.MaxReplySize
	if limit <= 0 {
		limit = DefaultMaxFrameSize
	}
	// Sized from Content-Length when the server sent one (one allocation
	// instead of io.ReadAll's growing); the limit is enforced either way.
	size := 512
	if n := resp.ContentLength; n >= 0 && n <= int64(limit) {
		size = int(n) + 1 // room to see EOF without growing
	}
	body, err := readAllInto(io.LimitReader(resp.Body, int64(limit)+1), make([]byte, 0, size))
	if err != nil {
		return nil, &TransportError{Err: err}
	}
	if resp.StatusCode/100 == 2 || resp.Header.Get("Content-Type") == ContentTypeFrame {
		return body, nil
	}
	return nil, &TransportError{Status: resp.StatusCode, Err: errors.New(http.StatusText(resp.StatusCode))}
}

// readAllInto is io.ReadAll appending to buf.
func readAllInto(r io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// ClientConfig configures a Client.
type ClientConfig struct {
	// Transport sends frames. Default: an HTTPTransport posting to URL.
	Transport Transport
	// URL is the server's endpoint, such as "http://127.0.0.1:8080/v1/rpc";
	// used when Transport is nil.
	URL string
	// Codec configures the frame codec (XOR key, compression, limits); its
	// Role is ignored: the client's codec is always RoleClient.
	Codec Config
	// Mode protects requests until SetSession gives keys, which switches to
	// ModeAuthenticated. Default ModePlain.
	Mode Mode
	// MaxAttempts is how often one call is sent at most when replies are
	// lost or the server answers a retryable code. Default 3.
	MaxAttempts int
	// RetryBackoff is the wait before the first retry, doubled for each
	// further one; a server's RetryAfterMs hint wins when longer. Default
	// 100 ms.
	RetryBackoff time.Duration
	// Now is the client's raw clock. Default time.Now.
	Now func() time.Time
}

// Client calls commands on a server: it holds the session token and keys,
// numbers requests, gives each logical request an id that its retries keep,
// re-sends a request whose reply was lost, and estimates the clock offset to
// the server while always sending its raw clock.
//
// A Client is safe for concurrent use. In authenticated mode calls are sent
// one at a time, so its frames reach the server in counter order (the
// server accepts a counter at most ReplayWindowSize below the highest it
// accepted). Its frame counters come from a FrameCounter (Counter) that a
// websocket client of the same session shares.
type Client struct {
	cfg   ClientConfig
	codec *Codec

	mu      sync.Mutex // guards everything below
	token   string
	keys    *Keys
	counter *FrameCounter // of keys; nil without keys
	seq     uint64
	samples [clockSamples]clockSample
	nSample int

	sendMu sync.Mutex // serialises authenticated calls
}

// clockSamples is how many recent round trips the offset estimate uses.
const clockSamples = 8

type clockSample struct {
	rtt    time.Duration
	offset time.Duration
}

// NewClient returns a Client for cfg.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.Transport == nil && cfg.URL == "" {
		return nil, errors.New("protocol: client needs a Transport or a URL")
	}
	cfg.Codec.Role = RoleClient
	codec, err := NewCodec(cfg.Codec)
	if err != nil {
		return nil, err
	}
	if cfg.Transport == nil {
		cfg.Transport = &HTTPTransport{URL: cfg.URL, MaxReplySize: codec.MaxFrameSize()}
	}
	if cfg.Mode == ModeXOR && cfg.Codec.XORKey == nil {
		return nil, errNoXORKey
	}
	if cfg.Mode == ModeAuthenticated {
		return nil, errors.New("protocol: authenticated mode starts with SetSession, not ClientConfig.Mode")
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 3
	}
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = 100 * time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Client{cfg: cfg, codec: codec}, nil
}

// SetSession sets the session token sent in every envelope and, when keys is
// not nil, switches to authenticated frames with those keys. New keys get a
// new FrameCounter starting at 1; the same keys keep theirs, because the
// server refuses counters it has already passed. Pass "" and nil to log out.
func (c *Client) SetSession(token string, keys *Keys) {
	c.SetSessionCounter(token, keys, nil)
}

// SetSessionCounter is SetSession with the FrameCounter the keys' frames
// take their counters from: one shared with another connection of the
// session, or one restored with NewFrameCounter after a restart. Nil
// behaves as SetSession. The counter is ignored when keys is nil.
func (c *Client) SetSessionCounter(token string, keys *Keys, counter *FrameCounter) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case keys == nil:
		counter = nil
	case counter == nil && keys == c.keys:
		counter = c.counter
	case counter == nil:
		counter = new(FrameCounter)
	}
	c.token, c.keys, c.counter = token, keys, counter
}

// Counter returns the FrameCounter of the current session keys, nil when
// the Client is not in authenticated mode. A websocket connection of the
// same session must take its counters from it (for example
// realtime.DialOptions.Counters), so that HTTP requests and websocket
// frames never use a counter twice (docs/PROTOCOL.md §7.4, §16.1).
func (c *Client) Counter() *FrameCounter {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counter
}

// Token returns the current session token.
func (c *Client) Token() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.token
}

// CallOptions are the per-call settings of Client.CallWith and
// Client.DoWith (and of the realtime package's websocket client). The zero
// value is what Call and Do use.
type CallOptions struct {
	// RequestID identifies the logical request (Request.RequestID): the
	// server's idempotency layer answers a request id it has seen with the
	// stored result (Response.Replay) instead of running the command again.
	// The Client keeps it across its own retries. Set it to re-send a
	// request after the Client gave up on it (a new connection, a restarted
	// bot, a queued purchase): the same id, the same command and payload.
	// At most MaxRequestIDLen bytes. Empty: a fresh one (NewRequestID).
	RequestID string
}

// requestID returns o.RequestID, or a fresh one when it is empty.
func (o CallOptions) requestID() (string, error) {
	if o.RequestID == "" {
		return NewRequestID(), nil
	}
	if len(o.RequestID) > MaxRequestIDLen {
		return "", fmt.Errorf("%w: request id longer than %d bytes", ErrEnvelope, MaxRequestIDLen)
	}
	return o.RequestID, nil
}

// Call runs cmd with in marshalled as the payload (nil: no payload) and
// unmarshals the result payload into out (nil: ignored). A response with a
// code other than CodeOK is returned together with an *Error carrying that
// code, message and retry hint. The request gets a fresh request id.
func (c *Client) Call(ctx context.Context, cmd string, in, out any) (*Response, error) {
	return c.CallWith(ctx, cmd, in, out, CallOptions{})
}

// CallWith is Call with per-call options, such as the request id a re-sent
// purchase must keep.
func (c *Client) CallWith(ctx context.Context, cmd string, in, out any, opts CallOptions) (*Response, error) {
	var payload json.RawMessage
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("protocol: marshal %s payload: %w", cmd, err)
		}
		payload = b
	}
	resp, err := c.DoWith(ctx, cmd, payload, opts)
	if err != nil {
		return resp, err
	}
	if resp.Code != CodeOK {
		return resp, &Error{Code: resp.Code, Message: resp.Message, RetryAfter: time.Duration(resp.RetryAfterMs) * time.Millisecond}
	}
	if out != nil && len(resp.Payload) > 0 {
		if err := json.Unmarshal(resp.Payload, out); err != nil {
			return resp, fmt.Errorf("protocol: unmarshal %s result: %w", cmd, err)
		}
	}
	return resp, nil
}

// Do sends one logical request and returns the server's response, whatever
// its code. Lost replies and retryable codes are retried with the same
// sequence number and request id (and, when authenticated, a new counter)
// up to MaxAttempts times. An error means no response was received. The
// request gets a fresh request id.
func (c *Client) Do(ctx context.Context, cmd string, payload json.RawMessage) (*Response, error) {
	return c.DoWith(ctx, cmd, payload, CallOptions{})
}

// DoWith is Do with per-call options, such as the request id a re-sent
// purchase must keep.
func (c *Client) DoWith(ctx context.Context, cmd string, payload json.RawMessage, opts CallOptions) (*Response, error) {
	rid, err := opts.requestID()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.seq++
	req := Request{Command: cmd, Seq: c.seq, RequestID: rid, Payload: payload}
	authenticated := c.keys != nil
	c.mu.Unlock()
	if authenticated {
		c.sendMu.Lock()
		defer c.sendMu.Unlock()
	}

	backoff := c.cfg.RetryBackoff
	var lastErr error
	var resp *Response
	for attempt := 1; ; attempt++ {
		resp, lastErr = c.send(ctx, &req)
		retry := lastErr != nil
		var te *TransportError
		if lastErr != nil && !errors.As(lastErr, &te) {
			return nil, lastErr // the reply arrived but is unusable: don't resend
		}
		wait := backoff
		if resp != nil && resp.Code.Retryable() {
			retry = true
			if hint := time.Duration(resp.RetryAfterMs) * time.Millisecond; hint > wait {
				wait = hint
			}
		}
		if !retry || attempt >= c.cfg.MaxAttempts {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			if resp != nil {
				return resp, nil
			}
			return nil, ctx.Err()
		case <-t.C:
		}
		backoff *= 2
	}
	if lastErr != nil {
		return nil, lastErr
	}
	return resp, nil
}

// send encodes req with a fresh client clock (and counter), sends it and
// decodes the reply.
func (c *Client) send(ctx context.Context, req *Request) (*Response, error) {
	c.mu.Lock()
	keys := c.keys
	opts := EncodeOptions{Mode: c.cfg.Mode}
	if keys != nil {
		opts = EncodeOptions{Mode: ModeAuthenticated, Keys: keys, Counter: c.counter.Next()}
		req.Token = ""
	} else {
		req.Token = c.token
	}
	c.mu.Unlock()

	sent := c.cfg.Now()
	req.ClientTime = sent.UnixMilli()
	frame, err := c.codec.AppendEncode(nil, AppendRequest(nil, req), opts)
	if err != nil {
		return nil, err
	}
	reply, err := c.cfg.Transport.RoundTrip(ctx, frame)
	if err != nil {
		var te *TransportError
		if !errors.As(err, &te) {
			err = &TransportError{Err: err}
		}
		return nil, err
	}
	rtt := c.cfg.Now().Sub(sent)
	h, err := ParseHeader(reply)
	if err != nil {
		return nil, fmt.Errorf("protocol: reply: %w", err)
	}
	var replyKeys *Keys
	if h.Flags&FlagAuthenticated != 0 {
		replyKeys = keys
	}
	body, _, err := c.codec.Decode(reply, replyKeys)
	if err != nil {
		return nil, fmt.Errorf("protocol: reply: %w", err)
	}
	var resp Response
	if err := DecodeResponse(body, &resp); err != nil {
		return nil, fmt.Errorf("protocol: reply: %w", err)
	}
	// Only the transport's refusals (error codes) may come back less
	// protected than the request; an OK reply must match its mode, or a
	// forged unprotected "success" could be slipped in.
	if ModeOf(h.Flags) != opts.Mode && resp.Code == CodeOK {
		return nil, fmt.Errorf("protocol: reply in mode %v to a %v request", ModeOf(h.Flags), opts.Mode)
	}
	// A push, or a success that does not answer this request's sequence
	// number, is not this request's reply: refusing it stops a captured
	// frame sealed with the same keys from passing for the answer.
	if IsPush(body) {
		return nil, errors.New("protocol: reply is a push, not a response")
	}
	if resp.Seq != req.Seq && (resp.Seq != 0 || resp.Code == CodeOK) {
		return nil, fmt.Errorf("protocol: reply for seq %d to request seq %d", resp.Seq, req.Seq)
	}
	if resp.ServerTime != 0 {
		c.addClockSample(sent, rtt, resp.ServerTime)
	}
	return &resp, nil
}

func (c *Client) addClockSample(sent time.Time, rtt time.Duration, serverMs int64) {
	// The server stamped its clock somewhere within the round trip; assume
	// the middle. The sample with the smallest RTT has the smallest error.
	mid := sent.Add(rtt / 2)
	offset := time.UnixMilli(serverMs).Sub(mid)
	c.mu.Lock()
	c.samples[c.nSample%clockSamples] = clockSample{rtt: rtt, offset: offset}
	c.nSample++
	c.mu.Unlock()
}

// ClockOffset estimates server clock minus client clock from the recent
// round trip with the smallest delay (as NTP does); 0 before the first reply.
// The client still sends its raw clock: the offset is for displaying server
// time (event ends, stamina refills), not for correcting requests.
func (c *Client) ClockOffset() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := min(c.nSample, clockSamples)
	if n == 0 {
		return 0
	}
	best := c.samples[0]
	for _, s := range c.samples[1:n] {
		if s.rtt < best.rtt {
			best = s
		}
	}
	return best.offset
}

// ServerNow estimates the server's clock now.
func (c *Client) ServerNow() time.Time { return c.cfg.Now().Add(c.ClockOffset()) }

// NewRequestID returns a fresh request id: 16 random bytes as 22 base64url
// characters. Call and Do make one for every call; a caller that must
// re-send a request later keeps one and passes it in CallOptions.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
