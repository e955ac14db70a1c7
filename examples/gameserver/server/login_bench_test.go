package server

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/session/sessiontest"
	"github.com/madang-io/madang/shard/shardtest"
)

// stormWorkers is how many first logins BenchmarkLoginStorm sends at once.
const stormWorkers = 64

// BenchmarkLoginStorm sends b.N first logins (auth.guest with new device
// ids, each one iteration) from stormWorkers clients at once over loopback
// HTTP through the whole handler chain of a Redis + MariaDB server (random
// database and key prefix, dropped after): a login storm. Each client sends
// once (MaxAttempts 1), so a refused login counts as refused instead of
// being retried. Side by side: "limit" is the default login limit
// (Config.MaxLogins), "nolimit" none. Reported: logins answered OK per
// second, the share refused with rate_limited, and the OK logins' p50 and
// p99. Needs MADANG_REDIS_ADDR and MADANG_MYSQL_DSN.
func BenchmarkLoginStorm(b *testing.B) {
	if os.Getenv(sessiontest.EnvRedisAddr) == "" || os.Getenv(shardtest.EnvMySQLDSN) == "" {
		b.Skipf("set %s and %s", sessiontest.EnvRedisAddr, shardtest.EnvMySQLDSN)
	}
	for _, mode := range []struct {
		name string
		max  int
	}{{"nolimit", -1}, {"limit", 0}} {
		b.Run(mode.name, func(b *testing.B) {
			cfg := Config{XORKey: testXORKey, LiveOpsPoll: -1, MaxLogins: mode.max}
			cfg.MySQLDSN = shardtest.MySQL().NewDSN(b)
			benchDropGameDBs(b, cfg.MySQLDSN, EmbeddedGameDBs)
			cfg.RedisAddr = os.Getenv(sessiontest.EnvRedisAddr)
			cfg.RedisPrefix = sessiontest.RedisPrefix(b, sessiontest.Redis(b))
			srv, err := New(context.Background(), cfg, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { srv.Close() })
			base := benchServe(b, srv.Handler())
			hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: stormWorkers}}
			b.Cleanup(hc.CloseIdleConnections)
			run := fmt.Sprintf("%x", time.Now().UnixNano())
			var next, refused atomic.Int64
			var mu sync.Mutex
			var lat []time.Duration
			var failed atomic.Pointer[error]
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for range stormWorkers {
				wg.Go(func() {
					c, err := protocol.NewClient(protocol.ClientConfig{
						Transport: &protocol.HTTPTransport{URL: base + protocol.DefaultHTTPPath, Client: hc},
						Codec:     protocol.Config{XORKey: []byte(testXORKey)}, Mode: protocol.ModeXOR, MaxAttempts: 1,
					})
					if err != nil {
						failed.CompareAndSwap(nil, &err)
						return
					}
					for {
						i := next.Add(1)
						if i > int64(b.N) || failed.Load() != nil {
							return
						}
						in := game.GuestLogin{DeviceID: fmt.Sprintf("storm-%s-%d", run, i), Platform: "android", ClientVersion: "1.0.0.0"}
						t0 := time.Now()
						_, err := c.Call(context.Background(), game.CmdGuestLogin, in, nil)
						d := time.Since(t0)
						switch protocol.CodeOf(err) {
						case protocol.CodeOK:
							mu.Lock()
							lat = append(lat, d)
							mu.Unlock()
						case protocol.CodeRateLimited:
							refused.Add(1)
						default:
							failed.CompareAndSwap(nil, &err)
							return
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			if e := failed.Load(); e != nil {
				b.Fatal(*e)
			}
			b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "ok-logins/s")
			b.ReportMetric(100*float64(refused.Load())/float64(b.N), "refused-%")
			if len(lat) > 0 {
				sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
				b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50-ms")
				b.ReportMetric(float64(lat[len(lat)*99/100].Milliseconds()), "p99-ms")
			}
		})
	}
}
