package realtime

import (
	"context"
	"time"

	"github.com/madang-io/madang/session"
)

// chatAllow counts one chat message of the user in Config.Limiter (per
// user, whatever connection or node it came from): rate_limited with the
// retry hint over Config.ChatRate/ChatBurst. A limiter failure lets the
// message through (fail open), counted and logged at most once a minute.
func (h *Hub) chatAllow(ctx context.Context, userKey int64) error {
	r, err := h.cfg.Limiter.Allow(ctx, userKey, session.Limit{Name: ChatLimitName, Rate: h.cfg.ChatRate, Burst: h.cfg.ChatBurst})
	if err != nil {
		h.stats.limiterErrors.Add(1)
		now := time.Now().UnixNano()
		if last := h.stats.limiterLogged.Load(); now-last > int64(time.Minute) && h.stats.limiterLogged.CompareAndSwap(last, now) {
			h.log.Warn("realtime: chat rate limiter failed; chat passes unlimited", "err", err)
		}
		return nil
	}
	if !r.Allowed {
		e := session.RateLimited(r.RetryAfter)
		e.Message = "realtime: chat rate limit"
		return e
	}
	return nil
}

// connsElsewhere counts the user's connections on other nodes for
// Config.MaxUserConns, from a Presence shared with them (Config.Presence);
// 0 without one, or when Presence fails (fail open).
func (h *Hub) connsElsewhere(userKey int64) int {
	if h.cfg.Presence == nil || h.cfg.MaxUserConns <= 0 {
		return 0
	}
	ctx, cancel := context.WithTimeout(h.ctx, h.cfg.HandshakeTimeout)
	defer cancel()
	conns, err := h.presence.p.Where(ctx, userKey)
	if err != nil {
		h.log.Warn("realtime: presence lookup for the connection cap failed; not counting other nodes", "err", err)
		return 0
	}
	n := 0
	for _, pc := range conns {
		if pc.Node != h.presence.node {
			n++
		}
	}
	return n
}
