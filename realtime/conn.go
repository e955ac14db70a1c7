package realtime

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"

	"github.com/madang-io/madang/internal/backend"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/session"
)

// CloseStatus is the websocket close status the hub uses for a result code:
// 4000 + the code (4012 kicked, 4013 revoked, 4021 rate_limited, 4051
// slow_consumer, 4053 going_away, ...), with the code's name as the reason.
func CloseStatus(c protocol.Code) websocket.StatusCode {
	return websocket.StatusCode(4000 + int(c))
}

// CodeOfClose returns the result code of a websocket close status the hub
// sent (the inverse of CloseStatus), or false for other statuses.
func CodeOfClose(s websocket.StatusCode) (protocol.Code, bool) {
	if s >= 4000 && s < 5000 {
		return protocol.Code(s - 4000), true
	}
	return 0, false
}

// outMsg is one publication's prepared frame on its way to a subscriber.
type outMsg struct {
	prep   *protocol.Prepared
	offset uint64
	epoch  string
}

// sub is one connection's subscription to one channel.
type sub struct {
	c       *conn
	channel string
	idx     int // position in the channel's subSet.members (the shard's mu)
	// While recovering (a subscribe sending history), live publications
	// are buffered here, then sent after the history without duplicates.
	recovering atomic.Bool
	mu         sync.Mutex
	buf        []outMsg
	// After recovering, publications of epoch sentEpoch up to sentUpTo were
	// sent (or are before the subscribe position): a live delivery of one
	// of them that was still on its way through the broker is dropped.
	sentUpTo  atomic.Uint64
	sentEpoch string // written before sentUpTo
}

func (sb *sub) deliver(m outMsg) {
	if m.offset != 0 && m.offset <= sb.sentUpTo.Load() && m.epoch == sb.sentEpoch {
		return
	}
	if sb.recovering.Load() {
		sb.mu.Lock()
		if sb.recovering.Load() {
			if len(sb.buf) >= sb.c.hub.cfg.SendQueueLen {
				sb.mu.Unlock()
				sb.c.slow()
				return
			}
			sb.buf = append(sb.buf, m)
			sb.mu.Unlock()
			return
		}
		sb.mu.Unlock()
	}
	sb.c.send(m.prep)
}

type conn struct {
	hub       *Hub
	sess      *session.Session
	pid       uint64 // presence connection id on this node
	token     string
	principal *protocol.Principal
	mode      protocol.Mode
	keys      *protocol.Keys
	remote    string
	ws        *websocket.Conn
	fw        *frameWriter // under ws's write buffer (nil: net/http's buffer)

	ctx    context.Context
	cancel context.CancelFunc
	// outq is the send queue (SendQueueLen), made on first use (queue):
	// a connection whose frames are all written by sendInline never needs
	// one.
	outq atomic.Pointer[chan *protocol.Prepared]

	closeOnce sync.Once
	closing   chan struct{}
	closed    atomic.Bool
	closeCode protocol.Code
	closeMsg  string

	subsMu  sync.Mutex
	subs    map[string]*sub
	userSub *sub

	// busy is set while a command runs: the websocket library reads pongs
	// only while the connection is being read, so no ping is sent then.
	// started counts the commands begun, so a ping whose wait overlapped a
	// command (its pong held up behind the command) is not a missed pong.
	busy    atomic.Bool
	started atomic.Uint64

	// The writer goroutine runs only while there is something to write: it
	// is started by kick and exits when the queue is empty (after
	// writerIdle without work when sendInline cannot be used), so an idle
	// connection holds no writer stack and no batch buffer. sendInline
	// takes the writer role (wrunning) for the one frame it writes.
	wmu      sync.Mutex
	wready   bool // ws is set: a writer may start
	wrunning bool
	wstopped bool // the writer closed the websocket: never start again

	// the keepalive timer (tick)
	timerMu       sync.Mutex
	timer         *time.Timer
	timersStopped bool
	refreshed     time.Time // only tick touches these after startTimers
	pinged        time.Time

	// reader goroutine state
	lastCounter uint64
	cmds        tokenBucket
	rbuf, body  []byte

	wg sync.WaitGroup
}

func (h *Hub) newConn(sess *session.Session, token string, mode protocol.Mode, remote string) (*conn, error) {
	c := &conn{
		hub: h, sess: sess, token: token, principal: sess.Principal(), mode: mode, remote: remote,
		closing: make(chan struct{}), subs: make(map[string]*sub), lastCounter: sess.Counter,
		pid: h.presence.seq.Add(1),
	}
	if mode == protocol.ModeAuthenticated {
		k, err := sess.Keys()
		if err != nil {
			return nil, fmt.Errorf("realtime: session keys: %w", err)
		}
		c.keys = k
	}
	elsewhere := h.connsElsewhere(sess.UserKey)
	c.ctx, c.cancel = context.WithCancel(h.ctx)
	us := h.userShard(sess.UserKey)
	us.mu.Lock()
	if _, ended := us.ended[sess.ID]; ended {
		us.mu.Unlock()
		c.cancel()
		return nil, session.ErrKicked
	}
	u := us.users[sess.UserKey]
	if u == nil {
		u = &userState{}
		us.users[sess.UserKey] = u
	}
	if h.cfg.MaxUserConns > 0 && len(u.conns)+elsewhere >= h.cfg.MaxUserConns {
		if len(u.conns) == 0 {
			delete(us.users, sess.UserKey)
		}
		us.mu.Unlock()
		c.cancel()
		h.stats.refused.Add(1)
		return nil, ErrTooManyConns
	}
	u.conns = append(u.conns, c)
	us.mu.Unlock()
	h.stats.conns.Add(1)
	if h.shutting.Load() { // Shutdown's sweep may have passed this shard
		c.close(protocol.CodeGoingAway, protocol.CodeGoingAway.String())
	}
	c.userSub = &sub{c: c, channel: UserChannel(sess.UserKey)}
	ctx, cancel := context.WithTimeout(c.ctx, h.cfg.HandshakeTimeout)
	err := h.addSub(ctx, c.userSub)
	cancel()
	if err != nil {
		c.userSub = nil
		c.cleanup()
		return nil, err
	}
	h.touchConn(c)
	return c, nil
}

