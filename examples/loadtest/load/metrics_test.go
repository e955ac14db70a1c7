package load

import (
	"strings"
	"testing"
)

const promSample = `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 42
# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.5
process_resident_memory_bytes{instance="a b}"} 1.5e+07 1700000000000
process_resident_memory_bytes 3.2e+07
madang_requests_total{cmd="shop.buy",code="ok"} 7
`

func TestParseMetrics(t *testing.T) {
	got, err := ParseMetrics(strings.NewReader(promSample), MetricRSS, MetricCPU, MetricGoroutines, "absent_metric")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{MetricRSS: 3.2e7, MetricCPU: 12.5, MetricGoroutines: 42}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	// Only a labelled sample: it is taken.
	got, err = ParseMetrics(strings.NewReader(`go_goroutines{pod="x"} 7`+"\n"), MetricGoroutines)
	if err != nil || got[MetricGoroutines] != 7 {
		t.Fatalf("labelled only: %v %v", got, err)
	}
	for _, bad := range []string{
		"go_goroutines\n", "go_goroutines abc\n", "go_goroutines{a=\"b\" 3\n", "go_goroutines 1 2 3\n",
		"go_goroutines " + strings.Repeat("9", MaxMetricsLine) + "\n",
	} {
		if _, err := ParseMetrics(strings.NewReader(bad), MetricGoroutines); err == nil {
			t.Errorf("%.40q accepted", bad)
		}
	}
	// A malformed line of a metric not asked for is skipped.
	if _, err := ParseMetrics(strings.NewReader("other_metric abc\n"), MetricGoroutines); err != nil {
		t.Errorf("unwanted malformed line: %v", err)
	}
}

func FuzzParseMetrics(f *testing.F) {
	f.Add(promSample)
	f.Add("go_goroutines{a=\"}\"} NaN\n")
	f.Add("process_cpu_seconds_total +Inf 1\n#\n\n")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseMetrics(strings.NewReader(s), MetricRSS, MetricCPU, MetricGoroutines)
		if err != nil {
			return
		}
		for k := range got {
			if k != MetricRSS && k != MetricCPU && k != MetricGoroutines {
				t.Fatalf("unasked metric %q returned", k)
			}
		}
	})
}

func TestParseProcStat(t *testing.T) {
	// Fields after the command: state ppid pgrp session tty tpgid flags
	// minflt cminflt majflt cmajflt utime stime ...
	line := "1234 (game server) (x)) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 130 0 0 20 0 9 0 100 0 0"
	if got := parseProcStat(line); got != 3.8 {
		t.Fatalf("cpu %v, want 3.8", got)
	}
	for _, bad := range []string{"", "1234 no parens", "1 (x) S 1 2 3", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 zz 1"} {
		if got := parseProcStat(bad); got != -1 {
			t.Errorf("%q: %v, want -1", bad, got)
		}
	}
}
