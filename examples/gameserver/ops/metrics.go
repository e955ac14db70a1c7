package ops

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/examples/gameserver/liveops"
	"github.com/madang-io/madang/idempotency"
	"github.com/madang-io/madang/session"
	"github.com/madang-io/madang/shard"
)

// Sources are the Stats methods a Collector reads at each scrape. Any may be
// nil.
type Sources struct {
	Router      *shard.Router
	Sessions    func() session.Stats
	Guard       *anticheat.Guard
	Idempotency func() idempotency.Stats
	LiveOps     *liveops.Manager
}

// Collector is a prometheus.Collector that turns the packages' Stats into
// metrics at scrape time (const metrics: nothing is kept between scrapes).
type Collector struct {
	src   Sources
	descs map[string]*prometheus.Desc
}

// metric names and help; label "db" on the shard series.
var metricDefs = []struct {
	name, help string
	labels     []string
}{
	{"madang_shard_db_open_connections", "Open connections of the game database's primary pool.", []string{"db"}},
	{"madang_shard_db_in_use_connections", "Connections in use.", []string{"db"}},
	{"madang_shard_db_idle_connections", "Idle connections.", []string{"db"}},
	{"madang_shard_db_wait_total", "Waits for a free connection.", []string{"db"}},
	{"madang_shard_db_wait_seconds_total", "Time spent waiting for a free connection.", []string{"db"}},
	{"madang_shard_db_tx_total", "Transactions run through the router.", []string{"db"}},
	{"madang_shard_db_tx_retries_total", "Transaction retries after deadlocks or busy errors.", []string{"db"}},
	{"madang_shard_db_tx_errors_total", "Transactions that returned an error.", []string{"db"}},
	{"madang_shard_db_slow_tx_total", "Transactions slower than the router's threshold.", []string{"db"}},
	{"madang_shard_db_errors_total", "Calls refused before running (unavailable, read-only, schema behind).", []string{"db"}},
	{"madang_session_created_total", "Sessions created (logins).", nil},
	{"madang_session_validated_total", "Requests whose session was accepted.", nil},
	{"madang_session_rejected_total", "Requests whose session was refused.", nil},
	{"madang_session_kicked_total", "Sessions ended by a newer login.", nil},
	{"madang_session_revoked_total", "Sessions revoked.", nil},
	{"madang_session_failures_total", "Session store calls that failed (backend unavailable).", nil},
	{"madang_anticheat_speed_verdicts_total", "Speed-hack verdicts.", nil},
	{"madang_anticheat_blocked_refusals_total", "Requests refused because the user is blocked.", nil},
	{"madang_anticheat_signature_mismatch_total", "Logins with a mismatching signature (Guard registry).", nil},
	{"madang_anticheat_store_errors_total", "Anti-cheat store failures.", nil},
	{"madang_idempotency_executed_total", "Idempotent requests run and stored.", nil},
	{"madang_idempotency_replayed_total", "Retried requests answered from the stored result.", nil},
	{"madang_idempotency_in_flight_total", "Duplicates answered in-flight.", nil},
	{"madang_idempotency_reused_total", "Request ids refused because the request differed.", nil},
	{"madang_liveops_policy_version", "Live-ops policy version in use.", nil},
	{"madang_liveops_reloads_total", "Live-ops policy reloads.", nil},
	{"madang_liveops_reload_errors_total", "Failed live-ops polls and reloads.", nil},
	{"madang_liveops_maintenance_refusals_total", "Requests refused for maintenance.", nil},
	{"madang_liveops_update_required_total", "Requests refused as client too old.", nil},
	{"madang_liveops_review_routed_total", "Logins sent to the review server.", nil},
	{"madang_liveops_force_closed_total", "Logins told to force-close (repackaged APK).", nil},
	{"madang_liveops_users_in_maintenance", "Users in per-user maintenance.", nil},
	{"madang_liveops_global_maintenance", "1 while global maintenance is on.", nil},
	{"madang_ccu", "Users with a request in the active window (CCU).", nil},
}

