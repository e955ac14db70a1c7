package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/coder/websocket"

	"github.com/madang-io/madang/protocol"
)

// DialOptions configures a Client (Dial). The zero value works: plain
// frames, the token in the query string.
type DialOptions struct {
	// Mode protects frames both ways (the "mode" query parameter).
	// ModeAuthenticated needs Keys (session.Session.Keys), ModeXOR needs
	// Codec.XORKey. Default ModePlain.
	Mode protocol.Mode
	// Keys are the session's frame keys for ModeAuthenticated.
	Keys *protocol.Keys
	// Counters hands out the counters of the client's authenticated
	// frames. The counter belongs to the session's keys, so pass the
	// FrameCounter of every other connection of the session
	// (protocol.Client.Counter of the HTTP client): HTTP requests and
	// websocket frames then never use a counter twice. Nil: a FrameCounter
	// of the client's own, counting on from Counter.
	Counters *protocol.FrameCounter
	// Counter is the last frame counter the session used, when Counters is
	// nil (session.Session.Counter, if nothing else uses the session's
	// keys); the client's frames count on from it.
	Counter uint64
	// Codec configures the frame codec (its Role is ignored).
	Codec protocol.Config
	// BearerHeader sends the token in an Authorization header instead of
	// the query string.
	BearerHeader bool
	// PushBuffer is how many pushes may wait for Next. When it is full the
	// client stops reading the socket (so a test can make a slow consumer).
	// Default 10000.
	PushBuffer int
	// ReadLimit is the largest websocket message the client accepts.
	// Default 4 MiB.
	ReadLimit int64
	// HTTPClient makes the handshake (its Transport dials the connection).
	// Default http.DefaultClient.
	HTTPClient *http.Client
}

