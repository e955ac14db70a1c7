package ops

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/examples/gameserver/liveops"
	"github.com/madang-io/madang/idempotency"
	"github.com/madang-io/madang/protocol"
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
	// LoginsRefused counts logins answered rate_limited by the server's
	// login limit.
	LoginsRefused func() uint64
	// RateLimiter reads the per-user limiter's counters (commands and
	// chat).
	RateLimiter func() session.LimiterStats
	// WebsocketsRefused counts websocket handshakes refused by the
	// per-user connection cap (realtime.Stats.ConnsRefused).
	WebsocketsRefused func() int64
	// DecodeBudget is the bound on decoded request bodies that the HTTP
	// handler and the realtime hub share (protocol.DecodeBudget.Stats).
	DecodeBudget func() protocol.DecodeBudgetStats
	// InFlight is the bound on the commands served at once that the HTTP
	// handler and the realtime hub share (protocol.InFlightLimit.Stats).
	InFlight func() protocol.InFlightStats
}

// Collector is a prometheus.Collector that turns the packages' Stats into
// metrics at scrape time (const metrics: nothing is kept between scrapes).
type Collector struct {
	src       Sources
	shard     family[shard.DBStats] // label "db"
	sessions  family[session.Stats]
	guard     family[anticheat.GuardStats]
	idem      family[idempotency.Stats]
	liveops   family[liveops.Stats]
	limiter   family[session.LimiterStats]
	decode    family[protocol.DecodeBudgetStats]
	inFlight  family[protocol.InFlightStats]
	wsRefused *prometheus.Desc
	ccu       *prometheus.Desc
	refused   *prometheus.Desc
}

// metric is one series read from a Stats value S: its name, help, type and
// value — each metric is written once, here.
type metric[S any] struct {
	name, help string
	kind       prometheus.ValueType
	value      func(S) float64
}

const (
	counter = prometheus.CounterValue
	gauge   = prometheus.GaugeValue
)

var shardMetrics = []metric[shard.DBStats]{
	{"madang_shard_db_open_connections", "Open connections of the game database's primary pool.", gauge, func(s shard.DBStats) float64 { return float64(s.Pool.OpenConnections) }},
	{"madang_shard_db_in_use_connections", "Connections in use.", gauge, func(s shard.DBStats) float64 { return float64(s.Pool.InUse) }},
	{"madang_shard_db_idle_connections", "Idle connections.", gauge, func(s shard.DBStats) float64 { return float64(s.Pool.Idle) }},
	{"madang_shard_db_wait_total", "Waits for a free connection.", counter, func(s shard.DBStats) float64 { return float64(s.Pool.WaitCount) }},
	{"madang_shard_db_wait_seconds_total", "Time spent waiting for a free connection.", counter, func(s shard.DBStats) float64 { return s.Pool.WaitDuration.Seconds() }},
	{"madang_shard_db_tx_total", "Transactions run through the router.", counter, func(s shard.DBStats) float64 { return float64(s.Txs) }},
	{"madang_shard_db_tx_retries_total", "Transaction retries after deadlocks or busy errors.", counter, func(s shard.DBStats) float64 { return float64(s.TxRetries) }},
	{"madang_shard_db_tx_errors_total", "Transactions that returned an error.", counter, func(s shard.DBStats) float64 { return float64(s.TxErrors) }},
	{"madang_shard_db_slow_tx_total", "Transactions slower than the router's threshold.", counter, func(s shard.DBStats) float64 { return float64(s.SlowTxs) }},
	{"madang_shard_db_sqlite_writer_waits_total", "SQLite write transactions that queued behind another writer.", counter, func(s shard.DBStats) float64 { return float64(s.SQLiteWriterWaits) }},
	{"madang_shard_db_sqlite_writer_timeouts_total", "SQLite write transactions that gave up waiting in the writer queue.", counter, func(s shard.DBStats) float64 { return float64(s.SQLiteWriterTimeouts) }},
	{"madang_shard_db_checkpoints_total", "Checkpoints of a SQLite database's write-ahead log by the router.", counter, func(s shard.DBStats) float64 { return float64(s.Checkpoints) }},
	{"madang_shard_db_checkpoint_errors_total", "Router checkpoints that failed or were busy.", counter, func(s shard.DBStats) float64 { return float64(s.CheckpointErrors) }},
	{"madang_shard_db_wal_pages", "Write-ahead log pages the last checkpoint found.", gauge, func(s shard.DBStats) float64 { return float64(s.WALPages) }},
	{"madang_shard_db_errors_total", "Calls refused before running (unavailable, read-only, schema behind).", counter, func(s shard.DBStats) float64 { return float64(s.Errors) }},
}

