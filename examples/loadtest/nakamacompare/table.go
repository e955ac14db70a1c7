package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// nakamaRef is Nakama 3's figure for one work of issue 17's table
// (PostgreSQL, the same 2-core machine and load generator, 3 rounds).
type nakamaRef struct {
	Rate  float64 // requests per second
	P99Ms float64 // 0: not recorded
}

// refs are Nakama's figures by scenario and client count.
var refs = map[string]map[int]nakamaRef{
	"login-new": {16: {Rate: 1589}, 64: {Rate: 1419}},
	"write":     {16: {Rate: 2080}, 64: {Rate: 2096, P99Ms: 66}},
}

// Nakama's CPU per request over its runs (server; PostgreSQL), in µs. The
// ratios are taken to the top of each range.
const (
	nakamaServerUsLo, nakamaServerUsHi = 430, 540
	nakamaDBUsLo, nakamaDBUsHi         = 280, 640
)

// figure is one row of a work's block: how to read it from a result and
// how it compares with Nakama's.
type figure struct {
	name string
	get  func(result) float64
	// sum: the rounds' total (errors), not their median.
	sum bool
	// nakama returns Nakama's figure for the work (0: none) and its text;
	// the ratios are the median over it.
	nakama func(scenario string, clients int) (float64, string)
	format string
}

var figures = []figure{
	{name: "req/s", get: func(r result) float64 { return r.Rate }, format: "%.0f",
		nakama: func(s string, c int) (float64, string) {
			n := refs[s][c].Rate
			return n, fmt.Sprintf("%.0f", n)
		}},
	{name: "all calls/s", get: func(r result) float64 { return r.CallsPerS }, format: "%.0f"},
	{name: "errors", get: func(r result) float64 { return float64(r.Errors) }, sum: true, format: "%.0f"},
	{name: "p50 ms", get: func(r result) float64 { return r.P50Ms }, format: "%.1f"},
	{name: "p99 ms", get: func(r result) float64 { return r.P99Ms }, format: "%.1f",
		nakama: func(s string, c int) (float64, string) {
			n := refs[s][c].P99Ms
			return n, fmt.Sprintf("%.0f", n)
		}},
	{name: "server µs/call", get: func(r result) float64 { return r.ServerUs }, format: "%.0f",
		nakama: func(string, int) (float64, string) {
			return nakamaServerUsHi, fmt.Sprintf("%d–%d", nakamaServerUsLo, nakamaServerUsHi)
		}},
	{name: "mariadb µs/call", get: func(r result) float64 { return r.MariaDBUs }, format: "%.0f",
		nakama: func(string, int) (float64, string) {
			return nakamaDBUsHi, fmt.Sprintf("PG %d–%d", nakamaDBUsLo, nakamaDBUsHi)
		}},
	{name: "redis µs/call", get: func(r result) float64 { return r.RedisUs }, format: "%.0f"},
	{name: "generator µs/call", get: func(r result) float64 { return r.GeneratorUs }, format: "%.0f"},
}

// stat is a figure over the rounds: the median and the range, or the sum.
type stat struct {
	mid, lo, hi float64
	n           int
}

func statOf(vs []float64, sum bool) stat {
	var ok []float64
	for _, v := range vs {
		if v >= 0 {
			ok = append(ok, v)
		}
	}
	if len(ok) == 0 {
		return stat{}
	}
	slices.Sort(ok)
	s := stat{lo: ok[0], hi: ok[len(ok)-1], n: len(ok)}
	switch {
	case sum:
		for _, v := range ok {
			s.mid += v
		}
	case len(ok)%2 == 1:
		s.mid = ok[len(ok)/2]
	default:
		s.mid = (ok[len(ok)/2-1] + ok[len(ok)/2]) / 2
	}
	return s
}

