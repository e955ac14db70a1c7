package load

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/madang-io/madang/protocol"
)

// Recorder collects the outcome of every command: totals per command, and a
// time series with one point per second of the run. It is safe for
// concurrent use.
type Recorder struct {
	mu      sync.Mutex
	start   time.Time
	cmds    map[string]*cmdTotals
	windows map[int]*window // open seconds, by second index
	series  []Point         // closed seconds, in order
	calls   uint64
	errors  uint64
	from    time.Time // calls completing before it are not in the totals
}

// CountFrom leaves the calls that complete before t out of the totals
// (Counts, Totals); they stay in the per-second series.
func (r *Recorder) CountFrom(t time.Time) {
	r.mu.Lock()
	r.from = t
	r.mu.Unlock()
}

type cmdTotals struct {
	hist    Histogram
	errors  map[string]uint64
	replays uint64
	tries   Attempts
}

// Attempts is what the requests of calls met on the wire: how many were
// sent (first sends and re-sends) and how many of them the server refused
// without running them, and how many of the calls it answered.
type Attempts struct {
	// Sent counts the HTTP requests of the calls, first sends and re-sends
	// (0 for calls not sent over HTTP, such as websocket commands).
	Sent uint64
	// Resent counts the requests after each call's first.
	Resent uint64
	// Refused counts the requests the server answered HTTP 503
	// (unavailable: no turn at the door within its wait, or a backend
	// down) or 429 (rate_limited): nothing ran, and the client re-sent
	// the request after its retry hint or gave the call up.
	Refused uint64
	// Answered counts calls that ended with an answer of the server that
	// ran them: OK (AnswerError included) or a code that is not retryable.
	// A call that ended refused, timed out or lost is not answered.
	Answered uint64
}

func (a *Attempts) add(b Attempts) {
	a.Sent += b.Sent
	a.Resent += b.Resent
	a.Refused += b.Refused
	a.Answered += b.Answered
}

// Answered reports whether a call whose outcome is err was answered by a
// server that ran it: err is nil, an AnswerError (an OK answer the
// scenario found wrong), or a protocol error whose code is not retryable.
// Refusals (unavailable, rate_limited, in_flight), timeouts and lost
// replies are not answers.
func Answered(err error) bool {
	var ae *AnswerError
	var pe *protocol.Error
	switch {
	case err == nil, errors.As(err, &ae):
		return true
	case errors.As(err, &pe):
		return !pe.Code.Retryable()
	}
	return false
}

// window accumulates one second.
type window struct {
	hist     Histogram // every command, errors included
	errors   uint64
	answered uint64
	cmds     map[string]*Histogram
}

// NewRecorder returns a Recorder whose second 0 starts at start.
func NewRecorder(start time.Time) *Recorder {
	return &Recorder{start: start, cmds: map[string]*cmdTotals{}, windows: map[int]*window{}}
}

// Record adds one call of cmd that completed at end after taking d; err is
// its outcome (nil: success) and replay whether the server answered with a
// stored result for a retry.
func (r *Recorder) Record(cmd string, end time.Time, d time.Duration, err error, replay bool) {
	r.RecordAttempts(cmd, end, d, err, replay, 0, 0)
}

// RecordAttempts is Record for a call whose requests were counted on the
// wire: sent requests (first send and re-sends) of which refused were
// answered HTTP 503 or 429 (see Attempts).
func (r *Recorder) RecordAttempts(cmd string, end time.Time, d time.Duration, err error, replay bool, sent, refused uint64) {
	v := micros(d)
	tries := Attempts{Sent: sent, Refused: refused}
	if sent > 1 {
		tries.Resent = sent - 1
	}
	if Answered(err) {
		tries.Answered = 1
	}
	sec := max(int(end.Sub(r.start)/time.Second), 0)
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.cmds[cmd]
	if t == nil {
		t = &cmdTotals{errors: map[string]uint64{}}
		r.cmds[cmd] = t
	}
	counted := !end.Before(r.from)
	if counted {
		t.hist.RecordMicros(v)
		t.tries.add(tries)
		if replay {
			t.replays++
		}
	}
	if len(r.series) > sec {
		sec = len(r.series) // a second already closed: count it in the first open one
	}
	w := r.windows[sec]
	if w == nil {
		w = &window{cmds: map[string]*Histogram{}}
		r.windows[sec] = w
	}
	w.hist.RecordMicros(v)
	h := w.cmds[cmd]
	if h == nil {
		h = new(Histogram)
		w.cmds[cmd] = h
	}
	h.RecordMicros(v)
	w.answered += tries.Answered
	if err != nil {
		w.errors++
	}
	if !counted {
		return
	}
	r.calls++
	if err != nil {
		t.errors[ErrorKind(err)]++
		r.errors++
	}
}