var sessionMetrics = []metric[session.Stats]{
	{"madang_session_created_total", "Sessions created (logins).", counter, func(s session.Stats) float64 { return float64(s.Created) }},
	{"madang_session_validated_total", "Requests whose session was accepted.", counter, func(s session.Stats) float64 { return float64(s.Validated) }},
	{"madang_session_rejected_total", "Requests whose session was refused.", counter, func(s session.Stats) float64 { return float64(s.Rejected) }},
	{"madang_session_kicked_total", "Sessions ended by a newer login.", counter, func(s session.Stats) float64 { return float64(s.Kicked) }},
	{"madang_session_revoked_total", "Sessions revoked.", counter, func(s session.Stats) float64 { return float64(s.Revoked) }},
	{"madang_session_failures_total", "Session store calls that failed (backend unavailable).", counter, func(s session.Stats) float64 { return float64(s.Failures) }},
}

var guardMetrics = []metric[anticheat.GuardStats]{
	{"madang_anticheat_speed_verdicts_total", "Speed-hack verdicts.", counter, func(s anticheat.GuardStats) float64 { return float64(s.SpeedVerdicts) }},
	{"madang_anticheat_blocked_refusals_total", "Requests refused because the user is blocked.", counter, func(s anticheat.GuardStats) float64 { return float64(s.BlockedRefusals) }},
	{"madang_anticheat_signature_mismatch_total", "Logins with a mismatching signature (Guard registry).", counter, func(s anticheat.GuardStats) float64 { return float64(s.SignatureMismatch) }},
	{"madang_anticheat_store_errors_total", "Anti-cheat store failures.", counter, func(s anticheat.GuardStats) float64 { return float64(s.StoreErrors) }},
}

var idempotencyMetrics = []metric[idempotency.Stats]{
	{"madang_idempotency_executed_total", "Idempotent requests run and stored.", counter, func(s idempotency.Stats) float64 { return float64(s.Executed) }},
	{"madang_idempotency_replayed_total", "Retried requests answered from the stored result.", counter, func(s idempotency.Stats) float64 { return float64(s.Replayed) }},
	{"madang_idempotency_in_flight_total", "Duplicates answered in-flight.", counter, func(s idempotency.Stats) float64 { return float64(s.InFlight) }},
	{"madang_idempotency_reused_total", "Request ids refused because the request differed.", counter, func(s idempotency.Stats) float64 { return float64(s.Reused) }},
}

var liveopsMetrics = []metric[liveops.Stats]{
	{"madang_liveops_policy_version", "Live-ops policy version in use.", gauge, func(s liveops.Stats) float64 { return float64(s.Version) }},
	{"madang_liveops_reloads_total", "Live-ops policy reloads.", counter, func(s liveops.Stats) float64 { return float64(s.Reloads) }},
	{"madang_liveops_reload_errors_total", "Failed live-ops polls and reloads.", counter, func(s liveops.Stats) float64 { return float64(s.ReloadErrors) }},
	{"madang_liveops_maintenance_refusals_total", "Requests refused for maintenance.", counter, func(s liveops.Stats) float64 { return float64(s.Maintenance) }},
	{"madang_liveops_update_required_total", "Requests refused as client too old.", counter, func(s liveops.Stats) float64 { return float64(s.UpdateRequired) }},
	{"madang_liveops_review_routed_total", "Logins sent to the review server.", counter, func(s liveops.Stats) float64 { return float64(s.ReviewRouted) }},
	{"madang_liveops_force_closed_total", "Logins told to force-close (repackaged APK).", counter, func(s liveops.Stats) float64 { return float64(s.ForceClosed) }},
	{"madang_liveops_users_in_maintenance", "Users in per-user maintenance.", gauge, func(s liveops.Stats) float64 { return float64(s.UsersInMaint) }},
	{"madang_liveops_global_maintenance", "1 while global maintenance is on.", gauge, func(s liveops.Stats) float64 {
		if s.GlobalMaint {
			return 1
		}
		return 0
	}},
}

