package benchdata_test

import (
	"bytes"
	"encoding/json"
	"sync"
	"testing"

	"github.com/madang-io/madang/examples/datatool/datafile"
	"github.com/madang-io/madang/examples/datatool/example/benchdata"
	"github.com/madang-io/madang/examples/datatool/example/synth"
	"github.com/madang-io/madang/examples/datatool/sheet"
)

// build returns table units with n rows as a data file.
func build(t testing.TB, n int) []byte {
	b, err := sheet.Read(sheet.Options{}, sheet.Input{Name: "units.csv", R: bytes.NewReader(synth.CSV(n))})
	if err != nil {
		t.Fatal(err)
	}
	data, err := datafile.Encode(b, "bench")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestLoad(t *testing.T) {
	d, err := benchdata.Load(build(t, 1000))
	if err != nil {
		t.Fatal(err)
	}
	u, ok := d.UnitsByKey(10)
	if !ok || u.Name != "unit 10" || u.Kind != benchdata.UnitsKindRanged || u.Parent != 5 || len(u.Drops) != 3 || u.Drops[2] != 9 || u.Tags[1] != "tag9" ||
		u.StartsAt.Format("2006-01-02 15:04") != "2026-01-01 00:09" || u.Sort != 1_000_000_000-9 || u.Flag || u.Def != 2.25 {
		t.Fatalf("unit 10 = %+v", u)
	}
	if n := testing.AllocsPerRun(100, func() { d.UnitsByKey(500) }); n != 0 {
		t.Fatalf("lookup allocates %v", n)
	}
}

const benchRows = 100_000

var (
	once      sync.Once
	dataFile  []byte
	jsonBytes []byte
)

// setup builds table units (100,000 rows × 20 columns) as a data file and
// as JSON (encoding/json of the same rows).
func setup(b *testing.B) {
	once.Do(func() {
		dataFile = build(b, benchRows)
		d, err := benchdata.Load(dataFile)
		if err != nil {
			b.Fatal(err)
		}
		if jsonBytes, err = json.Marshal(d.Units); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkLoad loads the data file with the generated loader (content
// hash verified, every row decoded, the key index built).
func BenchmarkLoad(b *testing.B) {
	setup(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(dataFile)))
	for b.Loop() {
		if _, err := benchdata.Load(dataFile); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoadJSON is the baseline: encoding/json decoding the same rows
// into the same structs, and the same key index built.
func BenchmarkLoadJSON(b *testing.B) {
	setup(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(jsonBytes)))
	for b.Loop() {
		var rows []benchdata.UnitsRow
		if err := json.Unmarshal(jsonBytes, &rows); err != nil {
			b.Fatal(err)
		}
		idx := make(map[int32]int32, len(rows))
		for i := range rows {
			idx[rows[i].ID] = int32(i)
		}
	}
}

// BenchmarkUnitsByKey is a lookup by key in the loaded table.
func BenchmarkUnitsByKey(b *testing.B) {
	setup(b)
	d, err := benchdata.Load(dataFile)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	k := int32(1)
	for b.Loop() {
		if _, ok := d.UnitsByKey(k); !ok {
			b.Fatal("missing")
		}
		k = k%benchRows + 1
	}
}
