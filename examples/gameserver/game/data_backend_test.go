package game_test

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/examples/gameserver/gamedata"
	"github.com/madang-io/madang/protocol"
)

// withEggVersion returns the default game data plus version "3": version 2
// with one more item, dragon_egg.
func withEggVersion(t *testing.T) fs.FS {
	t.Helper()
	out := fstest.MapFS{}
	err := fs.WalkDir(gamedata.Default(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(gamedata.Default(), path)
		if err != nil {
			return err
		}
		out[path] = &fstest.MapFile{Data: data}
		if dir, name, ok := strings.Cut(path, "/"); ok && dir == "2" {
			if name == gamedata.FileItems {
				data = []byte(`[{"item_id":"potion","title":"Healing potion"},{"item_id":"elixir","title":"Stamina elixir"},` +
					`{"item_id":"key_bronze","title":"Bronze key"},{"item_id":"dragon_egg","title":"Dragon egg"}]`)
			}
			out["3/"+name] = &fstest.MapFile{Data: data}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
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