var limiterMetrics = []metric[session.LimiterStats]{
	{"madang_ratelimit_allowed_total", "Events (commands, chat messages) within their user's limit.", counter, func(s session.LimiterStats) float64 { return float64(s.Allowed) }},
	{"madang_ratelimit_limited_total", "Events answered rate_limited by their user's limit.", counter, func(s session.LimiterStats) float64 { return float64(s.Limited) }},
	{"madang_ratelimit_errors_total", "Limiter calls that failed (backend down); the events passed.", counter, func(s session.LimiterStats) float64 { return float64(s.Errors) }},
	{"madang_ratelimit_evicted_total", "Memory limiter states dropped before their refill time (over MaxEntries).", counter, func(s session.LimiterStats) float64 { return float64(s.Evicted) }},
	{"madang_ratelimit_entries", "Memory limiter states kept.", gauge, func(s session.LimiterStats) float64 { return float64(s.Entries) }},
}

var decodeMetrics = []metric[protocol.DecodeBudgetStats]{
	{"madang_decode_budget_bytes", "Bytes of decoded request bodies the server holds at most (HTTP and websocket together).", gauge, func(s protocol.DecodeBudgetStats) float64 { return float64(s.Bytes) }},
	{"madang_decode_budget_in_use_bytes", "Bytes of decoded request bodies held now.", gauge, func(s protocol.DecodeBudgetStats) float64 { return float64(s.InUse) }},
	{"madang_decode_budget_unauthenticated_in_use_bytes", "Of which by plain and XOR frames.", gauge, func(s protocol.DecodeBudgetStats) float64 { return float64(s.UnauthenticatedInUse) }},
	{"madang_decode_budget_peak_bytes", "The most bytes of decoded bodies held at once since the start.", gauge, func(s protocol.DecodeBudgetStats) float64 { return float64(s.Peak) }},
	{"madang_decode_budget_charged_total", "Request bodies charged to the budget (bodies above its free size).", counter, func(s protocol.DecodeBudgetStats) float64 { return float64(s.Charged) }},
	{"madang_decode_budget_waited_total", "Request bodies that waited for room in the budget.", counter, func(s protocol.DecodeBudgetStats) float64 { return float64(s.Waited) }},
	{"madang_decode_budget_refused_total", "Requests refused rate_limited for want of room in the budget.", counter, func(s protocol.DecodeBudgetStats) float64 { return float64(s.Refused) }},
}

var inFlightMetrics = []metric[protocol.InFlightStats]{
	{"madang_inflight_limit", "Commands the server serves at most at once (HTTP and websocket together; negative: no limit).", gauge, func(s protocol.InFlightStats) float64 { return float64(s.Max) }},
	{"madang_inflight", "Commands served now.", gauge, func(s protocol.InFlightStats) float64 { return float64(s.InFlight) }},
	{"madang_inflight_peak", "The most commands served at once since the start.", gauge, func(s protocol.InFlightStats) float64 { return float64(s.Peak) }},
	{"madang_inflight_admitted_total", "Commands let through the in-flight limit.", counter, func(s protocol.InFlightStats) float64 { return float64(s.Admitted) }},
	{"madang_inflight_waited_total", "Commands that found no free turn (queued, or refused at once when their expected wait was too long).", counter, func(s protocol.InFlightStats) float64 { return float64(s.Waited) }},
	{"madang_inflight_refused_total", "Commands answered unavailable by the in-flight limit (expected wait too long, or queued too long).", counter, func(s protocol.InFlightStats) float64 { return float64(s.Refused) }},
}