// Client is a Go websocket client of a Hub, for bots, load tools and
// integration tests (a game client in another language follows
// docs/PROTOCOL.md §16 the same way). It numbers commands, gives each
// command for the handler chain a request id (Call, CallWith), matches
// replies, splits batched messages into frames and queues pushes for Next.
// Safe for concurrent use; Close stops its reader goroutine.
//
// The Client does not re-send: a call whose connection ended has an
// unknown outcome. Send it again on a new connection with the same
// request id (CallWith) and an idempotent command answers its stored
// result (Response.Replay) instead of running twice.
type Client struct {
	ws    *websocket.Conn
	codec *protocol.Codec
	opts  DialOptions

	mu       sync.Mutex // guards seq, pending and the order of writes
	seq      uint64
	counters *protocol.FrameCounter
	pending  map[uint64]chan *protocol.Response

	pushes    chan *protocol.Push
	unmatched chan *protocol.Response

	done      chan struct{} // closed when the reader ends
	closing   chan struct{} // closed by Close
	readErr   error
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// HandshakeError is a websocket handshake the server refused with an HTTP
// status instead of upgrading (docs/PROTOCOL.md §16.1): 401 for a missing,
// unknown or expired token, 403 for a kicked or revoked session or refused
// plain frames, 400 for a bad mode, 503 while the node shuts down or its
// session store is unavailable. The hub names the result code at the start
// of the body; protocol.CodeOf(err) gives it (ResultCode).
type HandshakeError struct {
	// Status is the HTTP status of the refusal.
	Status int
	// Code is the result code named at the start of the body; 0 (CodeOK)
	// when the body names none (not a hub's answer: a proxy's error page,
	// a wrong path).
	Code protocol.Code
	// Body is the start of the response body (at most 1 KiB).
	Body string
	// Err is the websocket library's error.
	Err error
}

// Error implements error.
func (e *HandshakeError) Error() string {
	return fmt.Sprintf("realtime: dial: HTTP %d %s: %v", e.Status, e.ResultCode(), e.Err)
}

// Unwrap returns the websocket library's error.
func (e *HandshakeError) Unwrap() error { return e.Err }

// ResultCode implements protocol.Coder: Code, or when the body named none
// the code that fits Status: unauthorized (401), forbidden (403),
// bad_request (400), too_large (413), rate_limited (429), unavailable (502,
// 503, 504), else internal.
func (e *HandshakeError) ResultCode() protocol.Code {
	if e.Code != protocol.CodeOK {
		return e.Code
	}
	switch e.Status {
	case http.StatusUnauthorized:
		return protocol.CodeUnauthorized
	case http.StatusForbidden:
		return protocol.CodeForbidden
	case http.StatusBadRequest:
		return protocol.CodeBadRequest
	case http.StatusRequestEntityTooLarge:
		return protocol.CodeTooLarge
	case http.StatusTooManyRequests:
		return protocol.CodeRateLimited
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return protocol.CodeUnavailable
	}
	return protocol.CodeInternal
}

// handshakeError builds the HandshakeError of a refused handshake.
func handshakeError(resp *http.Response, err error) *HandshakeError {
	he := &HandshakeError{Status: resp.StatusCode, Err: err}
	if resp.Body != nil {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		he.Body = string(b)
	}
	name, _, _ := strings.Cut(strings.TrimSpace(he.Body), ":")
	if c, ok := protocol.ParseCode(name); ok {
		he.Code = c
	}
	return he
}

// Dial connects to the hub at rawURL (ws:// or http://) with a session
// token. A handshake the server refused with an HTTP status is a
// *HandshakeError (protocol.CodeOf gives its result code); other failures
// (the server cannot be reached) are errors without a code.
func Dial(ctx context.Context, rawURL, token string, opts *DialOptions) (*Client, error) {
	var o DialOptions
	if opts != nil {
		o = *opts
	}
	if o.PushBuffer <= 0 {
		o.PushBuffer = 10000
	}
	if o.ReadLimit <= 0 {
		o.ReadLimit = 4 << 20
	}
	cc := o.Codec
	cc.Role = protocol.RoleClient
	codec, err := protocol.NewCodec(cc)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	q := u.Query()
	hdr := http.Header{}
	if o.BearerHeader {
		hdr.Set("Authorization", "Bearer "+token)
	} else {
		q.Set("token", token)
	}
	if o.Mode != protocol.ModePlain {
		q.Set("mode", o.Mode.String())
	}
	u.RawQuery = q.Encode()
	ws, resp, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{HTTPHeader: hdr, HTTPClient: o.HTTPClient})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, handshakeError(resp, err)
		}
		return nil, fmt.Errorf("realtime: dial: %w", err)
	}
	ws.SetReadLimit(o.ReadLimit)
	if o.Counters == nil {
		o.Counters = protocol.NewFrameCounter(o.Counter)
	}
	c := &Client{
		ws: ws, codec: codec, opts: o, counters: o.Counters,
		pending:   make(map[uint64]chan *protocol.Response),
		pushes:    make(chan *protocol.Push, o.PushBuffer),
		unmatched: make(chan *protocol.Response, 100),
		done:      make(chan struct{}),
		closing:   make(chan struct{}),
	}
	c.wg.Add(1)
	go c.readLoop()
	return c, nil
}

func (c *Client) readLoop() {
	defer c.wg.Done()
	defer close(c.done)
	for {
		typ, msg, err := c.ws.Read(context.Background())
		if err != nil {
			c.readErr = err
			return
		}
		if typ != websocket.MessageBinary {
			c.readErr = errors.New("realtime: text message from the server")
			c.ws.CloseNow()
			return
		}
		if err := c.handleMessage(msg); err != nil {
			c.readErr = err
			c.ws.CloseNow()
			return
		}
	}
}

