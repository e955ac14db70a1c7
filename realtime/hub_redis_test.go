package realtime_test

import (
	"testing"

	"github.com/madang-io/madang/internal/testredis"
	"github.com/redis/go-redis/v9"

	"github.com/madang-io/madang/realtime"
	"github.com/madang-io/madang/session"
)

// Two hubs sharing Redis — sessions in a RedisStore, channels through a
// RedisBroker each — carry chat, whispers, pushes, kicks and revocations
// across nodes, on one Redis node and on the local Cluster.
func TestTwoHubsOnRedis(t *testing.T) {
	testTwoHubsOn(t, testredis.Client(t))
}

func TestTwoHubsOnRedisCluster(t *testing.T) {
	testTwoHubsOn(t, testredis.Cluster(t))
}

func testTwoHubsOn(t *testing.T, c redis.UniversalClient) {
	prefix := testredis.Prefix(t, c)
	store, err := session.NewRedisStore(session.Single(c), session.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	var brokers [2]realtime.Broker
	for i := range brokers {
		b, err := realtime.NewRedisBroker(c, realtime.RedisBrokerConfig{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		brokers[i] = b
		t.Cleanup(func() { _ = b.Close() }) // after the hubs' Shutdown (cleanups run last first)
	}
	testTwoHubs(t, store, brokers[0], brokers[1])
}
