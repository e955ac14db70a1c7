package cli_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/madang-io/madang/examples/datatool/cli"
	"github.com/madang-io/madang/examples/datatool/datafile"
	"github.com/madang-io/madang/examples/gameserver/gamedata"
	"github.com/madang-io/madang/shard/shardtest"
)

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{nil, {"frob"}, {"build"}, {"build", "-version", "1"}, {"build", "-nope"}, {"diff", "a"}} {
		if err := cli.Run(args, io.Discard); !errors.Is(err, cli.ErrUsage) {
			t.Errorf("%q: err = %v, want ErrUsage", args, err)
		}
	}
}

func TestDiffRefusesCorruptFile(t *testing.T) {
	data, err := os.ReadFile("../example/gamedata/testdata/data.bytes")
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), data...)
	bad[len(bad)-1] ^= 1
	p := filepath.Join(t.TempDir(), "bad.bytes")
	os.WriteFile(p, bad, 0o644)
	err = cli.Run([]string{"diff", "../example/gamedata/testdata/data.bytes", p}, io.Discard)
	if !errors.Is(err, datafile.ErrChecksum) {
		t.Fatalf("err = %v, want ErrChecksum", err)
	}
}

// TestUpload builds the example game's sheets as a new version and uploads
// it to a game server's game data ops API (the real handler, behind a
// bearer token): the server keeps it; a wrong token, and a version that
// exists with other content, are refused with the server's answer; a file
// that does not decode is refused before anything is sent.
func TestUpload(t *testing.T) {
	ctx := context.Background()
	cat, err := gamedata.Open(ctx, gamedata.Default(), gamedata.Config{DB: shardtest.SQLite().NewDB(t), Initial: "1"})
	if err != nil {
		t.Fatal(err)
	}
	const token = "0123456789abcdef0123456789abcdef"
	var calls atomic.Int32
	inner := http.StripPrefix("/v1/gamedata", cat.Handler())
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, `{"error":"missing or wrong bearer token"}`, http.StatusUnauthorized)
			return
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	url := hs.URL + "/v1/gamedata"
	// A data file of the game's schema (the tests of a copy of this
	// example do not have the game's sheets): the embedded version 2
	// renamed 3, and version 1 renamed 2.
	dir := t.TempDir()
	rename := func(from, to string) string {
		t.Helper()
		data, err := fs.ReadFile(gamedata.Default(), "data_v"+from+".bytes")
		if err != nil {
			t.Fatal(err)
		}
		f, err := datafile.Decode(data)
		if err != nil {
			t.Fatal(err)
		}
		if data, err = datafile.Encode(f.Book, to); err != nil {
			t.Fatal(err)
		}
		name := filepath.Join(dir, from+"as"+to+".bytes")
		if err := os.WriteFile(name, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return name
	}
	v3 := rename("2", "3")

	var out strings.Builder
	err = cli.Run([]string{"upload", "-url", url, "-token", token, "-by", "ana", "-comment", "same as 2", "-file", v3}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "201 Created") || !strings.Contains(out.String(), `"uploaded_by": "ana"`) {
		t.Fatalf("answer printed:\n%s", out.String())
	}
	if vs := cat.VersionInfos(); len(vs) != 3 || vs[2].Version != "3" || vs[2].Comment != "same as 2" {
		t.Fatalf("versions %+v", vs)
	}
	// The same version again: a no-op (200).
	out.Reset()
	if err := cli.Run([]string{"upload", "-url", url, "-token", token, "-by", "ana", "-file", v3}, &out); err != nil || !strings.Contains(out.String(), "200 OK") {
		t.Fatalf("again: %v\n%s", err, out.String())
	}
	// Refusals: the server's answer is in the error.
	err = cli.Run([]string{"upload", "-url", url, "-token", "wrong", "-by", "ana", "-file", v3}, io.Discard)
	if !errors.Is(err, cli.ErrRefused) || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong token: %v", err)
	}
	err = cli.Run([]string{"upload", "-url", url, "-token", token, "-by", "ana", "-file", rename("1", "2")}, io.Discard)
	if !errors.Is(err, cli.ErrRefused) || !strings.Contains(err.Error(), "version_exists") {
		t.Fatalf("version 2 with other content: %v", err)
	}
	// Sheets are built, then sent: the example sheets are not the game's
	// schema.
	err = cli.Run([]string{"upload", "-url", url, "-token", token, "-by", "ana", "-version", "9", filepath.Join("..", "example", "sheets")}, io.Discard)
	if !errors.Is(err, cli.ErrRefused) || !strings.Contains(err.Error(), `"schema"`) {
		t.Fatalf("another schema: %v", err)
	}
	if vs := cat.VersionInfos(); len(vs) != 3 || cat.Current().Version != "1" {
		t.Fatalf("after refusals: versions %+v, current %s", vs, cat.Current().Version)
	}
	n := calls.Load()
	bad := filepath.Join(t.TempDir(), "bad.bytes")
	data, err := os.ReadFile(v3)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-1] ^= 1
	os.WriteFile(bad, data, 0o644)
	if err := cli.Run([]string{"upload", "-url", url, "-token", token, "-by", "ana", "-file", bad}, io.Discard); !errors.Is(err, datafile.ErrChecksum) || calls.Load() != n {
		t.Fatalf("corrupt file: %v (%d requests sent)", err, calls.Load()-n)
	}
	for _, args := range [][]string{{"upload"}, {"upload", "-url", url, "-token", token, "-by", "a"}, {"upload", "-url", url, "-token", token, "-by", "a", "-file", bad, "-version", "3"}} {
		if err := cli.Run(args, io.Discard); !errors.Is(err, cli.ErrUsage) {
			t.Errorf("%q: %v, want ErrUsage", args, err)
		}
	}
}
