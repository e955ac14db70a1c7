package console

import (
	"fmt"
	"html"
	"html/template"
	"strings"
	"time"
)

// chart is a bar chart of one series over days, drawn as inline SVG.
type chart struct {
	Title  string
	Labels []string
	Values []int64
}

// SVG draws the chart. Text is escaped here (the result is trusted HTML).
func (c chart) SVG() template.HTML {
	const w, h, pad, margin = 560, 160, 28, 14
	var top int64
	for _, v := range c.Values {
		top = max(top, v)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">`, w, h+pad, w, h+pad, html.EscapeString(c.Title))
	fmt.Fprintf(&b, `<line x1="0" y1="%d" x2="%d" y2="%d" class="axis"/>`, h, w, h)
	n := len(c.Values)
	if n > 0 {
		bw := float64(w) / float64(n)
		for i, v := range c.Values {
			bh := 0.0
			if top > 0 {
				bh = float64(v) / float64(top) * float64(h-margin)
			}
			x := float64(i) * bw
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s: %d</title></rect>`, x+2, float64(h)-bh, bw-4, bh, html.EscapeString(c.Labels[i]), v)
			if n <= 16 || i%2 == 0 {
				fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`, x+bw/2, h+16, html.EscapeString(c.Labels[i]))
			}
		}
	}
	fmt.Fprintf(&b, `<text x="4" y="12" class="max">max %d</text></svg>`, top)
	return template.HTML(b.String())
}

var funcs = template.FuncMap{
	"ms": func(v int64) string {
		if v == 0 {
			return "-"
		}
		return time.UnixMilli(v).UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"utc": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"join": strings.Join,
	"short": func(h string) string {
		if len(h) > 12 {
			return h[:12] + "…"
		}
		return h
	},
	"diffKind":  diffKind,
	"diffClass": diffClass,
	"has":       func(err *FieldError, field string) bool { return err != nil && err.Field == field },
}

// diffKind names a gamedata.DiffEntry's kind for people.
func diffKind(kind string) string {
	switch kind {
	case "+table":
		return "table added"
	case "-table":
		return "table removed"
	case "+column":
		return "column added"
	case "-column":
		return "column removed"
	case "type":
		return "column type changed"
	case "+row":
		return "row added"
	case "-row":
		return "row removed"
	case "~row":
		return "row changed"
	}
	return kind
}

// diffClass is a diff row's CSS class: added, removed or changed.
func diffClass(kind string) string {
	switch {
	case strings.HasPrefix(kind, "+"):
		return "added"
	case strings.HasPrefix(kind, "-"):
		return "removed"
	}
	return "changed"
}
