package shard_test

import (
	"fmt"
	"testing"

	"github.com/madang-io/madang/shard"
)

func TestMySQLDSN(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		// Safe: added, the rest of the DSN as written.
		{"root@tcp(127.0.0.1:3306)/test", "root@tcp(127.0.0.1:3306)/test?interpolateParams=true"},
		{"root@tcp(127.0.0.1:3306)/test?parseTime=true", "root@tcp(127.0.0.1:3306)/test?parseTime=true&interpolateParams=true"},
		{"u:p?/x@tcp(h:1)/db?charset=utf8mb4,utf8", "u:p?/x@tcp(h:1)/db?charset=utf8mb4,utf8&interpolateParams=true"},
		{"u@tcp(h:1)/db?collation=utf8mb4_bin", "u@tcp(h:1)/db?collation=utf8mb4_bin&interpolateParams=true"},
		{"u@tcp(h:1)/db?charset=latin1", "u@tcp(h:1)/db?charset=latin1&interpolateParams=true"},
		// A template keeps its placeholders.
		{"game:s@tcp({host}:{port})/{db}?parseTime=true", "game:s@tcp({host}:{port})/{db}?parseTime=true&interpolateParams=true"},
		// The caller decided.
		{"u@tcp(h:1)/db?interpolateParams=false", "u@tcp(h:1)/db?interpolateParams=false"},
		{"u@tcp(h:1)/db?interpolateParams=true", "u@tcp(h:1)/db?interpolateParams=true"},
		// Unsafe or unknown connection character sets: unchanged.
		{"u@tcp(h:1)/db?charset=sjis", "u@tcp(h:1)/db?charset=sjis"},
		{"u@tcp(h:1)/db?charset=utf8mb4,gbk", "u@tcp(h:1)/db?charset=utf8mb4,gbk"},
		{"u@tcp(h:1)/db?collation=big5_chinese_ci", "u@tcp(h:1)/db?collation=big5_chinese_ci"},
		{"u@tcp(h:1)/db?collation=cp932_bin", "u@tcp(h:1)/db?collation=cp932_bin"},
		{"u@tcp(h:1)/db?character_set_client=gbk", "u@tcp(h:1)/db?character_set_client=gbk"},
	} {
		got, err := shard.MySQLDSN(c.in)
		if err != nil || got != c.want {
			t.Errorf("MySQLDSN(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	if _, err := shard.MySQLDSN("no slash"); err == nil {
		t.Error("MySQLDSN of an invalid DSN: no error")
	}
}

func ExampleMySQLDSN() {
	dsn, err := shard.MySQLDSN("game:secret@tcp(10.0.0.5:3306)/madang?parseTime=true")
	if err != nil {
		panic(err)
	}
	fmt.Println(dsn)
	// A DSN that decides for itself keeps its choice.
	dsn, _ = shard.MySQLDSN("game:secret@tcp(10.0.0.5:3306)/madang?interpolateParams=false")
	fmt.Println(dsn)
	// Output:
	// game:secret@tcp(10.0.0.5:3306)/madang?parseTime=true&interpolateParams=true
	// game:secret@tcp(10.0.0.5:3306)/madang?interpolateParams=false
}
