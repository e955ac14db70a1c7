package gamedata_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"testing"

	"github.com/madang-io/madang/examples/datatool/example/gamedata"
)

// FuzzLoad loads arbitrary bytes with the header's content hash and schema
// fingerprint fixed up, so that the generated loader parses them: a
// *LoadError or a Data whose lookups find their rows; never a panic.
// Allocation is bounded by the input's size (counts are checked against
// the bytes left).
func FuzzLoad(f *testing.F) {
	b, err := os.ReadFile("testdata/data.bytes")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:80])
	schema, _ := hex.DecodeString(gamedata.SchemaHash)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) >= 72 {
			data = append([]byte(nil), data...)
			sum := sha256.Sum256(data[72:])
			copy(data[8:40], sum[:])
			copy(data[40:72], schema)
		}
		d, err := gamedata.Load(data)
		if err != nil {
			var le *gamedata.LoadError
			if !errors.As(err, &le) {
				t.Fatalf("error %v is not a *LoadError", err)
			}
			return
		}
		for i := range d.Items {
			if r, ok := d.ItemsByKey(d.Items[i].ItemID); !ok || r.ItemID != d.Items[i].ItemID {
				t.Fatalf("item %q not found by its key", d.Items[i].ItemID)
			}
		}
	})
}
