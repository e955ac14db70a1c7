package realtime_test

import (
	"testing"

	"github.com/madang-io/madang/realtime"
	"github.com/madang-io/madang/realtime/realtimetest"
)

// The memory broker passes the same conformance suite as the Redis broker:
// two nodes (peers) sharing one in-process backend.
func TestMemoryBrokerConformance(t *testing.T) {
	realtimetest.RunBrokerTests(t, func(t *testing.T) []realtime.Broker {
		// Closing the root closes the shared backend, so the suite's nodes
		// are two peers and the root is closed when the test ends.
		root := realtime.NewMemoryBroker(realtime.MemoryBrokerConfig{})
		t.Cleanup(func() { _ = root.Close() })
		return []realtime.Broker{root.Peer(), root.Peer()}
	})
}
