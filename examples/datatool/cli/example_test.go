package cli_test

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/madang-io/madang/examples/datatool/cli"
)

var update = flag.Bool("update", false, "rewrite the example workbook, the generated example package and its data file")

// The example workbook, as the cells of each sheet. A time.Time cell is
// written as an Excel date cell (a number with a date format), as a
// designer's date would be.
var exampleWorkbook = []struct {
	name  string
	cells [][]any
}{
	{"#readme", [][]any{
		{"Sheets whose name starts with # are skipped. In a table sheet: row 1 names the columns, row 2 gives their types, row 3 their constraints;"},
		{"a row whose first cell starts with # is a comment, and so is a column whose name starts with #. See examples/datatool/README.md."},
	}},
	{"items", [][]any{
		{"# Items: everything a player can own."},
		{"item_id", "title", "rarity", "price", "stackable", "tags", "# designer note"},
		{"string", "langkey", "enum(common|rare|epic)", "int", "bool", "list<string>", ""},
		{"key size(1..32)", "required", "required", "range(0..1000000)", "", "size(..5)", ""},
		{"potion", "item.potion", "common", 10, true, "consumable, heal", "cheap on purpose"},
		{"sword", "item.sword", "rare", 500, false, "weapon", ""},
		{"# shield is for the next season"},
		{"shield", "item.shield", "epic", 1200, "FALSE", "armor, weapon", ""},
	}},
	{"dungeons", [][]any{
		{"dungeon_id", "title", "stamina", "gold", "max_dps", "rewards", "reward_counts", "difficulty"},
		{"string", "langkey", "int", "int64", "float", "list<ref(items)>", "list<int>", "string"},
		{"key", "required", "range(1..100)", "range(0..1000000000)", "range(0..)", "size(..10)", "range(1..99)", "oneof(easy|normal|hard)"},
		{"forest", "dungeon.forest", 5, 100, 1000, "potion", "2", "easy"},
		{"cave", "dungeon.cave", 10, 250, 2500.5, "potion, sword", "1, 1", "normal"},
	}},
	{"shop", [][]any{
		{"shop_id", "item_id", "gems", "gold"},
		{"int", "ref(items)", "int", "int64"},
		{"key range(1..)", "required", "range(1..100000)", "range(0..)"},
		{1, "potion", 5, 0},
		{2, "sword", 50, 1000},
	}},
	{"events", [][]any{
		{"event_id", "starts_at", "ends_at", "dungeon"},
		{"string", "datetime(Asia/Seoul)", "datetime(UTC)", "ref(dungeons)"},
		{"key", "required", "required", ""},
		{"double_gold", "2026-12-24 10:00", "2026-12-26T00:00:00Z", "forest"},
		{"new_year", time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 3, 12, 0, 0, 0, time.UTC), ""},
	}},
}

const exampleStrings = `key,en,ko
string,string,string
key,required,
# Language strings: one row per key, one column per language.
item.potion,Potion,물약
item.sword,Sword,검
item.shield,Shield,방패
dungeon.forest,Whispering Forest,속삭이는 숲
dungeon.cave,Crystal Cave,수정 동굴
`

func writeExampleWorkbook(path string) error {
	f := excelize.NewFile()
	defer f.Close()
	dateStyle, err := f.NewStyle(&excelize.Style{NumFmt: 22}) // m/d/yy h:mm
	if err != nil {
		return err
	}
	for i, sh := range exampleWorkbook {
		if i == 0 {
			if err := f.SetSheetName("Sheet1", sh.name); err != nil {
				return err
			}
		} else if _, err := f.NewSheet(sh.name); err != nil {
			return err
		}
		for r, row := range sh.cells {
			for c, v := range row {
				cell, _ := excelize.CoordinatesToCellName(c+1, r+1)
				if err := f.SetCellValue(sh.name, cell, v); err != nil {
					return err
				}
				if _, ok := v.(time.Time); ok {
					if err := f.SetCellStyle(sh.name, cell, cell, dateStyle); err != nil {
						return err
					}
				}
			}
		}
	}
	return f.SaveAs(path)
}

