package gamedata_test

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/madang-io/madang/examples/datatool/codegen"
	"github.com/madang-io/madang/examples/datatool/sheet"
	"github.com/madang-io/madang/examples/gameserver/gamedata"
)

var update = flag.Bool("update", false, "rebuild default/data_v*.bytes and tables/tables.go from sheets/")

// sheetInputs opens the CSV and .xlsx files of dir as sheet inputs.
func sheetInputs(t testing.TB, dir string) []sheet.Input {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var in []sheet.Input
	for _, e := range ents {
		if ext := filepath.Ext(e.Name()); ext != ".csv" && ext != ".xlsx" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		in = append(in, sheet.Input{Name: filepath.Join(dir, e.Name()), R: bytes.NewReader(data)})
	}
	return in
}

// TestSheets: the committed data files (default/) and the generated
// package (tables/) are what the sheets (sheets/<version>/) build to.
// With -update it rewrites them.
func TestSheets(t *testing.T) {
	versions, err := os.ReadDir("sheets")
	if err != nil {
		t.Fatal(err)
	}
	var code []byte
	built := map[string]bool{}
	for _, v := range versions {
		data, book, err := gamedata.Build(v.Name(), sheetInputs(t, filepath.Join("sheets", v.Name()))...)
		if err != nil {
			t.Fatalf("sheets/%s: %v", v.Name(), err)
		}
		c, err := codegen.Go(book, codegen.GoOptions{Package: "tables"})
		if err != nil {
			t.Fatal(err)
		}
		if code != nil && !bytes.Equal(c, code) {
			t.Fatalf("sheets/%s: another schema than the other versions' (one generated package serves them all)", v.Name())
		}
		code = c
		name := filepath.Join("default", "data_v"+v.Name()+".bytes")
		built[filepath.Base(name)] = true
		golden(t, name, data)
	}
	golden(t, filepath.Join("tables", "tables.go"), code)
	ents, err := os.ReadDir("default")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !built[e.Name()] {
			t.Errorf("default/%s has no sheets/ directory", e.Name())
		}
	}
}

func golden(t *testing.T, name string, data []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(name, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	old, err := os.ReadFile(name)
	if err != nil || !bytes.Equal(old, data) {
		t.Errorf("%s is stale: rebuild it from the sheets (go test -run TestSheets -update): %v", name, err)
	}
}

// TestBuildProblemsNameCells: a bad sheet is refused with every problem,
// the data tool's (references, ranges) and the game's, each at its
// file!sheet!A1 cell.
func TestBuildProblemsNameCells(t *testing.T) {
	in := sheetInputs(t, filepath.Join("sheets", "2"))
	edit := func(table string, f func(string) string) {
		for i := range in {
			if strings.TrimSuffix(filepath.Base(in[i].Name), ".csv") == table {
				data := new(bytes.Buffer)
				data.ReadFrom(in[i].R)
				in[i].R = strings.NewReader(f(data.String()))
			}
		}
	}
	// A grant of a missing item (the tool's ref) and a count out of range.
	edit("shop_items", func(s string) string { return s + "potion_pack,dragon_egg,1\nelixir_pack,potion,0\n" })
	_, _, err := gamedata.Build("2", in...)
	var ve *sheet.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err %v", err)
	}
	want := []string{"sheets/2/shop_items.csv!shop_items!C10: range:", "sheets/2/shop_items.csv!shop_items!B9: ref:"}
	checkProblems(t, ve, want)

	// The game's rules: an item granted twice, a product that gives
	// nothing, a lower-case currency.
	in = sheetInputs(t, filepath.Join("sheets", "2"))
	edit("shop_items", func(s string) string { return s + "potion_pack,potion,1\n" })
	edit("products", func(s string) string { return s + "empty,Nothing,0,990000,usd\n" })
	_, _, err = gamedata.Build("2", in...)
	if !errors.As(err, &ve) {
		t.Fatalf("err %v", err)
	}
	checkProblems(t, ve, []string{
		`sheets/2/shop_items.csv!shop_items!B9: game: item "potion" of "potion_pack" already granted in row 0`,
		`sheets/2/products.csv!products!E8: game: must be an ISO 4217 code`,
		`sheets/2/products.csv!products!A8: game: "empty" gives nothing`,
	})
}

func checkProblems(t *testing.T, ve *sheet.ValidationError, want []string) {
	t.Helper()
	for _, w := range want {
		found := false
		for _, p := range ve.Problems {
			found = found || strings.HasPrefix(p.String(), w)
		}
		if !found {
			t.Errorf("missing %q in\n%v", w, ve)
		}
	}
	if len(ve.Problems) != len(want) {
		t.Errorf("%d problems, want %d:\n%v", len(ve.Problems), len(want), ve)
	}
}
