package load

import (
	"context"
	"fmt"
	"time"
)

// progress closes each second of the series as it ends and prints the
// progress line, until ctx is done.
func (e *engine) progress(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			pts := e.rec.Flush(int(now.Sub(e.start) / time.Second))
			if e.cfg.Progress != nil && len(pts) > 0 {
				e.printProgress(pts, false)
			}
		}
	}
}

// printProgress prints the line for the last of pts: on a terminal it
// rewrites the line in place (and ends it when final), else it prints one
// line per call.
func (e *engine) printProgress(pts []Point, final bool) {
	w := e.cfg.Progress
	if final {
		if e.cfg.ProgressTTY {
			fmt.Fprintln(w)
		}
		return
	}
	p := pts[len(pts)-1]
	calls, errs := e.rec.Counts()
	line := fmt.Sprintf("%5ds  users %d/%d  iter %d  calls %d  tps %d  errors %d (total %d)  p50 %s  p99 %s",
		p.Second+1, e.active.Load(), e.cfg.Users, e.done.Load(), calls, p.Requests, p.Errors, errs,
		fmtMs(p.P50Ms), fmtMs(p.P99Ms))
	if e.rt.used.Load() {
		line += fmt.Sprintf("  pushes %d", e.rt.pushesIn(p.Second))
	}
	if e.cfg.ProgressTTY {
		fmt.Fprintf(w, "\r\033[K%s", line)
	} else {
		fmt.Fprintln(w, line)
	}
}

// fmtMs formats milliseconds for people: "0.42ms", "12.3ms", "1.25s".
func fmtMs(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.2fs", v/1000)
	case v >= 10:
		return fmt.Sprintf("%.1fms", v)
	default:
		return fmt.Sprintf("%.2fms", v)
	}
}
