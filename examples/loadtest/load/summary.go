package load

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
)

// WriteSummary writes the run's summary: what ran, the calls answered
// (throughput: answered calls per second; server CPU per answered call)
// and the requests re-sent and refused, then a table with one row
// per command (count, TPS, error %, p50, p95, p99, max) and a total row,
// then the errors by result code, and the realtime pushes when the Chat
// scenario ran.
func WriteSummary(w io.Writer, r *Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "target    %s (%s frames)\n", r.Target, r.Mode)
	fmt.Fprintf(&b, "scenario  %s, %d users, ramp-up %gs, think %s\n", r.Scenario, r.Users, r.RampUpS, thinkText(r))
	fmt.Fprintf(&b, "ran       %.1fs, %d iterations, stopped by %s (limits %gs, %d iterations)\n",
		r.ElapsedS, r.Iterations, r.StopReason, r.DurationS, r.IterLimit)
	if r.WarmupS > 0 {
		fmt.Fprintf(&b, "counted   the last %.1fs: calls that completed after a warm-up of %gs\n", r.CountedS, r.WarmupS)
	}
	fmt.Fprintf(&b, "cpu       generator %.2fs", r.GeneratorCPUS)
	if r.ServerCPUS >= 0 {
		fmt.Fprintf(&b, ", server %.2fs (%.0f µs per answered call)", r.ServerCPUS, perCallMicros(r.ServerCPUS, r.Total.Answered))
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "answered  %d of %d calls, %.1f/s", r.Total.Answered, r.Total.Count, r.Total.AnsweredTPS)
	if r.Total.Sent > 0 {
		fmt.Fprintf(&b, "; %d requests sent, %d re-sent, %d refused (HTTP 503/429)", r.Total.Sent, r.Total.Resent, r.Total.Refused)
	}
	b.WriteString("\n")
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note      %s\n", n)
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	rows := append(slices.Clone(r.Commands), r.Total)
	width := len("command")
	for _, c := range rows {
		width = max(width, len(c.Command))
	}
	fmt.Fprintf(tw, "%-*s\tcount\tanswered/s\trefused\terror %%\tp50\tp95\tp99\tmax\t\n", width, "command")
	for _, c := range rows {
		fmt.Fprintf(tw, "%-*s\t%d\t%.1f\t%d\t%.2f\t%s\t%s\t%s\t%s\t\n", width, c.Command, c.Count, c.AnsweredTPS, c.Refused, c.ErrorPct,
			fmtMs(c.P50Ms), fmtMs(c.P95Ms), fmtMs(c.P99Ms), fmtMs(c.MaxMs))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, c := range r.Commands {
		if len(c.ErrorsByCode) == 0 {
			continue
		}
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(c.ErrorsByCode)) {
			parts = append(parts, fmt.Sprintf("%s %d", k, c.ErrorsByCode[k]))
		}
		fmt.Fprintf(&b, "errors of %s: %s\n", c.Command, strings.Join(parts, ", "))
	}
	if rt := r.Realtime; rt != nil {
		fmt.Fprintf(&b, "realtime  %s (%s frames), %d rooms, %d connections", rt.URL, rt.FrameMode(), rt.Rooms, rt.Connects)
		if rt.DevLogin {
			b.WriteString(" (tokens from /dev/login)")
		}
		if len(rt.Drops) > 0 {
			var parts []string
			for _, k := range slices.Sorted(maps.Keys(rt.Drops)) {
				parts = append(parts, fmt.Sprintf("%s %d", k, rt.Drops[k]))
			}
			fmt.Fprintf(&b, ", closed by the server: %s", strings.Join(parts, ", "))
		}
		fmt.Fprintf(&b, "\npushes    %d (%.1f/s): %d own chat back, %d chat of others, %d whispers, %d other\n",
			rt.Pushes, rt.PushesPerS, rt.Echoes, rt.Chat, rt.Whispers, rt.Other)
		fmt.Fprintf(&b, "delivery  p50 %s, p99 %s, max %s (send to arrival, every chat push and whisper received)\n",
			fmtMs(rt.DeliveryP50Ms), fmtMs(rt.DeliveryP99Ms), fmtMs(rt.DeliveryMaxMs))
	}
	if r.Total.Replays > 0 {
		fmt.Fprintf(&b, "replays (a retry answered from the idempotency record): %d\n", r.Total.Replays)
	}
	if len(r.Samples) > 0 || r.SampleErrors > 0 {
		fmt.Fprintf(&b, "server metrics: %d samples, %d failed", len(r.Samples), r.SampleErrors)
		if r.SampleProblem != "" {
			fmt.Fprintf(&b, " (last: %s)", r.SampleProblem)
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func thinkText(r *Report) string {
	switch {
	case r.ThinkMaxMs == 0:
		return "none"
	case r.ThinkMinMs == r.ThinkMaxMs:
		return fmtMs(r.ThinkMinMs)
	}
	return fmtMs(r.ThinkMinMs) + "–" + fmtMs(r.ThinkMaxMs)
}

func perCallMicros(cpuS float64, calls uint64) float64 {
	if calls == 0 {
		return 0
	}
	return cpuS * 1e6 / float64(calls)
}
