package game_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/madang-io/madang/examples/datatool/sheet"
	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/examples/gameserver/gamedata"
	"github.com/madang-io/madang/protocol"
)

// withEggVersion returns the default game data plus version "3": version 2
// with one more item, dragon_egg, built from the sheets of version 2.
func withEggVersion(t *testing.T) fs.FS {
	t.Helper()
	out := fstest.MapFS{}
	for _, name := range []string{"data_v1.bytes", "data_v2.bytes"} {
		data, err := fs.ReadFile(gamedata.Default(), name)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = &fstest.MapFile{Data: data}
	}
	dir := filepath.Join("..", "gamedata", "sheets", "2")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var in []sheet.Input
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == "items.csv" {
			data = append(data, "dragon_egg,Dragon egg\n"...)
		}
		in = append(in, sheet.Input{Name: e.Name(), R: bytes.NewReader(data)})
	}
	data, _, err := gamedata.Build("3", in...)
	if err != nil {
		t.Fatal(err)
	}
	out["data_v3.bytes"] = &fstest.MapFile{Data: data}
	return out
}

// TestMailItemsFollowPublishedGameData: an operator's mail attachment is
// checked against the published game-data version, not the built-in item
// list: an item that only a newly published version has is accepted (and
// claimed into the inventory); before that publish, and for an item no
// version has, SendMail refuses with CodeUnknownItem (ErrUnknownItem,
// ErrBadMail) and sends nothing.
func TestMailItemsFollowPublishedGameData(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			var cat *gamedata.Catalog
			r := newRigWith(t, b, func(common *sql.DB, cfg *game.Config) {
				var err error
				cat, err = gamedata.Open(ctx, withEggVersion(t), gamedata.Config{DB: common, Initial: "2"})
				if err != nil {
					t.Fatal(err)
				}
				cfg.Data = game.FromCatalog(cat)
			})
			u := r.login("egg-collector")
			egg := game.Mail{Key: "egg-1", Title: "An egg", Items: []game.ItemCount{{ItemID: "dragon_egg", Count: 1}}}
			refused := func(m game.Mail, what string) {
				t.Helper()
				_, err := r.g.SendMail(ctx, u, m)
				if !errors.Is(err, game.ErrBadMail) || !errors.Is(err, game.ErrUnknownItem) || protocol.CodeOf(err) != game.CodeUnknownItem {
					t.Fatalf("%s: %v (code %v), want CodeUnknownItem", what, err, protocol.CodeOf(err))
				}
			}
			refused(egg, "dragon_egg before version 3 is published")

			if err := cat.Publish(ctx, "3"); err != nil {
				t.Fatal(err)
			}
			id, err := r.g.SendMail(ctx, u, egg)
			if err != nil || id <= 0 {
				t.Fatalf("dragon_egg on the published version 3: id %d, %v", id, err)
			}
			refused(game.Mail{Key: "bad", Title: "Nothing", Items: []game.ItemCount{{ItemID: "unicorn", Count: 1}}}, "an item of no version")

			var res game.ClaimResult
			r.ok(u, game.CmdMailClaimAll, nil, &res)
			found := false
			for _, it := range r.load(u).Items {
				found = found || (it.ItemID == "dragon_egg" && it.Count == 1)
			}
			if !found {
				t.Fatalf("claimed %+v; inventory lacks the egg", res)
			}
			var list game.MailList
			r.ok(u, game.CmdMailList, nil, &list)
			if len(list.Mails) != 0 {
				t.Fatalf("refused mails were sent: %+v", list.Mails)
			}
		})
	}
}
