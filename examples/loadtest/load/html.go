package load

import (
	"fmt"
	"html/template"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// WriteHTML writes r as a self-contained HTML page: the run's settings, the
// summary table, the realtime pushes (when the Chat scenario ran), charts of throughput, latency and each command's p99 per
// second (and of the server's memory, CPU and goroutines when sampled) as
// inline SVG, and the errors by result code. It needs no network, no script and no other file;
// it is also well-formed XML, so tools can parse it.
func WriteHTML(w io.Writer, r *Report) error {
	v := htmlView{R: r, Generated: time.Now().UTC().Format(time.RFC3339)}
	// One point per second, at its end; the run's last second is left out
	// when shorter than half a second (a few calls finishing after the
	// end would show as a drop to zero).
	var xs, tps, errs, p50, p99 []float64
	for _, p := range r.Series {
		if p.SpanS < 0.5 {
			continue
		}
		xs = append(xs, float64(p.Second)+p.SpanS)
		tps, errs = append(tps, p.TPS), append(errs, float64(p.Errors)/p.SpanS)
		p50, p99 = append(p50, p.P50Ms), append(p99, p.P99Ms)
	}
	v.Charts = append(v.Charts,
		newChart("Throughput", "calls per second", "s", r.ElapsedS, xs, []line{
			{ID: "tps", Name: "calls/s", Color: "#1f77b4", Y: tps},
			{ID: "errors", Name: "errors/s", Color: "#d62728", Y: errs},
		}),
		newChart("Latency", "milliseconds", "s", r.ElapsedS, xs, []line{
			{ID: "p50", Name: "p50", Color: "#2ca02c", Y: p50},
			{ID: "p99", Name: "p99", Color: "#ff7f0e", Y: p99},
		}))
	if len(r.Commands) > 0 {
		v.Charts = append(v.Charts, commandChart(r))
	}
	if r.Realtime != nil {
		var pushes []float64
		for _, p := range r.Series {
			if p.SpanS >= 0.5 {
				pushes = append(pushes, p.PushesPerS)
			}
		}
		v.Charts = append(v.Charts, newChart("Realtime pushes received", "pushes per second", "s", r.ElapsedS, xs, []line{
			{ID: "pushes", Name: "pushes/s", Color: "#9467bd", Y: pushes},
		}))
	}
	if len(r.Samples) > 0 {
		v.Charts = append(v.Charts, sampleCharts(r.Samples, r.ElapsedS)...)
	}
	for _, c := range r.Commands {
		for _, k := range slices.Sorted(maps.Keys(c.ErrorsByCode)) {
			v.Errors = append(v.Errors, errRow{c.Command, k, c.ErrorsByCode[k]})
		}
	}
	return reportTmpl.Execute(w, v)
}

type htmlView struct {
	R         *Report
	Generated string
	Charts    []chart
	Errors    []errRow
}

type errRow struct {
	Command, Code string
	Count         uint64
}

// palette colours the per-command lines (cycled past its end).
var palette = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
	"#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#ad494a", "#637939", "#843c39"}

// commandChart draws each command's p99 latency per second (series
// "p99:<command>"); a second without calls of a command has no point for
// it.
func commandChart(r *Report) chart {
	var xs []float64
	var pts []Point
	for _, p := range r.Series {
		if p.SpanS >= 0.5 {
			xs, pts = append(xs, float64(p.Second)+p.SpanS), append(pts, p)
		}
	}
	var lines []line
	for i, c := range r.Commands {
		ys := make([]float64, len(pts))
		for j, p := range pts {
			ys[j] = math.NaN()
			if v, ok := p.CommandP99Ms[c.Command]; ok && p.Commands[c.Command] > 0 {
				ys[j] = v
			}
		}
		lines = append(lines, line{ID: "p99:" + c.Command, Name: c.Command, Color: palette[i%len(palette)], Y: ys})
	}
	return newChart("p99 latency per command", "milliseconds", "s", r.ElapsedS, xs, lines)
}