// cleanup removes the connection from the hub.
func (c *conn) cleanup() {
	h := c.hub
	if r := h.rooms.Load(); r != nil {
		r.connClosed(c)
	}
	c.subsMu.Lock()
	subs := c.subs
	c.subs = nil
	c.subsMu.Unlock()
	chans := make([]string, 0, len(subs))
	for ch, sb := range subs {
		h.removeSub(sb)
		chans = append(chans, ch)
	}
	h.presenceDisconnect(c, chans)
	if c.userSub != nil {
		h.removeSub(c.userSub)
	}
	us := h.userShard(c.sess.UserKey)
	us.mu.Lock()
	if u := us.users[c.sess.UserKey]; u != nil {
		for i, x := range u.conns {
			if x == c {
				u.conns = append(u.conns[:i], u.conns[i+1:]...)
				break
			}
		}
		if len(u.conns) == 0 {
			delete(us.users, c.sess.UserKey)
		}
	}
	us.mu.Unlock()
	h.stats.conns.Add(-1)
	c.cancel()
}

// serve upgrades the request and starts the connection's reader on a
// goroutine of its own, then returns: the HTTP handler's goroutine (its
// stack, grown by the handshake) and the HTTP server's state for the
// request are not kept for the connection's life, only the socket and the
// websocket's buffers are.
func (c *conn) serve(w http.ResponseWriter, r *http.Request) {
	if hj, ok := w.(http.Hijacker); ok {
		w = hijackBuffers{w, hj, c}
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		OriginPatterns:  c.hub.cfg.OriginPatterns,
		CompressionMode: websocket.CompressionDisabled, // frames are LZ4-compressed already
	})
	if err != nil {
		c.hub.log.Debug("realtime: upgrade failed", "remote", c.remote, "err", err)
		c.cleanup()
		return
	}
	ws.SetReadLimit(c.hub.cfg.ReadLimit)
	c.ws = ws
	c.wmu.Lock()
	c.wready = true
	c.wmu.Unlock()
	if c.queued() > 0 || c.closed.Load() {
		c.kick() // for what was queued (or a close) before the upgrade
	}
	c.startTimers()
	c.hub.connWG.Add(1) // ServeHTTP's own count is held until it returns
	go c.run()
}

// run reads one message (waiting for it is what an idle connection does),
// then hands the connection to a fresh goroutine for the next one: reading
// a message and running its commands (store, broker, Handler calls) grow a
// goroutine's stack to 8 KiB and more, and the runtime shrinks a stack only
// to four times what is in use, so a reader that kept its goroutine would
// keep that stack while idle. A fresh one holds only what waiting needs.
// The goroutine that finds the connection done closes and removes it.
func (c *conn) run() {
	if c.readMessage() {
		go c.run()
		return
	}
	defer c.hub.connWG.Done()
	defer c.cleanup()
	if c.ctx.Err() != nil {
		// Shutdown gave up waiting (or the connection was torn down):
		// writes take no context, so a write stuck on a client that does
		// not read is ended here rather than at its WriteTimeout.
		c.ws.CloseNow()
	}
	c.close(protocol.CodeOK, "")
	c.stopTimers()
	c.wg.Wait()
	c.ws.CloseNow()
}

// connReadBuffer is the size of a connection's read buffer: client frames
// are commands, mostly small, and a longer message is read past the buffer
// into the reader's own (readAll). The HTTP server's 4 KiB buffer is
// dropped with the request.
const connReadBuffer = 1 << 10

// connWriteBuffer is the size of the bufio.Writer the websocket library
// writes a connection's frames through (it keeps the one it is given at
// accept for the connection's life; net/http's is 4 KiB). It is larger
// than any control frame (2 + 125 bytes), so only a data frame can fill it;
// frameWriter makes a frame that overflows it one system call all the same.
const connWriteBuffer = 128

// hijackBuffers gives websocket.Accept the hijacked connection with a read
// buffer of connReadBuffer bytes in place of the HTTP server's, unless that
// one holds bytes the client already sent, and a write buffer of
// connWriteBuffer bytes over a frameWriter (set in c.fw).
type hijackBuffers struct {
	http.ResponseWriter
	hj http.Hijacker
	c  *conn
}

func (w hijackBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := w.hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	r, bw := brw.Reader, brw.Writer
	if r.Buffered() == 0 {
		r = bufio.NewReaderSize(nc, connReadBuffer)
	}
	if bw.Buffered() == 0 {
		w.c.fw = &frameWriter{nc: nc, rc: rawConnOf(nc)}
		bw = bufio.NewWriterSize(w.c.fw, connWriteBuffer)
	}
	return nc, bufio.NewReadWriter(r, bw), nil
}

// frameWriter is what a connection's small write buffer flushes to. The
// websocket library writes a frame as its header and payload into the
// buffer, which passes on a payload too large for it directly, after
// flushing a full buffer: that full buffer is held here and goes out with
// the write that follows it (one writev), so a frame of any size is still
// one system call. A held buffer that ended its frame (the frame filled the
// buffer exactly) is sent by flush, which the writer calls after each
// websocket write. Control frames never fill the buffer (connWriteBuffer),
// so the library's own writes (pongs, pings, close) are never held.
//
// tryWrite writes a whole websocket frame straight to the socket without
// waiting (conn.sendInline): what the socket did not take is kept as
// pending and goes out first, before anything else written here, so frames
// are never interleaved.
type frameWriter struct {
	nc   net.Conn
	mu   sync.Mutex
	n    int // bytes held
	held [connWriteBuffer]byte
	vec  [3][]byte
	bufs net.Buffers

	rc      syscall.RawConn // nil: no tryWrite (not a plain socket)
	rawFn   func(fd uintptr) bool
	raw     []byte // rawWrite's argument and result
	rawN    int
	pending []byte // the rest of a frame tryWrite began
}

func (w *frameWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n == 0 && len(w.pending) == 0 {
		if len(p) == connWriteBuffer { // a full buffer: the frame may go on
			w.n = copy(w.held[:], p)
			return len(p), nil
		}
		return w.nc.Write(p)
	}
	before := len(w.pending) + w.n
	n, err := w.writeHeldLocked(p)
	if err != nil {
		return max(int(n)-before, 0), err
	}
	return len(p), nil
}