// ErrorKind names an error for the error tables: the protocol result code's
// name for an answer of the server ("unauthorized", "game_1001", ...) or
// another error that carries a code (a protocol.Coder, such as a websocket
// handshake the server refused: realtime.HandshakeError), "transport"
// or "http_<status>" for a lost reply, "timeout" when the request's
// deadline passed, "bad_answer" for an OK answer that the scenario found
// wrong (AnswerError), else "client".
func ErrorKind(err error) string {
	var pe *protocol.Error
	var ce protocol.Coder
	var te *protocol.TransportError
	var ae *AnswerError
	switch {
	case errors.As(err, &ae):
		return "bad_answer"
	case errors.As(err, &pe):
		return pe.Code.String()
	case errors.As(err, &te):
		if te.Status != 0 {
			return "http_" + strconv.Itoa(te.Status)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return "timeout"
		}
		return "transport"
	case errors.As(err, &ce):
		return ce.ResultCode().String()
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	return "client"
}

// Point is one second of the run.
type Point struct {
	// Second is the second's index from the start of the run (0-based).
	Second int `json:"second"`
	// Requests is how many calls completed in this second.
	Requests uint64 `json:"requests"`
	// SpanS is the length of the second in seconds: 1, except for the last
	// one of a run, cut short when the run ended.
	SpanS float64 `json:"span_s"`
	// TPS is Requests per second of the span.
	TPS float64 `json:"tps"`
	// Errors is how many of them failed.
	Errors uint64 `json:"errors"`
	// Answered is how many of them the server answered having run them
	// (Attempts.Answered).
	Answered uint64 `json:"answered"`
	// P50Ms, P99Ms and MaxMs are the latency of the calls that completed in
	// this second, in milliseconds (0 when there were none).
	P50Ms float64 `json:"p50_ms"`
	P99Ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
	// Commands counts the calls per command.
	Commands map[string]uint64 `json:"commands,omitempty"`
	// CommandP99Ms is the p99 latency of each command's calls in this
	// second, in milliseconds.
	CommandP99Ms map[string]float64 `json:"command_p99_ms,omitempty"`
	// Pushes is how many realtime pushes the users received in this second
	// (the Chat scenario's connections), PushesPerS the same per second of
	// the span. Not calls: not in Requests.
	Pushes     uint64  `json:"pushes,omitempty"`
	PushesPerS float64 `json:"pushes_per_s,omitempty"`
}

func ms(us uint64) float64 { return float64(us) / 1000 }

// Flush closes every second before upTo (a second index) into the time
// series, including seconds in which nothing completed, and returns the
// points it closed.
func (r *Recorder) Flush(upTo int) []Point {
	r.mu.Lock()
	defer r.mu.Unlock()
	first := len(r.series)
	for sec := first; sec < upTo; sec++ {
		p := Point{Second: sec, SpanS: 1}
		if w := r.windows[sec]; w != nil {
			p.Requests = w.hist.Count()
			p.TPS = float64(p.Requests)
			p.Errors = w.errors
			p.Answered = w.answered
			p.P50Ms = ms(w.hist.QuantileMicros(0.50))
			p.P99Ms = ms(w.hist.QuantileMicros(0.99))
			p.MaxMs = ms(w.hist.max)
			p.Commands = make(map[string]uint64, len(w.cmds))
			p.CommandP99Ms = make(map[string]float64, len(w.cmds))
			for cmd, h := range w.cmds {
				p.Commands[cmd] = h.Count()
				p.CommandP99Ms[cmd] = ms(h.QuantileMicros(0.99))
			}
			delete(r.windows, sec)
		}
		r.series = append(r.series, p)
	}
	return slices.Clone(r.series[min(first, len(r.series)):])
}

// FlushAll closes every second up to end, the end of the run, and returns
// the whole series. The last second is cut at end: its SpanS is shorter and
// its TPS scaled to it.
func (r *Recorder) FlushAll(end time.Time) []Point {
	r.mu.Lock()
	last := int(end.Sub(r.start) / time.Second)
	for sec := range r.windows {
		last = max(last, sec)
	}
	r.mu.Unlock()
	r.Flush(last + 1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.series); n > 0 {
		p := &r.series[n-1]
		span := end.Sub(r.start).Seconds() - float64(p.Second)
		if span > 0 && span < 1 {
			p.SpanS = span
			p.TPS = float64(p.Requests) / span
		}
	}
	return slices.Clone(r.series)
}

// Counts returns the calls recorded so far and how many of them failed.
func (r *Recorder) Counts() (calls, errors uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls, r.errors
}

// CommandStats summarises one command over the whole run.
type CommandStats struct {
	Command string `json:"command"`
	Count   uint64 `json:"count"`
	// TPS is Count over the run's elapsed time.
	TPS float64 `json:"tps"`
	// Errors counts failed calls; ErrorsByCode splits them by ErrorKind.
	Errors       uint64            `json:"errors"`
	ErrorPct     float64           `json:"error_pct"`
	ErrorsByCode map[string]uint64 `json:"errors_by_code,omitempty"`
	// Replays counts calls the server answered with the stored result of an
	// earlier attempt (the reply to that attempt was lost and the client
	// re-sent the same request id).
	Replays uint64 `json:"replays,omitempty"`
	// Answered counts the calls the server answered having run them (OK
	// or a code that is not retryable: Attempts.Answered), AnsweredTPS
	// the same over the run's elapsed time: the throughput. Sent counts
	// the HTTP requests (first sends and re-sends), Resent the re-sends
	// among them, Refused those the server refused without running them
	// (HTTP 503 or 429).
	Answered    uint64  `json:"answered"`
	AnsweredTPS float64 `json:"answered_tps"`
	Sent        uint64  `json:"sent,omitempty"`
	Resent      uint64  `json:"resent,omitempty"`
	Refused     uint64  `json:"refused,omitempty"`
	// Latency in milliseconds, from the first send to the final answer
	// (retries included), as the player would wait.
	MeanMs float64 `json:"mean_ms"`
	P50Ms  float64 `json:"p50_ms"`
	P95Ms  float64 `json:"p95_ms"`
	P99Ms  float64 `json:"p99_ms"`
	MaxMs  float64 `json:"max_ms"`
}

// Totals returns the per-command statistics sorted by command, and the
// same over all commands (Command "total"), for a run of elapsed.
func (r *Recorder) Totals(elapsed time.Duration) (per []CommandStats, all CommandStats) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var sum Histogram
	allErr := map[string]uint64{}
	var replays uint64
	var tries Attempts
	for _, name := range slices.Sorted(maps.Keys(r.cmds)) {
		t := r.cmds[name]
		per = append(per, stats(name, &t.hist, t.errors, t.replays, t.tries, elapsed))
		sum.Merge(&t.hist)
		tries.add(t.tries)
		for k, v := range t.errors {
			allErr[k] += v
		}
		replays += t.replays
	}
	return per, stats("total", &sum, allErr, replays, tries, elapsed)
}

func stats(name string, h *Histogram, errs map[string]uint64, replays uint64, tries Attempts, elapsed time.Duration) CommandStats {
	s := CommandStats{
		Command: name, Count: h.Count(), Replays: replays,
		Answered: tries.Answered, Sent: tries.Sent, Resent: tries.Resent, Refused: tries.Refused,
		MeanMs: ms(micros(h.Mean())),
		P50Ms:  ms(h.QuantileMicros(0.50)), P95Ms: ms(h.QuantileMicros(0.95)),
		P99Ms: ms(h.QuantileMicros(0.99)), MaxMs: ms(h.max),
	}
	if len(errs) > 0 {
		s.ErrorsByCode = maps.Clone(errs)
	}
	for _, v := range errs {
		s.Errors += v
	}
	if s.Count > 0 {
		s.ErrorPct = 100 * float64(s.Errors) / float64(s.Count)
	}
	if elapsed > 0 {
		s.TPS = float64(s.Count) / elapsed.Seconds()
		s.AnsweredTPS = float64(s.Answered) / elapsed.Seconds()
	}
	return s
}
