package realtime_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/madang-io/madang/internal/testredis"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/realtime"
	"github.com/madang-io/madang/session"
)

// BenchmarkChatPublish measures the hub's chat command path from one
// websocket client: an rt.publish on a channel the client subscribes to,
// one at a time (the reply awaited, then the client's own push read), so
// an op is one command's round trip through the hub. Session stores memory
// and (with MADANG_REDIS_ADDR) Redis; XOR frames against authenticated
// frames, whose counter the hub accepts in the session store (one Redis
// round trip per frame with the Redis store). ChatRate is raised so the
// chat limit does not pace the loop.
func BenchmarkChatPublish(b *testing.B) {
	stores := []struct {
		name string
		open func(b *testing.B) session.Store
	}{
		{"memory", func(b *testing.B) session.Store {
			s := session.NewMemoryStore(session.Config{})
			b.Cleanup(func() { _ = s.Close() })
			return s
		}},
		{"redis", func(b *testing.B) session.Store {
			c := testredis.Client(b)
			return redisSessions(b, c, testredis.Prefix(b, c))
		}},
	}
	for _, st := range stores {
		for _, mode := range []protocol.Mode{protocol.ModeXOR, protocol.ModeAuthenticated} {
			b.Run(st.name+"/"+mode.String(), func(b *testing.B) {
				store := st.open(b)
				codec := protocol.Config{XORKey: []byte("bench-xor-key")}
				h, err := realtime.NewHub(store, realtime.Config{Codec: codec, ChatRate: 1e9, ChatBurst: 1 << 30, CommandRate: 1e9, CommandBurst: 1 << 30})
				if err != nil {
					b.Fatal(err)
				}
				srv := httptest.NewServer(h)
				b.Cleanup(func() {
					ctx, cancel := context.WithTimeout(context.Background(), wait)
					defer cancel()
					_ = h.Shutdown(ctx)
					srv.Close()
				})
				sess, err := store.Create(context.Background(), session.CreateParams{UserKey: 4242})
				if err != nil {
					b.Fatal(err)
				}
				opts := &realtime.DialOptions{Mode: mode, Codec: codec}
				if mode == protocol.ModeAuthenticated {
					if opts.Keys, err = sess.Keys(); err != nil {
						b.Fatal(err)
					}
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*wait)
				defer cancel()
				c, err := realtime.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), sess.Token, opts)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				if _, err := c.Subscribe(ctx, "world.0", nil); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					if _, err := c.Publish(ctx, "world.0", "gg"); err != nil {
						b.Fatal(err)
					}
					if _, err := c.Next(ctx); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