// writeHeldLocked writes what is pending, what is held and p, in that
// order, in one writev, and forgets the first two. w.mu is held.
func (w *frameWriter) writeHeldLocked(p []byte) (int64, error) {
	w.vec[0], w.vec[1], w.vec[2] = w.pending, w.held[:w.n], p
	w.bufs = w.vec[:]
	w.n = 0
	n, err := w.bufs.WriteTo(w.nc)
	w.vec = [3][]byte{}
	w.bufs = nil
	if cap(w.pending) > maxPooledBatch {
		w.pending = nil
	} else {
		w.pending = w.pending[:0]
	}
	return n, err
}

// flush sends what is pending and held (nil if nothing is).
func (w *frameWriter) flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n == 0 && len(w.pending) == 0 {
		return nil
	}
	_, err := w.writeHeldLocked(nil)
	return err
}

// hasPending reports whether a frame tryWrite began is not all sent.
func (w *frameWriter) hasPending() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending) > 0
}

// tryWrite writes frame (a whole websocket frame) to the socket with one
// system call that does not wait, and never waits for w.mu either. It
// returns false when nothing was written: another write is in progress
// here, something is held or pending, the socket buffer is full, or the
// write failed (the writer goroutine, writing the frame again, gets the
// error). On true the frame is committed: sent whole, or its rest pending
// (then rest is true) for the next write or flush.
func (w *frameWriter) tryWrite(frame []byte) (ok, rest bool) {
	if w.rc == nil || !w.mu.TryLock() {
		return false, false
	}
	defer w.mu.Unlock()
	if w.n != 0 || len(w.pending) != 0 {
		return false, false
	}
	if w.rawFn == nil {
		w.rawFn = w.rawWrite
	}
	w.raw, w.rawN = frame, 0
	err := w.rc.Write(w.rawFn)
	n := w.rawN
	w.raw = nil
	if err != nil || n <= 0 {
		return false, false
	}
	if n < len(frame) {
		w.pending = append(w.pending[:0], frame[n:]...)
		return true, true
	}
	return true, false
}

// close starts closing the connection with a result code (CodeOK: a normal
// closure). The writer sends what is queued (except for slow consumers),
// then the websocket close frame. Safe from any goroutine, never blocks.
func (c *conn) close(code protocol.Code, msg string) {
	c.closeOnce.Do(func() {
		c.closeCode, c.closeMsg = code, msg
		c.closed.Store(true)
		close(c.closing)
	})
	c.kick()
}

func (c *conn) slow() {
	if !c.closed.Load() {
		c.hub.stats.slow.Add(1)
		c.close(protocol.CodeSlowConsumer, protocol.CodeSlowConsumer.String())
	}
}

// send queues a frame without blocking; a full queue closes the connection
// with slow_consumer. When the connection has nothing queued and no writer
// running, the frame is written at once by the calling goroutine instead
// (sendInline): no writer goroutine is woken for it.
func (c *conn) send(p *protocol.Prepared) {
	if c.closed.Load() {
		return
	}
	if c.claimInline(p) {
		c.sendInline(p)
		return
	}
	select {
	case c.queue() <- p:
		c.hub.stats.delivered.Add(1)
		c.kick()
	default:
		c.slow()
	}
}

// queue returns the connection's send queue, made on first use.
func (c *conn) queue() chan *protocol.Prepared {
	if q := c.outq.Load(); q != nil {
		return *q
	}
	q := make(chan *protocol.Prepared, c.hub.cfg.SendQueueLen)
	if c.outq.CompareAndSwap(nil, &q) {
		return q
	}
	return *c.outq.Load()
}

// queued is how many frames wait in the send queue.
func (c *conn) queued() int {
	if q := c.outq.Load(); q != nil {
		return len(*q)
	}
	return 0
}

// maxInlineFrame is the largest frame sendInline writes itself; a larger
// one (rare) goes through the writer goroutine, so a short write never
// leaves much to copy into pending.
const maxInlineFrame = 16 << 10