// sampleCharts draws the server's memory, CPU and goroutines over time.
func sampleCharts(ss []Sample, xmin float64) []chart {
	var out []chart
	pick := func(get func(Sample) *float64, scale float64) (xs, ys []float64) {
		for _, s := range ss {
			if v := get(s); v != nil {
				xs, ys = append(xs, s.AtS), append(ys, *v*scale)
			}
		}
		return xs, ys
	}
	if xs, ys := pick(func(s Sample) *float64 { return s.RSSBytes }, 1.0/(1<<20)); len(xs) > 0 {
		out = append(out, newChart("Server memory (resident)", "MiB", "s", xmin, xs, []line{{ID: "rss", Name: "RSS MiB", Color: "#9467bd", Y: ys}}))
	}
	if xs, ys := pick(func(s Sample) *float64 { return s.CPUSeconds }, 1); len(xs) > 1 {
		// CPU use between readings at least a second apart (the final
		// reading can come right after the last periodic one; over a short
		// gap the counter's resolution makes the rate noise).
		var cx, cy []float64
		for i, j := 1, 0; i < len(xs); i++ {
			if dt := xs[i] - xs[j]; dt >= 1 {
				cx, cy = append(cx, xs[i]), append(cy, max(0, 100*(ys[i]-ys[j])/dt))
				j = i
			}
		}
		out = append(out, newChart("Server CPU", "% of one core", "s", xmin, cx, []line{{ID: "cpu", Name: "CPU %", Color: "#8c564b", Y: cy}}))
	}
	if xs, ys := pick(func(s Sample) *float64 { return s.Goroutines }, 1); len(xs) > 0 {
		out = append(out, newChart("Server goroutines", "goroutines", "s", xmin, xs, []line{{ID: "goroutines", Name: "goroutines", Color: "#17becf", Y: ys}}))
	}
	return out
}

// chart is an SVG line chart laid out for the template.
type chart struct {
	Title, YLabel      string
	W, H               int
	L, T, PW, PH       float64 // plot area
	R, B               float64 // its right and bottom edges
	XTicks, YTicks     []tick
	Lines              []line
	XLabelX, XLabelY   float64
	Empty              bool
	LegendX, LegendTop float64
}

type tick struct {
	Pos   float64
	Label string
}

type line struct {
	ID, Name, Color string
	Y               []float64
	Points          string // "x,y x,y ..." in SVG coordinates
	Dots            []dot  // drawn when there are few points
	LegendY         float64
}

type dot struct{ X, Y float64 }

// newChart lays out lines over xs (all lines share xs).
// The x axis runs to at least xmin (the run's length, so that all charts
// of a page share their scale).
func newChart(title, ylabel, xunit string, xmin float64, xs []float64, lines []line) chart {
	c := chart{Title: title, YLabel: ylabel, W: 860, H: 280, L: 64, T: 34}
	// Room for the legend: one row of 20 px per line.
	c.H = max(c.H, int(c.T)+8+20*len(lines)+10)
	c.PW, c.PH = float64(c.W)-c.L-150, float64(c.H)-c.T-46
	c.R, c.B = c.L+c.PW, c.T+c.PH
	c.XLabelX, c.XLabelY = c.L+c.PW/2, float64(c.H)-6
	c.LegendX, c.LegendTop = c.L+c.PW+16, c.T+8
	if len(xs) == 0 {
		c.Empty = true
	}
	xmax := max(1.0, xmin)
	ymax := 0.0
	for _, x := range xs {
		xmax = max(xmax, x)
	}
	for _, l := range lines {
		for _, y := range l.Y {
			if !math.IsNaN(y) && !math.IsInf(y, 0) {
				ymax = max(ymax, y)
			}
		}
	}
	xstep, xtop := niceScale(xmax)
	ystep, ytop := niceScale(ymax)
	px := func(x float64) float64 { return c.L + c.PW*x/xtop }
	py := func(y float64) float64 { return c.T + c.PH - c.PH*y/ytop }
	for x := 0.0; x <= xtop+xstep/2; x += xstep {
		c.XTicks = append(c.XTicks, tick{px(x), num(x) + xunit})
	}
	for y := 0.0; y <= ytop+ystep/2; y += ystep {
		c.YTicks = append(c.YTicks, tick{py(y), num(y)})
	}
	for i := range lines {
		l := &lines[i]
		var b strings.Builder
		for j, y := range l.Y {
			if j >= len(xs) || math.IsNaN(y) || math.IsInf(y, 0) {
				continue
			}
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "%.1f,%.1f", px(xs[j]), py(y))
			if len(xs) <= 40 {
				l.Dots = append(l.Dots, dot{px(xs[j]), py(y)})
			}
		}
		l.Points = b.String()
		l.LegendY = c.LegendTop + float64(i)*20
	}
	c.Lines = lines
	return c
}

