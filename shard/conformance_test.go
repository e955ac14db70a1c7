package shard_test

import (
	"testing"

	"github.com/madang-io/madang/shard/shardtest"
)

func TestBackends(t *testing.T) {
	for _, b := range shardtest.Backends() {
		t.Run(b.Name, func(t *testing.T) { shardtest.RunBackendTests(t, b) })
	}
}