// claimInline makes the caller the connection's writer for one frame, as
// kick makes a writer goroutine: only when nothing is queued, no writer
// runs and the socket is one tryWrite can use. sendInline must follow.
func (c *conn) claimInline(p *protocol.Prepared) bool {
	if c.queued() > 0 || len(p.PlainFrame()) > maxInlineFrame {
		return false
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	// c.fw is set by the upgrade, before wready (under wmu).
	if !c.wready || c.wrunning || c.wstopped || c.queued() > 0 || c.closed.Load() || c.fw == nil || c.fw.rc == nil {
		return false
	}
	c.wrunning = true
	c.wg.Add(1)
	return true
}

// inlinePool holds sendInline's frame buffers (*[]byte).
var inlinePool sync.Pool

// sendInline writes p as one websocket message with one system call that
// does not wait (frameWriter.tryWrite), then gives up the writer role it
// claimed. When the socket does not take the frame at once (its buffer is
// full: a slow reader) it is queued as send would have, and a writer
// goroutine is started for it, as for anything queued meanwhile, the rest
// of a frame the socket took in part, or a close: from there on the
// writer goroutine's rules (WriteTimeout, slow_consumer) apply.
func (c *conn) sendInline(p *protocol.Prepared) {
	h := c.hub
	bp, _ := inlinePool.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	var room [wsMaxHeader]byte
	buf := append((*bp)[:0], room[:]...)
	buf, err := h.codec.AppendPrepared(buf, p, protocol.EncodeOptions{Mode: c.mode, Keys: c.keys})
	written, rest := true, false // an encoding failure drops the frame, as the writer does
	if err != nil {
		h.log.Warn("realtime: cannot encode a frame", "err", err)
	} else {
		written, rest = c.fw.tryWrite(wsFrame(buf))
	}
	if cap(buf) <= maxPooledBatch {
		*bp = buf[:0]
		inlinePool.Put(bp)
	}
	queued, full := written, false
	c.wmu.Lock()
	if !written {
		select {
		case c.queue() <- p:
			queued = true
		default:
			full = true // filled by others meanwhile
		}
	}
	handOver := rest || c.queued() > 0 || c.closed.Load()
	if !handOver {
		c.wrunning = false
	}
	c.wmu.Unlock()
	if handOver {
		go c.writeLoop() // takes over the writer role and its c.wg count
	} else {
		c.wg.Done()
	}
	if queued {
		h.stats.delivered.Add(1)
	}
	if written && !rest {
		h.stats.inline.Add(1)
	}
	if full {
		c.slow()
	}
}

// wsMaxHeader is the longest websocket frame header a server writes
// (unmasked: 2 bytes, and 8 more for a 64-bit length).
const wsMaxHeader = 10

// wsFrame turns buf, whose first wsMaxHeader bytes are room for the header
// and the rest the payload, into one final binary websocket frame (RFC
// 6455 §5.2; a server's frames are not masked) and returns it.
func wsFrame(buf []byte) []byte {
	n := len(buf) - wsMaxHeader
	var h int
	switch {
	case n < 126:
		h = wsMaxHeader - 2
		buf[h+1] = byte(n)
	case n <= 0xFFFF:
		h = wsMaxHeader - 4
		buf[h+1] = 126
		binary.BigEndian.PutUint16(buf[h+2:], uint16(n))
	default:
		h = 0
		buf[1] = 127
		binary.BigEndian.PutUint64(buf[2:], uint64(n))
	}
	buf[h] = 0x82 // FIN, binary
	return buf[h:]
}

// defaultWriterIdle is how long a writer goroutine of a connection that
// sendInline cannot write to (TLS) waits for more work before it exits
// (kick starts a new one); Hub.writerIdle, changed by tests.
const defaultWriterIdle = time.Second

// kick makes sure a writer goroutine runs (after something was queued, or
// the connection started closing).
func (c *conn) kick() {
	c.wmu.Lock()
	if !c.wready || c.wrunning || c.wstopped {
		c.wmu.Unlock()
		return
	}
	c.wrunning = true
	c.wg.Add(1)
	c.wmu.Unlock()
	go c.writeLoop()
}

// writerDone ends the writer for good: the websocket is closed.
func (c *conn) writerDone() {
	c.wmu.Lock()
	c.wstopped = true
	c.wmu.Unlock()
}

// batchPool holds the writers' batch buffers (*[]byte) between writers;
// one larger than maxPooledBatch (a rare big frame) is dropped.
var batchPool sync.Pool

const maxPooledBatch = 64 << 10

func (c *conn) writeLoop() {
	defer c.wg.Done()
	// A connection that sendInline can write to needs no writer while its
	// queue is empty: the writer exits as soon as it is (the next frame is
	// written inline). Otherwise it lingers writerIdle for more work.
	linger := c.fw == nil || c.fw.rc == nil
	var idle *time.Timer
	var idleC <-chan time.Time
	if linger {
		idle = time.NewTimer(c.hub.writerIdle)
		defer idle.Stop()
		idleC = idle.C
	}
	h := c.hub
	out := c.queue()
	opts := protocol.EncodeOptions{Mode: c.mode, Keys: c.keys}
	// The batch buffer is shared by the writers through a pool: a writer
	// that exits (idle) gives it back, the next one to start takes it.
	bp, _ := batchPool.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	batch := (*bp)[:0]
	var deadline *time.Timer // the write timeout, re-armed per write
	defer func() {
		if deadline != nil {
			deadline.Stop()
		}
		if cap(batch) <= maxPooledBatch {
			*bp = batch[:0]
			batchPool.Put(bp)
		}
	}()
	arm := func() {
		if deadline == nil {
			deadline = time.AfterFunc(h.cfg.WriteTimeout, c.writeTimedOut)
		} else {
			deadline.Reset(h.cfg.WriteTimeout)
		}
	}
	write := func(first *protocol.Prepared) error {
		var err error
		batch, err = h.codec.AppendPrepared(batch[:0], first, opts)
		if err != nil {
			h.log.Warn("realtime: cannot encode a frame", "err", err)
			batch = batch[:0]
		}
	more:
		for len(batch) < h.cfg.MaxBatchBytes {
			select {
			case p := <-out:
				n := len(batch)
				if batch, err = h.codec.AppendPrepared(batch, p, opts); err != nil {
					h.log.Warn("realtime: cannot encode a frame", "err", err)
					batch = batch[:n]
				}
			default:
				break more
			}
		}
		if len(batch) == 0 {
			return nil
		}
		// The write deadline is one timer per writer, re-armed for each
		// write: a context per write (context.WithTimeout, on which the
		// websocket library registers a callback) cost an allocation of
		// hundreds of bytes per write. A context without Done makes the
		// library register nothing; the timer closes the websocket when
		// the write (waiting for its lock included) outlasts WriteTimeout,
		// which fails it, as the context's expiry did.
		arm()
		err = c.ws.Write(context.Background(), websocket.MessageBinary, batch)
		if err == nil && c.fw != nil {
			err = c.fw.flush()
		}
		deadline.Stop()
		return err
	}
	if c.fw != nil && c.fw.hasPending() {
		// The rest of a frame sendInline began goes first (any write
		// through frameWriter would send it first too).
		arm()
		err := c.fw.flush()
		deadline.Stop()
		if err != nil {
			c.writerDone()
			c.close(protocol.CodeTimeout, "write failed")
			c.ws.CloseNow()
			return
		}
	}
	for {
		if c.closed.Load() && c.closeCode == protocol.CodeSlowConsumer {
			c.writerDone()
			c.ws.Close(CloseStatus(c.closeCode), c.closeMsg)
			c.cancel()
			return
		}
		if !linger {
			c.wmu.Lock()
			if len(out) == 0 && !c.closed.Load() {
				c.wrunning = false
				c.wmu.Unlock()
				return
			}
			c.wmu.Unlock()
		}
		select {
		case p := <-out:
			if err := write(p); err != nil {
				c.writerDone()
				c.close(protocol.CodeTimeout, "write failed")
				c.ws.CloseNow()
				return
			}
			if linger {
				idle.Reset(c.hub.writerIdle)
			}
		case <-idleC:
			c.wmu.Lock()
			if len(out) > 0 || c.closed.Load() {
				c.wmu.Unlock()
				idle.Reset(c.hub.writerIdle)
				continue
			}
			c.wrunning = false
			c.wmu.Unlock()
			return
		case <-c.closing:
			c.writerDone()
			if c.closeCode != protocol.CodeSlowConsumer {
			drain:
				for {
					select {
					case p := <-out:
						if write(p) != nil {
							break drain
						}
					default:
						break drain
					}
				}
			}
			status := websocket.StatusNormalClosure
			if c.closeCode != protocol.CodeOK {
				status = CloseStatus(c.closeCode)
			}
			c.ws.Close(status, c.closeMsg)
			c.cancel()
			return
		case <-c.ctx.Done():
			c.writerDone()
			c.ws.CloseNow()
			return
		}
	}
}

// writeTimedOut runs when a websocket write outlasts WriteTimeout: it closes
// the connection with timeout at once (no close handshake: the client
// does not take the bytes), which fails the write.
func (c *conn) writeTimedOut() {
	c.close(protocol.CodeTimeout, "write timeout")
	c.ws.CloseNow()
}

// tick runs on a timer (no goroutine per connection while idle): every
// PingInterval it pings the client and every SessionRefresh it re-validates
// the session. The timer is re-armed until stopTimers.
func (c *conn) tick() {
	c.timerMu.Lock()
	if c.timersStopped {
		c.timerMu.Unlock()
		return
	}
	c.wg.Add(1)
	c.timerMu.Unlock()
	defer c.wg.Done()
	h := c.hub
	if h.cfg.SessionRefresh > 0 && time.Since(c.refreshed) >= h.cfg.SessionRefresh {
		c.refreshed = time.Now()
		ctx, cancel := context.WithTimeout(c.ctx, h.cfg.CommandTimeout)
		_, err := h.store.Get(ctx, c.token)
		cancel()
		if code := protocol.CodeOf(err); err != nil && code != protocol.CodeUnavailable && code != protocol.CodeTimeout && c.ctx.Err() == nil {
			c.close(code, code.String())
			return
		}
	}
	if time.Since(c.pinged) >= h.cfg.PingInterval && !c.busy.Load() {
		c.pinged = time.Now()
		before := c.started.Load()
		ctx, cancel := context.WithTimeout(c.ctx, h.cfg.PongTimeout)
		err := c.ws.Ping(ctx)
		cancel()
		// A command that began while the ping waited kept the reader away
		// from the pong: that proves nothing, and the next ping decides.
		if err != nil && !c.busy.Load() && c.started.Load() == before {
			c.close(protocol.CodeTimeout, "ping timeout")
			return
		}
	}
	c.timerMu.Lock()
	if !c.timersStopped {
		c.timer.Reset(c.tickEvery())
	}
	c.timerMu.Unlock()
}

// tickEvery is the keepalive timer's period: the shorter of PingInterval and
// SessionRefresh.
func (c *conn) tickEvery() time.Duration {
	d := c.hub.cfg.PingInterval
	if r := c.hub.cfg.SessionRefresh; r > 0 && r < d {
		d = r
	}
	return d
}

func (c *conn) startTimers() {
	c.timerMu.Lock()
	c.refreshed, c.pinged = time.Now(), time.Now()
	c.timer = time.AfterFunc(c.tickEvery(), c.tick)
	c.timerMu.Unlock()
}

// stopTimers stops tick for good; a tick already running is waited for by
// c.wg.
func (c *conn) stopTimers() {
	c.timerMu.Lock()
	c.timersStopped = true
	if c.timer != nil {
		c.timer.Stop()
	}
	c.timerMu.Unlock()
}

// readMessage waits for the next websocket message and runs its frames;
// false when the connection is done.
func (c *conn) readMessage() bool {
	typ, rd, err := c.ws.Reader(c.ctx)
	if err != nil {
		return false
	}
	c.rbuf, err = readAll(rd, c.rbuf[:0])
	if err != nil {
		return false // too big: the websocket library closes with 1009
	}
	if typ != websocket.MessageBinary {
		c.close(protocol.CodeBadFrame, "binary messages only")
		return false
	}
	msg := c.rbuf
	for len(msg) > 0 {
		frame, rest, err := protocol.CutFrame(msg)
		if err != nil {
			c.replyError(0, "", err)
			break
		}
		msg = rest
		c.busy.Store(true)
		c.started.Add(1)
		ok := c.handleFrame(frame)
		c.busy.Store(false)
		if !ok {
			return false
		}
	}
	return true
}

func readAll(r io.Reader, buf []byte) ([]byte, error) {
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

// maxKeptBody is the largest decode buffer a connection keeps between
// frames: a larger one (a rare large command) is dropped after use, so idle
// connections do not each hold the largest body they ever sent.
const maxKeptBody = 16 << 10

// handleFrame runs one client frame; false means stop reading.
func (c *conn) handleFrame(frame []byte) bool {
	h := c.hub
	now := h.cfg.Now()
	ok, wait, flood := c.cmds.take(now, h.cfg.CommandRate, h.cfg.CommandBurst)
	if !ok {
		if flood {
			c.close(protocol.CodeRateLimited, protocol.CodeRateLimited.String())
			return false
		}
		c.reply(&protocol.Response{Code: protocol.CodeRateLimited, Message: "too many messages", RetryAfterMs: max(wait.Milliseconds(), 1)})
		return true
	}
	var err error
	var hdr protocol.Header
	var lease protocol.DecodeLease
	c.body, hdr, lease, err = h.codec.AppendDecodeBudget(c.ctx, h.cfg.DecodeBudget, c.body[:0], frame, c.keys)
	// The body's room in the decode budget is held until the command is
	// answered (the request keeps a copy of its payload until then); a body
	// larger than usual is not kept with the connection.
	defer func() {
		lease.Release()
		if cap(c.body) > maxKeptBody {
			c.body = nil
		}
	}()
	if err != nil {
		c.replyError(0, "", err)
		return true
	}
	if protocol.ModeOf(hdr.Flags) != c.mode {
		c.replyError(0, "", fmt.Errorf("%w: %v frame on a %v connection", protocol.ErrFlags, protocol.ModeOf(hdr.Flags), c.mode))
		return true
	}
	req := &protocol.Request{}
	decodeErr := protocol.DecodeRequest(c.body, req)
	if decodeErr != nil {
		req.Seq, req.RequestID = 0, ""
	}
	if c.mode == protocol.ModeAuthenticated {
		// The frame authenticated, so its envelope is the client's own: a
		// refusal carries its seq and rid, so a client with several
		// requests in flight knows which one was refused.
		if hdr.Counter <= c.lastCounter {
			c.replyError(req.Seq, req.RequestID, protocol.ErrReplayed)
			return true
		}
		c.lastCounter = hdr.Counter
	}
	if decodeErr != nil {
		c.replyError(0, "", decodeErr)
		return true
	}
	req.Mode, req.Counter, req.RemoteAddr, req.ReceivedAt = c.mode, hdr.Counter, c.remote, now
	if len(hdr.KeyID) > 0 {
		req.KeyID = append([]byte(nil), hdr.KeyID...)
	}
	p := *c.principal
	req.Principal = &p
	if req.Token == "" && len(req.KeyID) == 0 {
		req.Token = c.token
	}
	ctx, cancel := context.WithTimeout(c.ctx, h.cfg.CommandTimeout)
	defer cancel()
	if c.mode == protocol.ModeAuthenticated && c.servesItself(req.Command) {
		if err := c.acceptCounter(ctx, hdr.Counter); err != nil {
			c.replyError(req.Seq, req.RequestID, err)
			return true
		}
	}
	if req.Command == CmdSubscribe {
		if err := c.subscribe(ctx, req); err != nil {
			c.replyError(req.Seq, req.RequestID, err)
		}
		return true
	}
	resp := protocol.Dispatch(ctx, protocol.HandlerFunc(c.classifiedRoute), req, h.log)
	c.reply(resp)
	return true
}

func (c *conn) replyError(seq uint64, rid string, err error) {
	err = backend.Classify(err)
	code := protocol.CodeOf(err)
	resp := &protocol.Response{Seq: seq, RequestID: rid, Code: code, Message: code.String()}
	var pe *protocol.Error
	if errors.As(err, &pe) {
		resp.Message = pe.Message
		if pe.RetryAfter > 0 {
			resp.RetryAfterMs = max(pe.RetryAfter.Milliseconds(), 1)
		}
	}
	c.reply(resp)
}

// reply queues a response from the reader goroutine (or writes it at once,
// as send does, when nothing is queued). When the queue is full it waits up to WriteTimeout (the client's own commands are held back
// rather than dropping the connection at once), then gives up with
// slow_consumer.
func (c *conn) reply(resp *protocol.Response) {
	p := c.prepareReply(resp)
	if p == nil || c.closed.Load() {
		return
	}
	if c.claimInline(p) {
		c.sendInline(p)
		return
	}
	select {
	case c.queue() <- p:
		c.hub.stats.delivered.Add(1)
		c.kick()
		return
	default:
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.hub.cfg.WriteTimeout)
	c.sendWait(ctx, p)
	cancel()
}

// prepareReply encodes a response; one that cannot be encoded (over the
// frame size limit) is replaced by an error response with its code, so the
// client's call still gets an answer.
func (c *conn) prepareReply(resp *protocol.Response) *protocol.Prepared {
	resp.ServerTime = c.hub.cfg.Now().UnixMilli()
	p, err := c.hub.codec.Prepare(protocol.AppendResponse(nil, resp))
	if err == nil {
		return p
	}
	c.hub.log.Warn("realtime: cannot encode a response", "err", err)
	code := protocol.CodeOf(err)
	p, err = c.hub.codec.Prepare(protocol.AppendResponse(nil, &protocol.Response{
		Seq: resp.Seq, RequestID: resp.RequestID, Code: code, Message: "realtime: reply could not be encoded: " + code.String(), ServerTime: resp.ServerTime,
	}))
	if err != nil {
		return nil
	}
	return p
}

// sendWait queues a frame, waiting for room (the reader goroutine's own
// replies and resent history: only this connection waits).
func (c *conn) sendWait(ctx context.Context, p *protocol.Prepared) {
	if c.closed.Load() {
		return
	}
	if c.claimInline(p) {
		c.sendInline(p)
		return
	}
	c.kick() // a full queue needs its writer running
	select {
	case c.queue() <- p:
		c.hub.stats.delivered.Add(1)
		c.kick()
	case <-ctx.Done():
		c.slow()
	case <-c.closing:
	}
}

// servesItself reports whether the hub answers cmd itself (route, or
// subscribe) rather than passing it to Config.Handler, whose chain checks
// an authenticated frame's counter in the session store (session.Middleware).
// Keep it in step with route.
func (c *conn) servesItself(cmd string) bool {
	switch cmd {
	case CmdSubscribe, CmdUnsubscribe, CmdPublish, CmdWhisper, CmdHistory, CmdPresence:
		return true
	case CmdRoomCreate, CmdRoomJoin, CmdRoomInput, CmdRoomLeave, CmdRoomMatch:
		if c.hub.rooms.Load() != nil {
			return true
		}
	}
	return c.hub.cfg.Handler == nil
}

// acceptCounter accepts an authenticated frame's counter in the session
// store, as session.Middleware does for the commands of Config.Handler: the
// counter belongs to the session, so a frame captured on one connection is
// refused (replayed) on every other connection and over HTTP, whichever
// saw it first. It also refuses the frames of a session that has ended.
// One store round trip (Store.GetFrame).
func (c *conn) acceptCounter(ctx context.Context, counter uint64) error {
	_, err := c.hub.store.GetFrame(ctx, c.sess.ID, counter)
	if err == nil {
		return nil
	}
	code := protocol.CodeOf(err)
	if code == protocol.CodeUnavailable || code == protocol.CodeInternal {
		c.hub.log.Warn("realtime: frame counter check failed", "err", err)
	}
	msg := code.String()
	if errors.Is(err, protocol.ErrReplayed) {
		msg = protocol.ErrReplayed.Message
	}
	return &protocol.Error{Code: code, Message: msg, Err: err}
}

// route serves every command but rt.subscribe.
// classifiedRoute is route with backend errors classified (a Redis or
// database outage is unavailable, not internal), whatever returned them:
// the hub's own commands or Config.Handler.
func (c *conn) classifiedRoute(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
	resp, err := c.route(ctx, req)
	return resp, backend.Classify(err)
}

func (c *conn) route(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
	switch req.Command {
	case CmdUnsubscribe:
		return c.unsubscribe(ctx, req)
	case CmdPublish:
		return c.publish(ctx, req)
	case CmdWhisper:
		return c.whisper(ctx, req)
	case CmdHistory:
		return c.history(ctx, req)
	case CmdRoomCreate, CmdRoomJoin, CmdRoomInput, CmdRoomLeave, CmdRoomMatch:
		if r := c.hub.rooms.Load(); r != nil {
			return r.serve(ctx, c, req)
		}
	case CmdPresence:
		return c.presenceCount(ctx, req)
	}
	if c.hub.cfg.Handler == nil {
		return nil, &protocol.Error{Code: protocol.CodeUnknownCommand, Message: "unknown command"}
	}
	return c.hub.cfg.Handler.Serve(ctx, req)
}

func badRequest(format string, a ...any) error {
	return &protocol.Error{Code: protocol.CodeBadRequest, Message: fmt.Sprintf(format, a...)}
}

var (
	errForbidden = &protocol.Error{Code: protocol.CodeForbidden, Message: "realtime: not allowed on this channel"}
	errNotMember = &protocol.Error{Code: protocol.CodeNotMember, Message: "realtime: not subscribed to the channel"}
)

func decodeArgs(req *protocol.Request, v any) error {
	if len(req.Payload) == 0 {
		return badRequest("realtime: %s needs a payload", req.Command)
	}
	if err := json.Unmarshal(req.Payload, v); err != nil {
		return badRequest("realtime: %s: invalid payload: %v", req.Command, err)
	}
	return nil
}

// checkChannel applies the channel rules for a client action.
func (c *conn) checkChannel(ctx context.Context, ch string, a Action) error {
	if !validChannel(ch) {
		return badRequest("realtime: invalid channel name")
	}
	if isRoomChannel(ch) { // members only, through room.join
		return errForbidden
	}
	switch KindOf(ch) {
	case KindWorld:
		if _, ok := worldIndex(ch, c.hub.cfg.MaxWorldPartitions); !ok {
			return badRequest("realtime: no such world partition")
		}
		return nil
	case KindUser:
		if a == ActionHistory && ch == c.userSub.channel {
			return nil
		}
		return errForbidden
	case KindSystem:
		if a == ActionPublish {
			return errForbidden
		}
		return nil
	}
	if c.hub.cfg.Authorize == nil {
		return errForbidden
	}
	return c.hub.cfg.Authorize(ctx, c.principal, ch, a)
}

type posJSON struct {
	Channel string `json:"ch,omitempty"`
	Offset  uint64 `json:"offset"`
	Epoch   string `json:"epoch,omitempty"`
}

func (c *conn) subscribe(ctx context.Context, req *protocol.Request) error {
	h := c.hub
	var in struct {
		Ch    string          `json:"ch"`
		Since *StreamPosition `json:"since"`
	}
	if err := decodeArgs(req, &in); err != nil {
		return err
	}
	ch := in.Ch
	if ch == ChannelWorld {
		n, ok := h.pickWorld(ctx)
		if !ok {
			return &protocol.Error{Code: protocol.CodeUnavailable, Message: "realtime: world chat is full"}
		}
		ch = WorldChannel(n)
	}
	if err := c.checkChannel(ctx, ch, ActionSubscribe); err != nil {
		return err
	}
	c.subsMu.Lock()
	defer c.subsMu.Unlock()
	if c.subs == nil {
		return ErrClosed
	}
	if c.subs[ch] != nil {
		return badRequest("realtime: already subscribed to %q", ch)
	}
	if len(c.subs) >= h.cfg.MaxChannels {
		return badRequest("realtime: at most %d channels per connection", h.cfg.MaxChannels)
	}
	sb := &sub{c: c, channel: ch}
	sb.recovering.Store(true)
	if err := h.addSub(ctx, sb); err != nil {
		return err
	}
	var since StreamPosition
	limit := 0
	if in.Since != nil && in.Since.Offset > 0 {
		since, limit = *in.Since, h.cfg.HistoryLimit
	}
	res, err := h.broker.History(ctx, ch, since, limit)
	if err == nil && limit > 0 && res.Position.Offset-since.Offset > uint64(limit) {
		err = fmt.Errorf("%w: %d publications missed, at most %d are resent", ErrPositionLost, res.Position.Offset-since.Offset, limit)
	}
	if err != nil {
		h.removeSub(sb)
		return fmt.Errorf("realtime: subscribe %q: %w", ch, err)
	}
	c.subs[ch] = sb
	h.notePosition(ch, res.Position)
	h.touchConnLocked(c)
	payload, _ := json.Marshal(posJSON{Channel: ch, Offset: res.Position.Offset, Epoch: res.Position.Epoch})
	if p := c.prepareReply(&protocol.Response{Seq: req.Seq, RequestID: req.RequestID, Payload: payload}); p != nil {
		c.sendWait(ctx, p)
	}
	last := res.Position.Offset
	var body []byte
	for i := range res.Publications {
		p := &res.Publications[i]
		prep, err := c.prepareFor(&body, p)
		if err != nil || prep == nil {
			continue
		}
		c.sendWait(ctx, prep)
	}
	sb.mu.Lock()
	for _, m := range sb.buf {
		if m.offset != 0 && m.epoch == res.Position.Epoch && m.offset <= last {
			continue // already in the history sent, or before the reply's position
		}
		c.send(m.prep)
	}
	sb.buf = nil
	sb.sentEpoch = res.Position.Epoch
	sb.sentUpTo.Store(last)
	sb.recovering.Store(false)
	sb.mu.Unlock()
	return nil
}

// prepareFor turns a kept publication into a frame for this connection (nil
// when a broadcast filter excludes it).
func (c *conn) prepareFor(body *[]byte, p *Publication) (*protocol.Prepared, error) {
	var m message
	if err := parseMessage(p.Data, &m); err != nil {
		return nil, err
	}
	if m.hasFilter && !matchFilter(&m.filter, c.principal) {
		return nil, nil
	}
	var err error
	if *body, err = c.hub.pushBody((*body)[:0], p, &m); err != nil {
		return nil, err
	}
	return c.hub.codec.Prepare(*body)
}

func (c *conn) unsubscribe(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
	var in struct {
		Ch string `json:"ch"`
	}
	if err := decodeArgs(req, &in); err != nil {
		return nil, err
	}
	c.subsMu.Lock()
	sb := c.subs[in.Ch]
	delete(c.subs, in.Ch)
	c.subsMu.Unlock()
	if sb == nil {
		return nil, errNotMember
	}
	c.hub.removeSub(sb)
	c.hub.presenceLeave(ctx, c, in.Ch)
	return nil, nil
}

// ChatPush is the payload of the pushes TopicChat (a publication on a
// channel, from rt.publish) and TopicWhisper (a private message, from
// rt.whisper): {"from": userKey, "data": ...}. The hub marshals this type
// itself, so a Go client that unmarshals a push's Payload into it reads
// what the hub sent (docs/PROTOCOL.md §16.3).
type ChatPush struct {
	// From is the sender's user key.
	From int64 `json:"from"`
	// Data is the message as the sender published it (after
	// Config.Validate, which may have rewritten it): any JSON value.
	Data json.RawMessage `json:"data"`
}

// chatCheck applies the size limit, the user's chat rate and Validate.
func (c *conn) chatCheck(ctx context.Context, m *ChatMessage) error {
	h := c.hub
	if len(m.Data) == 0 {
		return badRequest("realtime: empty message")
	}
	if len(m.Data) > h.cfg.MaxMessageSize {
		return &protocol.Error{Code: protocol.CodeTooLarge, Message: "realtime: message over " + strconv.Itoa(h.cfg.MaxMessageSize) + " bytes"}
	}
	if err := h.chatAllow(ctx, c.sess.UserKey); err != nil {
		return err
	}
	if h.cfg.Validate != nil {
		if err := h.cfg.Validate(ctx, m); err != nil {
			return err
		}
		if len(m.Data) == 0 || !json.Valid(m.Data) {
			return badRequest("realtime: message refused")
		}
	}
	return nil
}

func (c *conn) publish(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
	var in struct {
		Ch   string          `json:"ch"`
		Data json.RawMessage `json:"data"`
	}
	if err := decodeArgs(req, &in); err != nil {
		return nil, err
	}
	if err := c.checkChannel(ctx, in.Ch, ActionPublish); err != nil {
		return nil, err
	}
	c.subsMu.Lock()
	member := c.subs[in.Ch] != nil
	c.subsMu.Unlock()
	if !member {
		return nil, errNotMember
	}
	m := ChatMessage{Principal: req.Principal, Channel: in.Ch, Data: in.Data}
	if err := c.chatCheck(ctx, &m); err != nil {
		return nil, err
	}
	payload, err := json.Marshal(ChatPush{From: c.sess.UserKey, Data: m.Data})
	if err != nil {
		return nil, badRequest("realtime: message is not JSON")
	}
	pos, err := c.hub.publish(ctx, in.Ch, TopicChat, nil, payload)
	if err != nil {
		return nil, err
	}
	out, _ := json.Marshal(posJSON{Offset: pos.Offset, Epoch: pos.Epoch})
	return &protocol.Response{Payload: out}, nil
}

func (c *conn) whisper(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
	var in struct {
		To   int64           `json:"to"`
		Data json.RawMessage `json:"data"`
	}
	if err := decodeArgs(req, &in); err != nil {
		return nil, err
	}
	if in.To <= 0 {
		return nil, badRequest("realtime: whisper needs a user key in \"to\"")
	}
	m := ChatMessage{Principal: req.Principal, Channel: UserChannel(in.To), To: in.To, Data: in.Data}
	if err := c.chatCheck(ctx, &m); err != nil {
		return nil, err
	}
	payload, err := json.Marshal(ChatPush{From: c.sess.UserKey, Data: m.Data})
	if err != nil {
		return nil, badRequest("realtime: message is not JSON")
	}
	if _, err := c.hub.publish(ctx, m.Channel, TopicWhisper, nil, payload); err != nil {
		return nil, err
	}
	return nil, nil
}

func (c *conn) history(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
	h := c.hub
	var in struct {
		Ch    string         `json:"ch"`
		Since StreamPosition `json:"since"`
		Limit int            `json:"limit"`
	}
	if err := decodeArgs(req, &in); err != nil {
		return nil, err
	}
	if err := c.checkChannel(ctx, in.Ch, ActionHistory); err != nil {
		return nil, err
	}
	if KindOf(in.Ch) != KindUser {
		c.subsMu.Lock()
		member := c.subs[in.Ch] != nil
		c.subsMu.Unlock()
		if !member {
			return nil, errNotMember
		}
	}
	if in.Limit <= 0 || in.Limit > h.cfg.HistoryLimit {
		in.Limit = h.cfg.HistoryLimit
	}
	res, err := h.broker.History(ctx, in.Ch, in.Since, in.Limit)
	if err != nil {
		return nil, fmt.Errorf("realtime: history of %q: %w", in.Ch, err)
	}
	out := []byte(`{"pubs":[`)
	n := 0
	for i := range res.Publications {
		p := &res.Publications[i]
		var m message
		if parseMessage(p.Data, &m) != nil || (m.hasFilter && !matchFilter(&m.filter, c.principal)) {
			continue
		}
		if n > 0 {
			out = append(out, ',')
		}
		if out, err = h.pushBody(out, p, &m); err != nil {
			return nil, err
		}
		n++
	}
	out = append(out, `],"offset":`...)
	out = strconv.AppendUint(out, res.Position.Offset, 10)
	epoch, _ := json.Marshal(res.Position.Epoch)
	out = append(out, `,"epoch":`...)
	out = append(out, epoch...)
	out = append(out, '}')
	return &protocol.Response{Payload: out}, nil
}
