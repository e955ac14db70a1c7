package liveops

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// activity tracks users' last requests for CCU.
type activity struct {
	window time.Duration
	max    int
	now    func() time.Time
	rdb    redis.UniversalClient
	key    string

	mu    sync.Mutex
	last  map[int64]int64 // user → Unix ms of the last request
	dirty map[int64]int64 // not yet flushed to Redis
}

func newActivity(cfg Config) *activity {
	return &activity{
		window: cfg.ActiveWindow, max: cfg.MaxActive, now: cfg.Now, rdb: cfg.Redis,
		key:  "{" + cfg.Channel + "}:active",
		last: map[int64]int64{}, dirty: map[int64]int64{},
	}
}

func (a *activity) seen(user int64, now time.Time) {
	ms := now.UnixMilli()
	a.mu.Lock()
	defer a.mu.Unlock()
	if prev, ok := a.last[user]; ok && ms-prev < 1000 {
		return // seen this second already
	}
	if _, ok := a.last[user]; !ok && len(a.last) >= a.max {
		a.pruneLocked(ms)
		if len(a.last) >= a.max {
			return
		}
	}
	a.last[user] = ms
	if a.rdb != nil {
		a.dirty[user] = ms
	}
}

func (a *activity) pruneLocked(nowMs int64) {
	cut := nowMs - a.window.Milliseconds()
	for u, at := range a.last {
		if at < cut {
			delete(a.last, u)
		}
	}
}

func (a *activity) count(ctx context.Context) (int64, error) {
	nowMs := a.now().UnixMilli()
	cut := nowMs - a.window.Milliseconds()
	if a.rdb == nil {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.pruneLocked(nowMs)
		return int64(len(a.last)), nil
	}
	n, err := a.rdb.ZCount(ctx, a.key, "("+strconv.FormatInt(cut, 10), "+inf").Result()
	return n, wrap(err)
}

// flushOnce writes the users seen since the last flush to Redis and drops
// those past the window.
func (a *activity) flushOnce(ctx context.Context) error {
	a.mu.Lock()
	dirty := a.dirty
	a.dirty = make(map[int64]int64, len(dirty))
	a.mu.Unlock()
	pipe := a.rdb.Pipeline()
	if len(dirty) > 0 {
		zs := make([]redis.Z, 0, len(dirty))
		for u, ms := range dirty {
			zs = append(zs, redis.Z{Score: float64(ms), Member: u})
		}
		pipe.ZAddGT(ctx, a.key, zs...)
	}
	cut := a.now().Add(-a.window).UnixMilli()
	pipe.ZRemRangeByScore(ctx, a.key, "-inf", "("+strconv.FormatInt(cut, 10))
	pipe.Expire(ctx, a.key, 2*a.window+time.Minute)
	_, err := pipe.Exec(ctx)
	return wrap(err)
}

// flush runs flushOnce every FlushInterval until ctx ends, and once more
// then.
func (m *Manager) flush(ctx context.Context) {
	defer m.wg.Done()
	t := time.NewTicker(m.cfg.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = m.act.flushOnce(fctx)
			cancel()
			return
		case <-t.C:
			if err := m.act.flushOnce(ctx); err != nil && ctx.Err() == nil {
				m.log.Warn("liveops: flush active users", "err", err)
			}
		}
	}
}

// FlushActive writes the active users to Redis now (for tests and
// shutdown); without Redis it does nothing.
func (m *Manager) FlushActive(ctx context.Context) error {
	if m.cfg.Redis == nil {
		return nil
	}
	return m.act.flushOnce(ctx)
}
