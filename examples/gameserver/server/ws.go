package server

import (
	"context"
	"errors"
	"log/slog"

	"github.com/redis/go-redis/v9"

	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/realtime"
	"github.com/madang-io/madang/session"
)

// WSPath is where the realtime hub is mounted on the game listener.
const WSPath = "/ws"

// newRealtimeHub builds the websocket hub the game server mounts on WSPath:
// sessions from the server's own store, game commands through the same
// handler chain as HTTP, the same XOR key, the same decode budget. With Redis, channels travel
// through a RedisBroker under the server's key prefix, so several game
// servers (and realtime nodes sharing the sessions) share chat and pushes;
// without, the hub's own memory broker serves this one process. The
// returned broker (nil in memory mode) is closed by the caller after the
// hub's Shutdown. cfg carries the per-user limits (Limiter, ChatRate,
// ChatBurst, MaxUserConns) and the decode budget; the rest is set here.
func newRealtimeHub(cfg realtime.Config, sessions session.Store, chain protocol.Handler, xorKey []byte, rdb redis.UniversalClient, redisPrefix string, dev bool, log *slog.Logger) (*realtime.Hub, realtime.Broker, error) {
	cfg.Handler = chain
	cfg.Codec = protocol.Config{XORKey: xorKey}
	cfg.RefusePlain = !dev
	cfg.Logger = log
	var broker *realtime.RedisBroker
	if rdb != nil {
		var err error
		if broker, err = realtime.NewRedisBroker(rdb, realtime.RedisBrokerConfig{Prefix: redisPrefix + "rt:", Logger: log}); err != nil {
			return nil, nil, err
		}
		cfg.Broker = broker
	}
	hub, err := realtime.NewHub(sessions, cfg)
	if err != nil {
		if broker != nil {
			_ = broker.Close()
		}
		return nil, nil, err
	}
	if broker == nil {
		return hub, nil, nil
	}
	return hub, broker, nil
}

// shutdownHub tells the websocket clients the server is going away and
// waits for their connections to end (bounded by ctx), then closes the
// hub's Redis broker. It runs once: from ServeAll before the listeners shut
// down, or from Close for a server that never served.
func (s *Server) shutdownHub(ctx context.Context) error {
	var err error
	s.hubOnce.Do(func() {
		if s.hub == nil {
			return
		}
		err = s.hub.Shutdown(ctx)
		if s.hubBroker != nil {
			err = errors.Join(err, s.hubBroker.Close())
		}
	})
	return err
}
