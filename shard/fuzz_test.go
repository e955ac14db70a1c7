package shard_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/madang-io/madang/shard"
)

// FuzzReadStaticDirectory: any input gives a valid directory or an
// ErrInvalid error, never a panic; a directory it accepts routes every key
// of every range to that range's database.
func FuzzReadStaticDirectory(f *testing.F) {
	f.Add([]byte(`[{"db_id": 1, "db_name": "gamedb01", "driver": "mysql", "host": "h", "port": 3306, "first_key": 10000000, "last_key": 19999999}]`))
	f.Add([]byte(`[{"db_id": 1, "driver": "sqlite", "dsn": "file:a.db", "first_key": 1, "last_key": 1, "state": "read_only", "weight": 3},
	  {"db_id": 2, "driver": "sqlite", "dsn": "file:b.db", "first_key": 2, "last_key": 9223372036854775807, "replicas": ["file:c.db"]}]`))
	f.Add([]byte(`[{"db_id": 1, "driver": "mysql", "db_name": "a", "first_key": 5, "last_key": 4}]`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir, err := shard.ReadStaticDirectory(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, shard.ErrInvalid) {
				t.Fatalf("error not ErrInvalid: %v", err)
			}
			return
		}
		dbs, _ := dir.Databases(context.Background())
		r, err := shard.NewRouter(context.Background(), shard.Config{Directory: dir, RefreshInterval: -1, DSNTemplate: "{host}:{port}/{db}"})
		if err != nil {
			if !errors.Is(err, shard.ErrInvalid) { // e.g. a replica that is not host:port
				t.Fatalf("router over an accepted directory: %v", err)
			}
			return
		}
		defer r.Close()
		for _, d := range dbs {
			for _, k := range []int64{d.FirstKey, d.LastKey, d.FirstKey + (d.LastKey-d.FirstKey)/2} {
				if id, ok := r.LookupID(k); !ok || id != d.ID {
					t.Fatalf("key %d of db %d routed to %d %v", k, d.ID, id, ok)
				}
			}
		}
	})
}

// FuzzSplitStatements: no statement is empty, none starts a comment line,
// and none keeps a trailing ';' at a line end.
func FuzzSplitStatements(f *testing.F) {
	f.Add("CREATE TABLE a (id INT);\nCREATE TABLE b (id INT);\n")
	f.Add("-- c\n;\n;;\nSELECT 1\n")
	f.Add("INSERT INTO t VALUES ('x;');\r\n")
	f.Fuzz(func(t *testing.T, body string) {
		for _, s := range shard.SplitStatements(body) {
			if strings.TrimSpace(s) == "" {
				t.Fatalf("empty statement from %q", body)
			}
			for line := range strings.Lines(s) {
				if strings.HasSuffix(strings.TrimSpace(line), ";") && !strings.HasSuffix(line, "\n") {
					t.Fatalf("statement %q ends in ';'", s)
				}
			}
		}
	})
}
