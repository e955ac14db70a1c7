package gamedata_test

import (
	"errors"
	"io/fs"
	"testing"
	"testing/fstest"

	"github.com/madang-io/madang/examples/gameserver/gamedata"
)

// FuzzLoadVersion loads version "1" of the default set with shop.json
// replaced by arbitrary bytes: it loads or fails with a *ValidationError,
// never panics, and a loaded shop only names existing items.
func FuzzLoadVersion(f *testing.F) {
	base := fstest.MapFS{}
	for _, name := range []string{gamedata.FileItems, gamedata.FileDungeons, gamedata.FileShop, gamedata.FileProducts, gamedata.FileStrings} {
		data, err := fs.ReadFile(gamedata.Default(), "1/"+name)
		if err != nil {
			f.Fatal(err)
		}
		base["1/"+name] = &fstest.MapFile{Data: data}
	}
	f.Add(base["1/"+gamedata.FileShop].Data)
	for _, seed := range []string{`[]`, `[{}]`, `{}`, `[{"item_id":"a","gold":-1}]`, `[{"item_id":"a","gold":1,"items":[{"item_id":"potion","count":9e99}]}]`, `[null]`, `[`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, shop []byte) {
		fsys := fstest.MapFS{}
		for k, v := range base {
			fsys[k] = v
		}
		fsys["1/"+gamedata.FileShop] = &fstest.MapFile{Data: shop}
		set, err := gamedata.LoadVersion(fsys, "1")
		var ve *gamedata.ValidationError
		if err != nil {
			if !errors.As(err, &ve) || len(ve.Problems) == 0 {
				t.Fatalf("error %v is not a *ValidationError with problems", err)
			}
			return
		}
		for _, it := range set.Shop {
			for _, c := range it.Items {
				if _, ok := set.Item(c.ItemID); !ok || c.Count <= 0 {
					t.Fatalf("loaded shop entry %+v with a bad grant", it)
				}
			}
		}
	})
}