// family is the metrics of one Stats type with their descriptors.
type family[S any] struct {
	metrics []metric[S]
	descs   []*prometheus.Desc
}

func newFamily[S any](metrics []metric[S], labels ...string) family[S] {
	f := family[S]{metrics: metrics, descs: make([]*prometheus.Desc, len(metrics))}
	for i, m := range metrics {
		f.descs[i] = prometheus.NewDesc(m.name, m.help, labels, nil)
	}
	return f
}

func (f family[S]) describe(ch chan<- *prometheus.Desc) {
	for _, d := range f.descs {
		ch <- d
	}
}

// collect sends every metric of f read from s, with labelValues.
func (f family[S]) collect(ch chan<- prometheus.Metric, s S, labelValues ...string) {
	for i, m := range f.metrics {
		ch <- prometheus.MustNewConstMetric(f.descs[i], m.kind, m.value(s), labelValues...)
	}
}

// NewCollector returns a collector over src.
func NewCollector(src Sources) *Collector {
	return &Collector{
		src:       src,
		shard:     newFamily(shardMetrics, "db"),
		sessions:  newFamily(sessionMetrics),
		guard:     newFamily(guardMetrics),
		idem:      newFamily(idempotencyMetrics),
		liveops:   newFamily(liveopsMetrics),
		limiter:   newFamily(limiterMetrics),
		decode:    newFamily(decodeMetrics),
		inFlight:  newFamily(inFlightMetrics),
		wsRefused: prometheus.NewDesc("madang_ws_refused_total", "Websocket handshakes refused by the per-user connection cap.", nil, nil),
		ccu:       prometheus.NewDesc("madang_ccu", "Users with a request in the active window (CCU).", nil, nil),
		refused:   prometheus.NewDesc("madang_game_logins_refused_total", "Logins answered rate_limited by the login limit.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	c.shard.describe(ch)
	c.sessions.describe(ch)
	c.guard.describe(ch)
	c.idem.describe(ch)
	c.liveops.describe(ch)
	c.limiter.describe(ch)
	ch <- c.wsRefused
	c.decode.describe(ch)
	c.inFlight.describe(ch)
	ch <- c.ccu
	ch <- c.refused
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	if r := c.src.Router; r != nil {
		for _, s := range r.Stats() {
			c.shard.collect(ch, s, strconv.Itoa(s.ID))
		}
	}
	if f := c.src.Sessions; f != nil {
		c.sessions.collect(ch, f())
	}
	if g := c.src.Guard; g != nil {
		c.guard.collect(ch, g.Stats())
	}
	if f := c.src.Idempotency; f != nil {
		c.idem.collect(ch, f())
	}
	if f := c.src.DecodeBudget; f != nil {
		c.decode.collect(ch, f())
	}
	if f := c.src.InFlight; f != nil {
		c.inFlight.collect(ch, f())
	}
	if f := c.src.LoginsRefused; f != nil {
		ch <- prometheus.MustNewConstMetric(c.refused, prometheus.CounterValue, float64(f()))
	}
	if f := c.src.RateLimiter; f != nil {
		c.limiter.collect(ch, f())
	}
	if f := c.src.WebsocketsRefused; f != nil {
		ch <- prometheus.MustNewConstMetric(c.wsRefused, prometheus.CounterValue, float64(f()))
	}
	if m := c.src.LiveOps; m != nil {
		c.liveops.collect(ch, m.Stats())
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if n, err := m.CCU(ctx); err == nil {
			ch <- prometheus.MustNewConstMetric(c.ccu, prometheus.GaugeValue, float64(n))
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
