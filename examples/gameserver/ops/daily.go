package ops

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/madang-io/madang/examples/gameserver/game"
)

// dailyCollector exports the last /v1/stats computed for the current UTC
// day: scrapes read these values and never query the databases. After
// midnight (UTC) it exports nothing until /v1/stats is asked again.
type dailyCollector struct {
	revenue, hacks, at *prometheus.Desc

	mu      sync.Mutex
	day     time.Time // midnight UTC of the values; zero: none yet
	when    time.Time // when they were computed
	rev     []game.Revenue
	hackSet HackStats
}

func newDailyCollector() *dailyCollector {
	return &dailyCollector{
		revenue: prometheus.NewDesc("madang_revenue_today_micros",
			"Payments today (UTC) at list price in millionths of the currency, as of the last GET /v1/stats.", []string{"currency"}, nil),
		hacks: prometheus.NewDesc("madang_hacks_today",
			"Hack log verdicts today (UTC) by kind, as of the last GET /v1/stats.", []string{"kind"}, nil),
		at: prometheus.NewDesc("madang_daily_stats_timestamp_seconds",
			"When the exported daily stats were computed (Unix time).", nil, nil),
	}
}

func (c *dailyCollector) set(day time.Time, rev []game.Revenue, h HackStats) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.day, c.when, c.rev, c.hackSet = day, time.Now(), rev, h
}

// Describe implements prometheus.Collector.
func (c *dailyCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.revenue
	ch <- c.hacks
	ch <- c.at
}

// Collect implements prometheus.Collector.
func (c *dailyCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.day.IsZero() || !c.day.Equal(today(time.Now())) {
		return
	}
	for _, r := range c.rev {
		ch <- prometheus.MustNewConstMetric(c.revenue, prometheus.GaugeValue, float64(r.AmountMicros), r.Currency)
	}
	for k, n := range c.hackSet.ByKind {
		ch <- prometheus.MustNewConstMetric(c.hacks, prometheus.GaugeValue, float64(n), k)
	}
	ch <- prometheus.MustNewConstMetric(c.at, prometheus.GaugeValue, float64(c.when.UnixNano())/1e9)
}
