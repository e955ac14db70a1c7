package shardtest_test

import (
	"testing"

	"github.com/madang-io/madang/internal/testdb"
	"github.com/madang-io/madang/shard/shardtest"
)

// The public constants are written out (go doc shows them so) and must
// stay what the internal helpers use.
func TestConstantsMatchTheHelpers(t *testing.T) {
	if shardtest.EnvMySQLDSN != testdb.EnvMySQLDSN || shardtest.Latin1 != testdb.Latin1 || shardtest.MySQLMaxOpenConns != testdb.MySQLMaxOpenConns {
		t.Fatalf("shardtest constants %q %q %d, testdb %q %q %d", shardtest.EnvMySQLDSN, shardtest.Latin1, shardtest.MySQLMaxOpenConns,
			testdb.EnvMySQLDSN, testdb.Latin1, testdb.MySQLMaxOpenConns)
	}
}