// handleMessage decodes every frame of one websocket message.
func (c *Client) handleMessage(msg []byte) error {
	for len(msg) > 0 {
		frame, rest, err := protocol.CutFrame(msg)
		if err != nil {
			return fmt.Errorf("realtime: split message: %w", err)
		}
		msg = rest
		body, _, err := c.codec.Decode(frame, c.opts.Keys)
		if err != nil {
			return fmt.Errorf("realtime: decode frame: %w", err)
		}
		if protocol.IsPush(body) {
			p := new(protocol.Push)
			if err := json.Unmarshal(body, p); err != nil {
				return fmt.Errorf("realtime: push: %w", err)
			}
			select {
			case c.pushes <- p:
			case <-c.closing:
				return errors.New("realtime: closed")
			}
			continue
		}
		r := new(protocol.Response)
		if err := protocol.DecodeResponse(body, r); err != nil {
			return err
		}
		c.mu.Lock()
		ch := c.pending[r.Seq]
		delete(c.pending, r.Seq)
		c.mu.Unlock()
		if ch != nil {
			ch <- r
			continue
		}
		select {
		case c.unmatched <- r:
		default:
		}
	}
	return nil
}

// Call sends cmd with payload (marshalled; a json.RawMessage or []byte is
// sent as is; nil for none) and a fresh request id, and waits for the
// reply, whatever its code. A reply is matched by sequence number; an
// error means no reply arrived (ctx ended or the connection closed).
func (c *Client) Call(ctx context.Context, cmd string, payload any) (*protocol.Response, error) {
	return c.CallWith(ctx, cmd, payload, protocol.CallOptions{})
}

// CallWith is Call with per-call options: opts.RequestID sends a request
// id of the caller's choice (a re-sent purchase keeps the id it was first
// sent with); empty makes a fresh one, as Call does.
func (c *Client) CallWith(ctx context.Context, cmd string, payload any, opts protocol.CallOptions) (*protocol.Response, error) {
	rid := opts.RequestID
	if rid == "" {
		rid = protocol.NewRequestID()
	} else if len(rid) > protocol.MaxRequestIDLen {
		return nil, fmt.Errorf("%w: request id longer than %d bytes", protocol.ErrEnvelope, protocol.MaxRequestIDLen)
	}
	return c.call(ctx, cmd, rid, payload)
}

// call sends one command with request id rid ("" for none: the hub's own
// commands, which it serves itself and which ignore it).
func (c *Client) call(ctx context.Context, cmd, rid string, payload any) (*protocol.Response, error) {
	var raw json.RawMessage
	switch p := payload.(type) {
	case nil:
	case json.RawMessage:
		raw = p
	case []byte:
		raw = p
	default:
		b, err := json.Marshal(p)
		if err != nil {
			return nil, err
		}
		raw = b
	}
	reply := make(chan *protocol.Response, 1)
	c.mu.Lock()
	c.seq++
	seq := c.seq
	c.pending[seq] = reply
	body := protocol.AppendRequest(nil, &protocol.Request{Command: cmd, Seq: seq, RequestID: rid, Payload: raw})
	o := protocol.EncodeOptions{Mode: c.opts.Mode, Keys: c.opts.Keys}
	if o.Mode == protocol.ModeAuthenticated {
		// Taken under mu: this connection's frames go out in counter
		// order, as the hub requires (other connections' counters may
		// come in between).
		o.Counter = c.counters.Next()
	}
	frame, err := c.codec.Encode(body, o)
	if err == nil {
		err = c.ws.Write(ctx, websocket.MessageBinary, frame)
	}
	if err != nil {
		delete(c.pending, seq)
		c.mu.Unlock()
		return nil, fmt.Errorf("realtime: send %s: %w", cmd, err)
	}
	c.mu.Unlock()
	select {
	case r := <-reply:
		return r, nil
	case <-ctx.Done():
	case <-c.done:
	}
	c.mu.Lock()
	delete(c.pending, seq)
	c.mu.Unlock()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return nil, fmt.Errorf("realtime: connection closed: %w", c.readErr)
}

// callOK sends one of the hub's own commands (no request id) and turns a
// code other than CodeOK into an error.
func (c *Client) callOK(ctx context.Context, cmd string, payload any) (*protocol.Response, error) {
	r, err := c.call(ctx, cmd, "", payload)
	if err != nil {
		return nil, err
	}
	if r.Code != protocol.CodeOK {
		return r, &protocol.Error{Code: r.Code, Message: r.Message}
	}
	return r, nil
}