// TestExample builds the example sheets and checks the generated package
// examples/datatool/example/gamedata, its data file and the generated C#
// (example/csharp/GameData.cs) are up to date (-update rewrites them, and
// the workbook, from this file).
func TestExample(t *testing.T) {
	sheets := filepath.Join("..", "example", "sheets")
	pkg := filepath.Join("..", "example", "gamedata")
	if *update {
		if err := writeExampleWorkbook(filepath.Join(sheets, "game.xlsx")); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sheets, "strings.csv"), []byte(exampleStrings), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	var out bytes.Buffer
	err := cli.Run([]string{"build", "-version", "1", "-out", filepath.Join(dir, "data.bytes"), "-go", filepath.Join(dir, "gamedata.go"), "-cs", filepath.Join(dir, "GameData.cs"), sheets}, &out)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct{ got, want string }{
		{filepath.Join(dir, "data.bytes"), filepath.Join(pkg, "testdata", "data.bytes")},
		{filepath.Join(dir, "gamedata.go"), filepath.Join(pkg, "gamedata.go")},
		{filepath.Join(dir, "GameData.cs"), filepath.Join("..", "example", "csharp", "GameData.cs")},
	} {
		got, err := os.ReadFile(f.got)
		if err != nil {
			t.Fatal(err)
		}
		if *update {
			if err := os.WriteFile(f.want, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(f.want)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is out of date: run go test ./cli -run TestExample -update", f.want)
		}
	}
}

// Build the example sheets into a data file and the Go code that loads it.
func ExampleRun_build() {
	dir, _ := os.MkdirTemp("", "datatool")
	defer os.RemoveAll(dir)
	var out strings.Builder
	err := cli.Run([]string{"build", "-version", "7", "-out", filepath.Join(dir, "data_v7.bytes"), "-go", filepath.Join(dir, "gamedata.go"), "../example/sheets"}, &out)
	fmt.Println(err)
	fmt.Println(strings.ReplaceAll(out.String(), dir+string(filepath.Separator), ""))
	// Output:
	// <nil>
	// data_v7.bytes: version 7, 5 tables, 14 rows, 936 bytes, sha256 5e117e72b98538ab5125f1c2c139f25defbab37114af71b9eb0c1b940b7367df
	// gamedata.go: package gamedata
}

// A sheet with problems: every one is reported, with its file, sheet, cell
// and rule, and nothing is written.
func ExampleRun_problems() {
	dir, _ := os.MkdirTemp("", "datatool")
	defer os.RemoveAll(dir)
	csv := "item_id,price,kind,friend\nstring,int,enum(a|b),ref(items)\nkey,range(0..100),required,\nsword,120,a,shield\nsword,x,c,\n"
	os.WriteFile(filepath.Join(dir, "items.csv"), []byte(csv), 0o644)
	err := cli.Run([]string{"build", "-version", "1", "-out", filepath.Join(dir, "d.bytes"), filepath.Join(dir, "items.csv")}, &strings.Builder{})
	fmt.Println(strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), ""))
	_, statErr := os.Stat(filepath.Join(dir, "d.bytes"))
	fmt.Println("data file written:", statErr == nil)
	// Output:
	// sheet: 5 problem(s)
	//	items.csv!items!B4: range: 120 is outside range(0..100)
	//	items.csv!items!A5: key: "sword" repeats A4
	//	items.csv!items!B5: type: "x" is not an integer of 32 bits
	//	items.csv!items!C5: enum: "c" is not one of a|b
	//	items.csv!items!D4: ref: "shield" is not a key of items
	// data file written: false
}

// Two versions of the sheets, and the diff of their data files.
func ExampleRun_diff() {
	dir, _ := os.MkdirTemp("", "datatool")
	defer os.RemoveAll(dir)
	write := func(version, csv string) string {
		os.WriteFile(filepath.Join(dir, "strings.csv"), []byte(csv), 0o644)
		out := filepath.Join(dir, "data_v"+version+".bytes")
		if err := cli.Run([]string{"build", "-version", version, "-out", out, filepath.Join(dir, "strings.csv")}, io.Discard); err != nil {
			fmt.Println(err)
		}
		return out
	}
	v1 := write("1", "key,en,ko\nstring,string,string\nkey,required,\nhello,Hello,안녕\nbye,Bye,\n")
	v2 := write("2", "key,en,ko\nstring,string,string\nkey,required,\nhello,Hi,안녕\nthanks,Thanks,고마워\n")
	var out strings.Builder
	if err := cli.Run([]string{"diff", v1, v2}, &out); err != nil {
		fmt.Println(err)
	}
	fmt.Print(strings.ReplaceAll(out.String(), dir+string(filepath.Separator), ""))
	// Output:
	// --- data_v1.bytes (version 1)
	// +++ data_v2.bytes (version 2)
	// ~ strings[hello]: en: "Hello" → "Hi"
	// + strings[thanks]
	// - strings[bye]
	// strings: +1 -1 ~1 rows
}
