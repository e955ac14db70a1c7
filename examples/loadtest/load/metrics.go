package load

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The metrics soak mode reads from the server's Prometheus endpoint.
const (
	MetricRSS        = "process_resident_memory_bytes"
	MetricCPU        = "process_cpu_seconds_total"
	MetricGoroutines = "go_goroutines"
)

// Limits of the metrics reader.
const (
	// MaxMetricsBody bounds how much of a metrics reply is read.
	MaxMetricsBody = 4 << 20
	// MaxMetricsLine bounds one line of it.
	MaxMetricsLine = 64 << 10
)

// Sample is one reading of the server's metrics; a metric the server does
// not publish is nil.
type Sample struct {
	// AtS is the time of the reading in seconds from the run's start.
	AtS        float64  `json:"at_s"`
	RSSBytes   *float64 `json:"rss_bytes,omitempty"`
	CPUSeconds *float64 `json:"cpu_s,omitempty"`
	Goroutines *float64 `json:"goroutines,omitempty"`
}

// ParseMetrics reads the Prometheus text exposition format from r and
// returns the value of each wanted metric found: the first sample without
// labels, else the first sample with labels. Comments and other metrics
// are skipped; a malformed line of a wanted metric is an error, as is a
// line longer than MaxMetricsLine.
func ParseMetrics(r io.Reader, wanted ...string) (map[string]float64, error) {
	want := map[string]bool{}
	for _, w := range wanted {
		want[w] = true
	}
	got := map[string]float64{}
	labelled := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), MaxMetricsLine)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		end := strings.IndexAny(line, "{ \t")
		if end < 0 {
			end = len(line)
		}
		name := line[:end]
		if !want[name] {
			continue
		}
		rest := line[end:]
		hasLabels := rest != "" && rest[0] == '{'
		if hasLabels {
			rb := strings.LastIndexByte(rest, '}')
			if rb < 0 {
				return nil, fmt.Errorf("load: metrics: %s: unterminated labels", name)
			}
			rest = rest[rb+1:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 || len(fields) > 2 {
			return nil, fmt.Errorf("load: metrics: %s: want a value and an optional timestamp", name)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("load: metrics: %s: %w", name, err)
		}
		if _, seen := got[name]; seen && (hasLabels || !labelled[name]) {
			continue // keep the first; an unlabelled sample replaces a labelled one
		}
		got[name] = v
		labelled[name] = hasLabels
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("load: metrics: %w", err)
	}
	return got, nil
}

// sampler reads a metrics endpoint periodically.
type sampler struct {
	url   string
	every time.Duration
	hc    *http.Client
	start time.Time

	mu      sync.Mutex
	samples []Sample
	errs    int
	lastErr string
}

func newSampler(url string, every time.Duration, hc *http.Client, start time.Time) *sampler {
	return &sampler{url: url, every: every, hc: hc, start: start}
}

// run samples at once, every period until ctx is done, and once more at the
// end (so the report covers the whole run).
func (s *sampler) run(ctx context.Context) {
	t := time.NewTicker(s.every)
	defer t.Stop()
	s.sample(ctx)
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			s.sample(final)
			cancel()
			return
		case <-t.C:
			s.sample(ctx)
		}
	}
}

func (s *sampler) sample(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, max(s.every, 2*time.Second))
	defer cancel()
	vals, err := s.fetch(ctx)
	at := time.Since(s.start).Seconds()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return
		}
		s.errs++
		s.lastErr = err.Error()
		return
	}
	smp := Sample{AtS: at}
	for name, dst := range map[string]**float64{MetricRSS: &smp.RSSBytes, MetricCPU: &smp.CPUSeconds, MetricGoroutines: &smp.Goroutines} {
		if v, ok := vals[name]; ok {
			*dst = &v
		}
	}
	s.samples = append(s.samples, smp)
}

func (s *sampler) fetch(ctx context.Context) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, fmt.Errorf("load: metrics: %s: HTTP %d", s.url, resp.StatusCode)
	}
	return ParseMetrics(io.LimitReader(resp.Body, MaxMetricsBody), MetricRSS, MetricCPU, MetricGoroutines)
}

// result returns the samples, the number of failed readings and the last
// failure.
func (s *sampler) result() ([]Sample, int, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.samples, s.errs, s.lastErr
}

// clockTicks is Linux's USER_HZ, the unit of /proc/<pid>/stat times: 100 on
// every architecture Go supports.
const clockTicks = 100

// parseProcStat returns utime+stime in seconds from the text of Linux's
// /proc/<pid>/stat, or -1. The command name (field 2) is in parentheses and
// may contain spaces and parentheses, so fields are counted after the last
// ')': state is the first of them, utime the 12th and stime the 13th.
func parseProcStat(s string) float64 {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return -1
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return float64(ut+st) / clockTicks
}

// ProcCPU returns the CPU time (user+system) of process pid in seconds,
// from /proc/<pid>/stat, as Config.ServerPID is read: -1 when pid is not
// positive, the file is unreadable, or the system is not Unix. Use it for
// processes beside the server, such as its database.
func ProcCPU(pid int) float64 { return serverCPU(pid) }
