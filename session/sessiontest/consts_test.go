package sessiontest_test

import (
	"testing"

	"github.com/madang-io/madang/internal/testredis"
	"github.com/madang-io/madang/session/sessiontest"
)

// The public constants are written out (go doc shows them so) and must
// stay what the internal helpers read.
func TestConstantsMatchTheHelpers(t *testing.T) {
	if sessiontest.EnvRedisAddr != testredis.EnvAddr || sessiontest.EnvRedisCluster != testredis.EnvCluster {
		t.Fatalf("sessiontest %q %q, testredis %q %q", sessiontest.EnvRedisAddr, sessiontest.EnvRedisCluster, testredis.EnvAddr, testredis.EnvCluster)
	}
}
