package load

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/realtime"
)

func TestRecorderSeries(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := NewRecorder(t0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	r.Record("a", at(0.2), 2*time.Millisecond, nil, false)
	r.Record("b", at(0.7), 4*time.Millisecond, protocol.Errorf(protocol.CodeKicked, "k"), false)
	r.Record("a", at(2.5), 8*time.Millisecond, nil, true) // second 1 stays empty
	pts := r.Flush(2)
	if len(pts) != 2 || pts[0].Requests != 2 || pts[0].Errors != 1 || pts[0].P99Ms != 4 || pts[1].Requests != 0 || pts[1].SpanS != 1 {
		t.Fatalf("first flush: %+v", pts)
	}
	// A call that ended in a second already closed counts in the first
	// open one.
	r.Record("a", at(1.9), time.Millisecond, errors.New("x"), false)
	all := r.FlushAll(at(3.25))
	if len(all) != 4 {
		t.Fatalf("series %+v", all)
	}
	if p := all[2]; p.Requests != 2 || p.Errors != 1 || p.Commands["a"] != 2 || p.TPS != 2 {
		t.Fatalf("second 2: %+v", p)
	}
	if p := all[3]; p.Requests != 0 || p.SpanS != 0.25 {
		t.Fatalf("last second: %+v", p)
	}
	per, total := r.Totals(4 * time.Second)
	if len(per) != 2 || per[0].Command != "a" || per[0].Count != 3 || per[0].Replays != 1 || per[0].ErrorsByCode["client"] != 1 ||
		per[1].ErrorsByCode["kicked"] != 1 || total.Count != 4 || total.Errors != 2 || total.TPS != 1 || total.ErrorPct != 50 || total.MaxMs != 8 {
		t.Fatalf("totals %+v %+v", per, total)
	}
	if calls, errs := r.Counts(); calls != 4 || errs != 2 {
		t.Fatalf("counts %d %d", calls, errs)
	}
}

func TestErrorKindHandshake(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&realtime.HandshakeError{Status: 401, Code: protocol.CodeUnauthorized}, "unauthorized"},
		{fmt.Errorf("dial: %w", &realtime.HandshakeError{Status: 403, Code: protocol.CodeKicked}), "kicked"},
		{&realtime.HandshakeError{Status: 503}, "unavailable"}, // no code named: by status
		{&protocol.TransportError{Status: 404, Err: &realtime.HandshakeError{Status: 404}}, "http_404"},
		{&protocol.TransportError{Err: errors.New("connection refused")}, "transport"},
	} {
		if got := ErrorKind(tc.err); got != tc.want {
			t.Errorf("ErrorKind(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestAnsweredAndAttempts(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, true},
		{&AnswerError{Command: "c", Err: errors.New("wrong")}, true},
		{protocol.Errorf(protocol.CodeKicked, "k"), true},
		{protocol.Errorf(protocol.CodeUnavailable, "busy"), false},
		{protocol.Errorf(protocol.CodeRateLimited, "slow down"), false},
		{&protocol.TransportError{Status: 502}, false},
		{context.DeadlineExceeded, false},
	} {
		if got := Answered(tc.err); got != tc.want {
			t.Errorf("Answered(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
	t0 := time.Unix(1000, 0)
	r := NewRecorder(t0)
	r.CountFrom(t0.Add(time.Second))
	r.RecordAttempts("a", t0.Add(500*time.Millisecond), time.Millisecond, nil, false, 1, 0) // warm-up: series only
	r.RecordAttempts("a", t0.Add(1500*time.Millisecond), time.Millisecond, nil, false, 3, 2)
	r.RecordAttempts("a", t0.Add(1600*time.Millisecond), time.Millisecond, protocol.Errorf(protocol.CodeUnavailable, "busy"), false, 3, 3)
	_, tot := r.Totals(2 * time.Second)
	if tot.Count != 2 || tot.Answered != 1 || tot.Sent != 6 || tot.Resent != 4 || tot.Refused != 5 || tot.AnsweredTPS != 0.5 || tot.Errors != 1 {
		t.Fatalf("totals %+v", tot)
	}
	pts := r.FlushAll(t0.Add(1900 * time.Millisecond))
	if len(pts) != 2 || pts[0].Requests != 1 || pts[0].Answered != 1 || pts[1].Requests != 2 || pts[1].Answered != 1 || pts[1].Errors != 1 {
		t.Fatalf("series %+v", pts)
	}
	if calls, errs := r.Counts(); calls != 2 || errs != 1 {
		t.Fatalf("counts %d %d", calls, errs)
	}
}