// Subscribed is the reply to Subscribe: the channel joined (a world
// partition for "world") and its position.
type Subscribed struct {
	Channel  string
	Position StreamPosition
}

// Subscribe joins a channel. With since, the publications after it come
// first (as pushes), then live ones. A non-OK reply is a *protocol.Error.
func (c *Client) Subscribe(ctx context.Context, channel string, since *StreamPosition) (Subscribed, error) {
	in := map[string]any{"ch": channel}
	if since != nil {
		in["since"] = since
	}
	r, err := c.callOK(ctx, CmdSubscribe, in)
	if err != nil {
		return Subscribed{}, err
	}
	var out struct {
		Ch     string `json:"ch"`
		Offset uint64 `json:"offset"`
		Epoch  string `json:"epoch"`
	}
	if err := json.Unmarshal(r.Payload, &out); err != nil {
		return Subscribed{}, err
	}
	return Subscribed{Channel: out.Ch, Position: StreamPosition{Offset: out.Offset, Epoch: out.Epoch}}, nil
}

// Unsubscribe leaves a channel.
func (c *Client) Unsubscribe(ctx context.Context, channel string) error {
	_, err := c.callOK(ctx, CmdUnsubscribe, map[string]string{"ch": channel})
	return err
}

// Publish sends a chat message (data marshalled) on a subscribed channel
// and returns its position.
func (c *Client) Publish(ctx context.Context, channel string, data any) (StreamPosition, error) {
	d, err := json.Marshal(data)
	if err != nil {
		return StreamPosition{}, err
	}
	r, err := c.callOK(ctx, CmdPublish, map[string]any{"ch": channel, "data": json.RawMessage(d)})
	if err != nil {
		return StreamPosition{}, err
	}
	var pos StreamPosition
	err = json.Unmarshal(r.Payload, &pos)
	return pos, err
}

// Whisper sends a private message to a user, on whatever node they are.
func (c *Client) Whisper(ctx context.Context, to int64, data any) error {
	d, err := json.Marshal(data)
	if err != nil {
		return err
	}
	_, err = c.callOK(ctx, CmdWhisper, map[string]any{"to": to, "data": json.RawMessage(d)})
	return err
}

// Next returns the next push, waiting until one arrives, ctx ends or the
// connection is closed (then the error carries the close status; see
// CloseCode).
func (c *Client) Next(ctx context.Context) (*protocol.Push, error) {
	select {
	case p := <-c.pushes:
		return p, nil
	default:
	}
	select {
	case p := <-c.pushes:
		return p, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.done:
		select {
		case p := <-c.pushes:
			return p, nil
		default:
		}
		return nil, fmt.Errorf("realtime: connection closed: %w", c.readErr)
	}
}

// Unmatched returns the next reply that answered no pending call (the hub
// answers malformed frames with seq 0).
func (c *Client) Unmatched(ctx context.Context) (*protocol.Response, error) {
	select {
	case r := <-c.unmatched:
		return r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.done:
		select {
		case r := <-c.unmatched:
			return r, nil
		default:
		}
		return nil, fmt.Errorf("realtime: connection closed: %w", c.readErr)
	}
}

// SendRaw writes msg as one binary websocket message, as is (for tests of
// malformed input).
func (c *Client) SendRaw(ctx context.Context, msg []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ws.Write(ctx, websocket.MessageBinary, msg)
}

// Done is closed when the connection has ended.
func (c *Client) Done() <-chan struct{} { return c.done }

// CloseCode returns the result code the hub closed the connection with
// (kicked, slow_consumer, going_away, ...), once Done is closed; false if it
// is not closed or closed without one.
func (c *Client) CloseCode() (protocol.Code, bool) {
	select {
	case <-c.done:
	default:
		return 0, false
	}
	return CodeOfClose(websocket.CloseStatus(c.readErr))
}

// Close closes the connection and waits for the client's goroutine.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		close(c.closing)
		c.ws.Close(websocket.StatusNormalClosure, "")
		c.ws.CloseNow()
	})
	c.wg.Wait()
	return nil
}