// niceScale returns a step of 1, 2 or 5 times a power of ten giving at
// most about 6 ticks from 0, and the top of the axis (a multiple of the
// step at or above v).
func niceScale(v float64) (step, top float64) {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1, 1
	}
	raw := v / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step = 10 * mag
	for _, m := range []float64{1, 2, 5} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	return step, math.Ceil(v/step-1e-9) * step
}

// num formats an axis label without needless digits.
func num(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

var reportTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"ms":      fmtMs,
	"f1":      func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) },
	"f2":      func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) },
	"think":   thinkText,
	"percall": perCallMicros,
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8"/>
<meta name="viewport" content="width=device-width, initial-scale=1"/>
<title>Load test: {{.R.Scenario}}, {{.R.Users}} users</title>
<style>
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px auto; max-width: 900px; color: #222; padding: 0 12px; }
h1 { font-size: 22px; margin-bottom: 2px; }
h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ddd; padding-bottom: 3px; }
.sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { padding: 3px 10px; border-bottom: 1px solid #eee; }
th { background: #f5f5f5; text-align: right; }
td { text-align: right; font-variant-numeric: tabular-nums; }
td:first-child, th:first-child { text-align: left; }
tr.total td { font-weight: 600; border-top: 2px solid #ccc; }
table.kv td { text-align: left; }
table.kv td:first-child { color: #666; }
.bad { color: #c00; font-weight: 600; }
.note { color: #555; }
svg { display: block; margin: 6px 0 14px; }
svg text { font: 11px system-ui, sans-serif; fill: #444; }
svg .ttl { font-size: 13px; font-weight: 600; fill: #222; }
</style>
</head>
<body>
<h1>Load test report</h1>
<p class="sub">{{.R.Scenario}} · {{.R.Users}} users · {{.R.Target}} · started {{.R.Started.Format "2006-01-02 15:04:05 UTC"}}</p>

<h2>Run</h2>
<table class="kv">
<tr><td>target</td><td>{{.R.Target}} ({{.R.Mode}} frames)</td></tr>
<tr><td>scenario</td><td>{{.R.Scenario}}</td></tr>
<tr><td>users</td><td>{{.R.Users}}, ramp-up {{.R.RampUpS}} s, think time {{think .R}}</td></tr>
<tr><td>ran</td><td>{{f1 .R.ElapsedS}} s, {{.R.Iterations}} iterations, stopped by {{.R.StopReason}} (limits {{.R.DurationS}} s, {{.R.IterLimit}} iterations)</td></tr>
<tr><td>calls</td><td>{{.R.Total.Count}}, {{.R.Total.Answered}} answered at {{f1 .R.Total.AnsweredTPS}} per second, {{.R.Total.Errors}} errors{{if .R.Total.Replays}}, {{.R.Total.Replays}} replays{{end}}{{if .R.Total.Sent}}; {{.R.Total.Sent}} requests sent, {{.R.Total.Resent}} re-sent, {{.R.Total.Refused}} refused (HTTP 503/429){{end}}</td></tr>
<tr><td>CPU time</td><td>load generator {{f2 .R.GeneratorCPUS}} s{{if ge .R.ServerCPUS 0.0}}; server {{f2 .R.ServerCPUS}} s ({{printf "%.0f" (percall .R.ServerCPUS .R.Total.Answered)}} µs per answered call){{end}}</td></tr>
{{range .R.Notes}}<tr><td>note</td><td class="note">{{.}}</td></tr>
{{end}}</table>

<h2>Summary per command</h2>
<table>
<tr><th>command</th><th>count</th><th>TPS</th><th>error %</th><th>p50</th><th>p95</th><th>p99</th><th>max</th></tr>
{{range .R.Commands}}<tr><td>{{.Command}}</td><td>{{.Count}}</td><td>{{f1 .TPS}}</td><td{{if .Errors}} class="bad"{{end}}>{{f2 .ErrorPct}}</td><td>{{ms .P50Ms}}</td><td>{{ms .P95Ms}}</td><td>{{ms .P99Ms}}</td><td>{{ms .MaxMs}}</td></tr>
{{end}}{{with .R.Total}}<tr class="total"><td>all</td><td>{{.Count}}</td><td>{{f1 .TPS}}</td><td{{if .Errors}} class="bad"{{end}}>{{f2 .ErrorPct}}</td><td>{{ms .P50Ms}}</td><td>{{ms .P95Ms}}</td><td>{{ms .P99Ms}}</td><td>{{ms .MaxMs}}</td></tr>{{end}}
</table>
<p class="note">Latency runs from the first send of a call to its final answer, retries included. Percentiles come from log-bucketed histograms (within 0.8 %); max is exact.</p>

{{with .R.Realtime}}<h2>Realtime</h2>
<table class="kv">
<tr><td>websocket</td><td>{{.URL}} ({{.FrameMode}} frames), {{.Rooms}} chat rooms{{if .DevLogin}}, tokens from /dev/login{{end}}</td></tr>
<tr><td>connections</td><td>{{.Connects}} made{{range $k, $v := .Drops}}; {{$v}} closed by the server ({{$k}}){{end}}</td></tr>
<tr><td>pushes received</td><td>{{.Pushes}} at {{f1 .PushesPerS}} per second: {{.Echoes}} own chat back, {{.Chat}} chat of others, {{.Whispers}} whispers, {{.Other}} other</td></tr>
<tr><td>delivery</td><td>p50 {{ms .DeliveryP50Ms}}, p99 {{ms .DeliveryP99Ms}}, max {{ms .DeliveryMaxMs}} (from the send to the arrival, every chat push and whisper received)</td></tr>
</table>
{{end}}
<h2>Over time</h2>
{{range .Charts}}{{template "chart" .}}{{end}}

<h2>Errors by result code</h2>
{{if .Errors}}<table>
<tr><th>command</th><th>code</th><th>count</th></tr>
{{range .Errors}}<tr><td>{{.Command}}</td><td>{{.Code}}</td><td>{{.Count}}</td></tr>
{{end}}</table>{{else}}<p>None.</p>{{end}}
{{if or .R.Samples .R.SampleErrors}}<p class="note">Server metrics: {{len .R.Samples}} samples, {{.R.SampleErrors}} failed{{if .R.SampleProblem}} (last: {{.R.SampleProblem}}){{end}}.</p>{{end}}
<p class="note">Written by madang examples/loadtest at {{.Generated}}.</p>
</body>
</html>
{{define "chart"}}<svg xmlns="http://www.w3.org/2000/svg" width="{{.W}}" height="{{.H}}" viewBox="0 0 {{.W}} {{.H}}" role="img" aria-label="{{.Title}}">
<title>{{.Title}}</title>
<text class="ttl" x="{{.L}}" y="20">{{.Title}}</text>
<rect x="{{.L}}" y="{{.T}}" width="{{.PW}}" height="{{.PH}}" fill="#fcfcfc" stroke="#bbb"/>
{{$c := .}}{{range .YTicks}}<line x1="{{$c.L}}" x2="{{$c.L}}" y1="{{.Pos}}" y2="{{.Pos}}" stroke="#999"/><line x1="{{$c.L}}" y1="{{.Pos}}" x2="{{$c.R}}" y2="{{.Pos}}" stroke="#e4e4e4"/><text x="{{$c.L}}" dx="-6" y="{{.Pos}}" dy="4" text-anchor="end">{{.Label}}</text>
{{end}}{{range .XTicks}}<line x1="{{.Pos}}" x2="{{.Pos}}" y1="{{$c.T}}" y2="{{$c.B}}" stroke="#e4e4e4"/><text x="{{.Pos}}" y="{{$c.B}}" dy="16" text-anchor="middle">{{.Label}}</text>
{{end}}<text x="{{$c.R}}" y="{{$c.T}}" dy="-6" text-anchor="end">{{.YLabel}}</text>
{{if .Empty}}<text x="{{.XLabelX}}" y="{{.T}}" dy="40" text-anchor="middle">no data</text>{{end}}
{{range .Lines}}<polyline data-series="{{.ID}}" fill="none" stroke="{{.Color}}" stroke-width="1.6" points="{{.Points}}"/>
{{$col := .Color}}{{range .Dots}}<circle cx="{{.X}}" cy="{{.Y}}" r="2.2" fill="{{$col}}"/>{{end}}
<rect x="{{$c.LegendX}}" y="{{.LegendY}}" width="14" height="3" fill="{{.Color}}"/><text x="{{$c.LegendX}}" dx="20" y="{{.LegendY}}" dy="5">{{.Name}}</text>
{{end}}</svg>
{{end}}`))