func (s stat) text(format string, sum bool) string {
	switch {
	case s.n == 0:
		return "-"
	case sum || s.n == 1:
		return fmt.Sprintf(format, s.mid)
	}
	return fmt.Sprintf(format+" ["+format+"–"+format+"]", s.mid, s.lo, s.hi)
}

// ratio formats a/b.
func ratio(a, b float64) string {
	if a <= 0 || b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// writeTables prints one side-by-side table per mode.
func writeTables(w io.Writer, o options, results []result) error {
	var b strings.Builder
	two := len(o.bins) > 1
	for _, mode := range o.modes {
		fmt.Fprintf(&b, "\n== %s, %d round(s) of %v: median [min–max] over the rounds; CPU per call counts all calls (write: its logins too)\n", mode, o.rounds, o.duration)
		for _, bin := range o.bins {
			label := bin.Label
			if label == "" {
				label = bin.Path
			}
			fmt.Fprintf(&b, "   %s = %s\n", bin.Name, label)
		}
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		if two {
			fmt.Fprintln(tw, "work\tfigure\tA\tB\tB/A\tNakama\tA/Nakama\tB/Nakama\t")
		} else {
			fmt.Fprintln(tw, "work\tfigure\tA\tNakama\tA/Nakama\t")
		}
		for _, sc := range o.scenarios {
			for _, c := range o.clients {
				work := fmt.Sprintf("%s, %d clients", sc, c)
				byBin := map[string][]result{}
				for _, r := range results {
					if r.Mode == mode && r.Scenario == sc && r.Clients == c {
						byBin[r.Bin] = append(byBin[r.Bin], r)
					}
				}
				for _, f := range figures {
					st := map[string]stat{}
					for _, bin := range o.bins {
						var vs []float64
						for _, r := range byBin[bin.Name] {
							vs = append(vs, f.get(r))
						}
						st[bin.Name] = statOf(vs, f.sum)
					}
					if st["A"].n == 0 && st["B"].n == 0 {
						continue // not measured in this mode (database CPU, embedded)
					}
					nv, ntext := 0.0, "-"
					if f.nakama != nil {
						if nv, ntext = f.nakama(sc, c); nv <= 0 {
							ntext = "-"
						}
					}
					a := st["A"]
					if two {
						bs := st["B"]
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", work, f.name, a.text(f.format, f.sum), bs.text(f.format, f.sum),
							ratio(bs.mid, a.mid), ntext, ratio(a.mid, nv), ratio(bs.mid, nv))
					} else {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", work, f.name, a.text(f.format, f.sum), ntext, ratio(a.mid, nv))
					}
					work = ""
				}
				loads := map[string]string{}
				for _, bin := range o.bins {
					lo, hi := -1.0, -1.0
					for _, r := range byBin[bin.Name] {
						for _, v := range []float64{r.LoadStart, r.LoadEnd} {
							if v >= 0 && (lo < 0 || v < lo) {
								lo = v
							}
							hi = max(hi, v)
						}
					}
					loads[bin.Name] = "-"
					if lo >= 0 {
						loads[bin.Name] = fmt.Sprintf("%.2f–%.2f", lo, hi)
					}
				}
				if two {
					fmt.Fprintf(tw, "\tload average\t%s\t%s\t\t\t\t\t\n", loads["A"], loads["B"])
				} else {
					fmt.Fprintf(tw, "\tload average\t%s\t\t\t\n", loads["A"])
				}
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintf(&b, "\nNakama 3 on PostgreSQL (issue 17, same machine and generator): logins/s 1,589 (16 clients), 1,419 (64); writes/s 2,080 (16), 2,096 (64);\n"+
		"server CPU %d–%d µs per request, PostgreSQL %d–%d µs; write p99 at 64 clients 66 ms. CPU ratios are to the top of Nakama's range.\n",
		nakamaServerUsLo, nakamaServerUsHi, nakamaDBUsLo, nakamaDBUsHi)
	_, err := io.WriteString(w, b.String())
	return err
}
