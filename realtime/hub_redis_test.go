package realtime_test

import (
	"testing"

	"github.com/madang-io/madang/internal/testredis"
	"github.com/redis/go-redis/v9"
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
	store := redisSessions(t, c, prefix)
	bs := newRedisBrokers(t, c, prefix, 2)
	testTwoHubs(t, store, bs[0], bs[1])
}
