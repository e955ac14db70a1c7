package gamedata_test

import (
	"crypto/sha256"
	"errors"
	"io/fs"
	"testing"

	"github.com/madang-io/madang/examples/gameserver/gamedata"
)

// FuzzLoadSet loads arbitrary bytes as a data file: it loads or fails with
// a typed error (a data file error or a *ValidationError), never panics,
// and a loaded set's grants only name existing items. The seeds are the
// default data files (the fuzzer mutates valid files; their hash then no
// longer matches, which exercises the refusal); with fixHash the hash is
// recomputed over the mutated body, so the tables' decoder proper runs
// (testdata/fuzz/FuzzLoadSet: such files that pass the generated decoder
// and fail the schema section, the lengths or the game's rules).
func FuzzLoadSet(f *testing.F) {
	for _, name := range []string{"data_v1.bytes", "data_v2.bytes"} {
		data, err := fs.ReadFile(gamedata.Default(), name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, false)
		f.Add(data, true)
	}
	f.Add([]byte("MDTF"), false)
	f.Fuzz(func(t *testing.T, data []byte, fixHash bool) {
		if fixHash && len(data) >= 72 {
			// Past the content hash: the decoder proper.
			sum := sha256.Sum256(data[72:])
			copy(data[8:40], sum[:])
		}
		set, err := gamedata.LoadSet(data)
		if err != nil {
			var ve *gamedata.ValidationError
			if !errors.As(err, &ve) && !errors.Is(err, gamedata.ErrNotDataFile) && !errors.Is(err, gamedata.ErrNewerFormat) &&
				!errors.Is(err, gamedata.ErrChecksum) && !errors.Is(err, gamedata.ErrSchema) && !errors.Is(err, gamedata.ErrCorrupt) &&
				!errors.Is(err, gamedata.ErrTooLarge) && !errors.Is(err, gamedata.ErrBadVersion) {
				t.Fatalf("untyped error %v", err)
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