// NewCollector returns a collector over src.
func NewCollector(src Sources) *Collector {
	c := &Collector{src: src, descs: make(map[string]*prometheus.Desc, len(metricDefs))}
	for _, d := range metricDefs {
		c.descs[d.name] = prometheus.NewDesc(d.name, d.help, d.labels, nil)
	}
	return c
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(name string, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.CounterValue, v, labels...)
	}
	gauge := func(name string, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.GaugeValue, v, labels...)
	}
	if r := c.src.Router; r != nil {
		for _, s := range r.Stats() {
			db := strconv.Itoa(s.ID)
			gauge("madang_shard_db_open_connections", float64(s.Pool.OpenConnections), db)
			gauge("madang_shard_db_in_use_connections", float64(s.Pool.InUse), db)
			gauge("madang_shard_db_idle_connections", float64(s.Pool.Idle), db)
			counter("madang_shard_db_wait_total", float64(s.Pool.WaitCount), db)
			counter("madang_shard_db_wait_seconds_total", s.Pool.WaitDuration.Seconds(), db)
			counter("madang_shard_db_tx_total", float64(s.Txs), db)
			counter("madang_shard_db_tx_retries_total", float64(s.TxRetries), db)
			counter("madang_shard_db_tx_errors_total", float64(s.TxErrors), db)
			counter("madang_shard_db_slow_tx_total", float64(s.SlowTxs), db)
			counter("madang_shard_db_errors_total", float64(s.Errors), db)
		}
	}
	if f := c.src.Sessions; f != nil {
		s := f()
		counter("madang_session_created_total", float64(s.Created))
		counter("madang_session_validated_total", float64(s.Validated))
		counter("madang_session_rejected_total", float64(s.Rejected))
		counter("madang_session_kicked_total", float64(s.Kicked))
		counter("madang_session_revoked_total", float64(s.Revoked))
		counter("madang_session_failures_total", float64(s.Failures))
	}
	if g := c.src.Guard; g != nil {
		s := g.Stats()
		counter("madang_anticheat_speed_verdicts_total", float64(s.SpeedVerdicts))
		counter("madang_anticheat_blocked_refusals_total", float64(s.BlockedRefusals))
		counter("madang_anticheat_signature_mismatch_total", float64(s.SignatureMismatch))
		counter("madang_anticheat_store_errors_total", float64(s.StoreErrors))
	}
	if f := c.src.Idempotency; f != nil {
		s := f()
		counter("madang_idempotency_executed_total", float64(s.Executed))
		counter("madang_idempotency_replayed_total", float64(s.Replayed))
		counter("madang_idempotency_in_flight_total", float64(s.InFlight))
		counter("madang_idempotency_reused_total", float64(s.Reused))
	}
	if m := c.src.LiveOps; m != nil {
		s := m.Stats()
		gauge("madang_liveops_policy_version", float64(s.Version))
		counter("madang_liveops_reloads_total", float64(s.Reloads))
		counter("madang_liveops_reload_errors_total", float64(s.ReloadErrors))
		counter("madang_liveops_maintenance_refusals_total", float64(s.Maintenance))
		counter("madang_liveops_update_required_total", float64(s.UpdateRequired))
		counter("madang_liveops_review_routed_total", float64(s.ReviewRouted))
		counter("madang_liveops_force_closed_total", float64(s.ForceClosed))
		gauge("madang_liveops_users_in_maintenance", float64(s.UsersInMaint))
		g := 0.0
		if s.GlobalMaint {
			g = 1
		}
		gauge("madang_liveops_global_maintenance", g)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if n, err := m.CCU(ctx); err == nil {
			gauge("madang_ccu", float64(n))
		}
	}
}

// NewRegistry returns a registry of the main's own (never the global
// default) with the Go runtime and process collectors and c.
func NewRegistry(c *Collector) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheusGoCollectors()...)
	reg.MustRegister(c)
	return reg
}
