package gamedata_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/madang-io/madang/examples/datatool/datafile"
	"github.com/madang-io/madang/examples/datatool/sheet"
	"github.com/madang-io/madang/examples/gameserver/gamedata"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/session/sessiontest"
	"github.com/madang-io/madang/shard/shardtest"
)

// buildVersion builds version from sheets/2 with each file's extra rows
// appended (by base name, e.g. "items.csv").
func buildVersion(t *testing.T, version string, extra map[string]string) []byte {
	t.Helper()
	in := sheetInputs(t, filepath.Join("sheets", "2"))
	for i := range in {
		if add, ok := extra[filepath.Base(in[i].Name)]; ok {
			in[i].R = io.MultiReader(in[i].R, strings.NewReader(add))
		}
	}
	data, _, err := gamedata.Build(version, in...)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestUploadVersions: an uploaded version is kept in the common database
// with who, when, why and its hash; every catalog on the database can
// serve, publish and diff it; uploads that fail validation or clash with a
// stored version change nothing.
func TestUploadVersions(t *testing.T) {
	for _, b := range shardtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			db := b.NewDB(t)
			now := time.UnixMilli(1_800_000_000_000)
			a, err := gamedata.Open(ctx, gamedata.Default(), gamedata.Config{DB: db, Initial: "1", Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			other, err := gamedata.Open(ctx, gamedata.Default(), gamedata.Config{DB: db, Initial: "1"})
			if err != nil {
				t.Fatal(err)
			}
			v3 := buildVersion(t, "3", map[string]string{"items.csv": "dragon_egg,Dragon egg\n", "shop_items.csv": "elixir_pack,dragon_egg,1\n"})
			var stored int
			countRows := func() int {
				t.Helper()
				var n int
				if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM gamedata_versions").Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}

			// Refused uploads: nothing stored, nothing served changes.
			flip := func(at int, x byte) []byte { d := bytes.Clone(v3); d[at] ^= x; return d }
			bad := buildVersionBad(t)
			for _, c := range []struct {
				name    string
				data    []byte
				by, cmt string
				want    error
			}{
				{"hash", flip(len(v3)-1, 1), "ana", "", gamedata.ErrChecksum},
				{"newer format", flip(4, 8), "ana", "", gamedata.ErrNewerFormat},
				{"not a data file", []byte("hello"), "ana", "", gamedata.ErrNotDataFile},
				{"no uploader", v3, "", "", gamedata.ErrBadUpload},
				{"long comment", v3, "ana", strings.Repeat("x", gamedata.MaxCommentLen+1), gamedata.ErrBadUpload},
				{"embedded 2 with other content", buildVersion(t, "2", map[string]string{"items.csv": "dragon_egg,Dragon egg\n"}), "ana", "", gamedata.ErrVersionExists},
			} {
				if _, _, err := a.Upload(ctx, c.data, c.by, c.cmt); !errors.Is(err, c.want) {
					t.Errorf("%s: %v, want %v", c.name, err, c.want)
				}
			}
			var ve *gamedata.ValidationError
			if _, _, err := a.Upload(ctx, bad, "ana", ""); !errors.As(err, &ve) {
				t.Errorf("game rules: %v", err)
			}
			if n := countRows(); n != 0 || len(a.VersionInfos()) != 2 || a.Current().Version != "1" {
				t.Fatalf("after refusals: %d rows, versions %v, current %s", n, a.VersionInfos(), a.Current().Version)
			}
			// The embedded version uploaded again: a no-op.
			v2, _ := fs.ReadFile(gamedata.Default(), "data_v2.bytes")
			if info, created, err := a.Upload(ctx, v2, "ana", ""); err != nil || created || info.Source != "embedded" {
				t.Fatalf("embedded again: %+v %v %v", info, created, err)
			}

			info, created, err := a.Upload(ctx, v3, "ana", "dragon eggs in the elixir pack")
			if err != nil || !created {
				t.Fatalf("upload: %v %v", created, err)
			}
			stored++
			if info.Version != "3" || len(info.Hash) != 64 || info.UploadedBy != "ana" || info.UploadedAt != now.UnixMilli() ||
				info.Comment != "dragon eggs in the elixir pack" || info.Size != int64(len(v3)) || info.Source != "upload" {
				t.Fatalf("info %+v", info)
			}
			if a.Current().Version != "1" {
				t.Fatal("an upload published")
			}
			// Again: a no-op; other content under the same name: refused.
			if again, created, err := a.Upload(ctx, v3, "bob", "again"); err != nil || created || again != info {
				t.Fatalf("same upload again: %+v %v %v", again, created, err)
			}
			v3b := buildVersion(t, "3", map[string]string{"items.csv": "dragon_egg,Dragon egg\n"})
			if _, _, err := a.Upload(ctx, v3b, "bob", ""); !errors.Is(err, gamedata.ErrVersionExists) {
				t.Fatalf("other content as 3: %v", err)
			}
			if n := countRows(); n != stored {
				t.Fatalf("%d rows, want %d", n, stored)
			}

			// Another server publishes it without a refresh of its own
			// first, and serves it.
			if err := other.Publish(ctx, "3"); err != nil {
				t.Fatal(err)
			}
			if it, ok := other.Current().ShopItem("elixir_pack"); !ok || len(it.Items) != 2 {
				t.Fatalf("elixir_pack in 3: %+v", it)
			}
			vs := other.VersionInfos()
			if len(vs) != 3 || vs[2] != info {
				t.Fatalf("versions on the other server: %+v", vs)
			}
			if _, err := a.Refresh(ctx); err != nil || a.Current().Version != "3" {
				t.Fatalf("refresh: %v, current %s", err, a.Current().Version)
			}
			// Diff, field by field.
			d, err := a.Diff("2", "3")
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range d {
				got = append(got, e.Kind+" "+e.Table+"["+e.Key+"]")
			}
			if strings.Join(got, ",") != "+row items[dragon_egg],+row shop_items[#5]" {
				t.Fatalf("diff 2→3: %v", got)
			}
			d, err = a.Diff("1", "2")
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, e := range d {
				if e.Kind == "~row" && e.Table == "shop" && e.Key == "gold_small" {
					found = len(e.Fields) == 2 && e.Fields[0] == gamedata.FieldChange{Column: "title", Old: "Pouch of gold", New: "Pouch of gold (sale)"} &&
						e.Fields[1] == gamedata.FieldChange{Column: "gems", Old: "10", New: "8"}
				}
			}
			if !found {
				t.Fatalf("diff 1→2 %+v: no field-by-field change of shop[gold_small]", d)
			}
			if _, err := a.Diff("1", "9"); !errors.Is(err, gamedata.ErrUnknownVersion) {
				t.Fatalf("diff unknown: %v", err)
			}
			// A new catalog (a restart) loads the uploaded version from the
			// database and keeps it published.
			again, err := gamedata.Open(ctx, gamedata.Default(), gamedata.Config{DB: db})
			if err != nil || again.Current().Version != "3" {
				t.Fatalf("reopened: %v", err)
			}
		})
	}
}

// buildVersionBad returns a data file that the data tool builds (its
// checks pass) but that breaks the game's rules: an item granted twice.
func buildVersionBad(t *testing.T) []byte {
	t.Helper()
	in := sheetInputs(t, filepath.Join("sheets", "2"))
	for i := range in {
		if filepath.Base(in[i].Name) == "shop_items.csv" {
			in[i].R = io.MultiReader(in[i].R, strings.NewReader("elixir_pack,elixir,1\n"))
		}
	}
	book, err := sheet.Read(sheet.Options{}, in...)
	if err != nil {
		t.Fatal(err)
	}
	data, err := datafile.Encode(book, "4")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestRedisNotification: with Redis, a change on one server reaches another
// server at once, by pub/sub: the other server does not poll.
func TestRedisNotification(t *testing.T) {
	rdb := sessiontest.Redis(t)
	channel := sessiontest.RedisPrefix(t, rdb) + "gamedata"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db := shardtest.SQLite().NewDB(t)
	open := func() *gamedata.Catalog {
		c, err := gamedata.Open(ctx, gamedata.Default(), gamedata.Config{DB: db, Initial: "1", Redis: rdb, Channel: channel})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b := open(), open()
	done := make(chan struct{})
	go func() { defer close(done); b.Run(ctx, -1) }() // notifications only
	defer func() { cancel(); <-done }()
	waitFor(t, "the subscription", func() bool {
		n, err := rdb.PubSubNumSub(ctx, channel).Result()
		return err == nil && n[channel] == 1
	})
	start := time.Now()
	if err := a.Publish(ctx, "2"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the publish on the other server", func() bool { return b.Current().Version == "2" })
	t.Logf("a publish reached the other server in %v", time.Since(start))
	if b.Notifications() < 1 {
		t.Fatal("no notification counted")
	}
	if err := a.MapClient(ctx, "1.1", "1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the mapping on the other server", func() bool { return b.ForClient("1.1").Version == "1" })
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPinnedRequest: a request pinned by the Pin middleware sees the
// version published when it started, even when a publish happens while it
// runs; the next request sees the new one.
func TestPinnedRequest(t *testing.T) {
	ctx := context.Background()
	c, err := gamedata.Open(ctx, gamedata.Default(), gamedata.Config{DB: shardtest.SQLite().NewDB(t), Initial: "1"})
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	h := c.Pin()(protocol.HandlerFunc(func(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
		seen = append(seen, c.ForClientIn(ctx, "1.0").Version+c.CurrentIn(ctx).Version)
		if req.Command == "publish" {
			if err := c.Publish(ctx, "2"); err != nil {
				return nil, err
			}
			if c.Current().Version != "2" {
				t.Error("not published")
			}
			seen = append(seen, c.ForClientIn(ctx, "1.0").Version+c.CurrentIn(ctx).Version)
		}
		return &protocol.Response{}, nil
	}))
	for _, cmd := range []string{"publish", "read"} {
		if _, err := h.Serve(ctx, &protocol.Request{Command: cmd}); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Join(seen, ",") != "11,11,22" {
		t.Fatalf("versions seen %v, want 11,11,22", seen)
	}
}

// TestConcurrentUploads: servers uploading the same file at once all
// succeed, and exactly one of them creates the version.
func TestConcurrentUploads(t *testing.T) {
	for _, b := range shardtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			db := b.NewDB(t)
			var cats []*gamedata.Catalog
			for range 2 {
				c, err := gamedata.Open(ctx, gamedata.Default(), gamedata.Config{DB: db, Initial: "1"})
				if err != nil {
					t.Fatal(err)
				}
				cats = append(cats, c)
			}
			v3 := buildVersion(t, "3", map[string]string{"items.csv": "dragon_egg,Dragon egg\n"})
			var wg sync.WaitGroup
			var created atomic.Int32
			for i := range 6 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, c, err := cats[i%2].Upload(ctx, v3, "ana", "")
					if err != nil {
						t.Error(err)
					}
					if c {
						created.Add(1)
					}
				}()
			}
			wg.Wait()
			if created.Load() != 1 {
				t.Fatalf("%d uploads created the version", created.Load())
			}
		})
	}
}

// TestRedisDownPollingDelivers: with Redis unreachable, a change still
// commits (the notification fails, logged) and reaches the other server by
// its poll.
func TestRedisDownPollingDelivers(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: time.Second})
	defer dead.Close()
	db := shardtest.SQLite().NewDB(t)
	var cats []*gamedata.Catalog
	for range 2 {
		c, err := gamedata.Open(ctx, gamedata.Default(), gamedata.Config{DB: db, Initial: "1", Redis: dead, Channel: "gamedata-test"})
		if err != nil {
			t.Fatal(err)
		}
		cats = append(cats, c)
	}
	done := make(chan struct{})
	go func() { defer close(done); cats[1].Run(ctx, 20*time.Millisecond) }()
	defer func() { cancel(); <-done }()
	if err := cats[0].Publish(ctx, "2"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the poll", func() bool { return cats[1].Current().Version == "2" })
}
