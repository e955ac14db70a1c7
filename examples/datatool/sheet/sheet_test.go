package sheet_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/madang-io/madang/examples/datatool/sheet"
)

func csvInput(name, text string) sheet.Input {
	return sheet.Input{Name: name, R: strings.NewReader(text)}
}

// problems reads the inputs and returns their problems as strings.
func problems(t *testing.T, opts sheet.Options, inputs ...sheet.Input) []string {
	t.Helper()
	_, err := sheet.Read(opts, inputs...)
	if err == nil {
		return nil
	}
	var ve *sheet.ValidationError
	if !errors.As(err, &ve) || !errors.Is(err, sheet.ErrInvalid) {
		t.Fatalf("error %v is not a *ValidationError", err)
	}
	var out []string
	for _, p := range ve.Problems {
		out = append(out, p.String())
	}
	return out
}

func TestEveryRule(t *testing.T) {
	items := "id,n,f,b,e,l,s,o,d,#note\n" +
		"string,int,float,bool,enum(x|y),list<int>,string,int64,datetime(+09:00),anything\n" +
		"key,range(1..10),range(..1.5),,required,size(1..2) range(0..5),size(..3) required,oneof(1|2),,\n" +
		"# a comment row: ignored even with bad values,zzz\n" +
		"a,5,1.5,true,x,\"1, 2\",abc,1,2026-01-02 03:04,free text\n" +
		"a,11,2,maybe,z,\"1,,9,3\",abcd,3,noon,\n" +
		",x,NaN,1,,,,,,\n"
	got := problems(t, sheet.Options{}, csvInput("dir/items.csv", items))
	want := []string{
		"dir/items.csv!items!A6: key: \"a\" repeats A5",
		"dir/items.csv!items!B6: range: 11 is outside range(1..10)",
		"dir/items.csv!items!C6: range: 2 is outside range(..1.5)",
		"dir/items.csv!items!D6: type: \"maybe\" is not a bool (true, false, 1 or 0)",
		"dir/items.csv!items!E6: enum: \"z\" is not one of x|y",
		"dir/items.csv!items!F6: type: list element 2 is empty",
		"dir/items.csv!items!F6: range: 9 is outside range(0..5)",
		"dir/items.csv!items!F6: size: list of length 4 is outside size(1..2)",
		"dir/items.csv!items!G6: size: text of length 4 is outside size(..3)",
		"dir/items.csv!items!H6: oneof: \"3\" is not one of 1|2",
		"dir/items.csv!items!I6: type: \"noon\" is not a date-time (2006-01-02 15:04:05 in +09:00, or RFC 3339 with its offset)",
		"dir/items.csv!items!A7: key: id is empty",
		"dir/items.csv!items!B7: type: \"x\" is not an integer of 32 bits",
		"dir/items.csv!items!C7: type: \"NaN\" is not a finite number",
		"dir/items.csv!items!E7: required: e is empty",
		"dir/items.csv!items!F7: size: list of length 0 is outside size(1..2)",
		"dir/items.csv!items!G7: required: s is empty",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestHeaderProblems(t *testing.T) {
	got := problems(t, sheet.Options{},
		csvInput("a.csv", "id,Bad Name,id,t,u,v,w\nstring,int,int,list<list<int>>,datetime,enum(a|a),int\nkey,,,,,,range(5..1) frob\n"),
		csvInput("b.csv", "id,x\nstring\n"),
		csvInput("a.csv", "id\nint\nkey\n"),
		csvInput("Bad.csv", "id\nint\nkey\n"),
		csvInput("c.txt", ""),
	)
	want := []string{
		"a.csv!a!B1: name: column name \"Bad Name\" is not a name (a lower-case letter, then lower-case letters, digits or _; at most 64 bytes); start it with # for a comment column",
		"a.csv!a!C1: name: column \"id\" appears twice",
		"a.csv!a!D2: header: a list of lists is not supported",
		"a.csv!a!E2: header: datetime needs its time zone: datetime(UTC), datetime(Asia/Seoul) or datetime(+09:00)",
		"a.csv!a!F2: header: enum value \"a\" declared twice",
		"a.csv!a!G3: header: range(5..1): min 5 is above max 1",
		"b.csv!b: header: needs three header rows (names, types, constraints) before the data; found 2",
		"a.csv!a: name: table \"a\" is also defined in a.csv!a",
		"Bad.csv!Bad: name: table name \"Bad\" is not a name (a lower-case letter, then lower-case letters, digits or _; at most 64 bytes); start a sheet's name with # to skip it",
		"c.txt: file: not an .xlsx or .csv file",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestReferences(t *testing.T) {
	got := problems(t, sheet.Options{},
		csvInput("items.csv", "id,title\nint,langkey\nkey,\n1,hello\n2,nope\n3,\n"),
		csvInput("shop.csv", "id,item,items,other,plain\nstring,ref(items),list<ref(items)>,ref(nothing),string\nkey,required,,,ref(items)\ns1,1,\"1,2\",,1\ns2,4,\"3, 5\",,x\ns3,,,,\n"),
		csvInput("strings.csv", "key,en\nstring,string\nkey,\nhello,Hello\n"),
	)
	want := []string{
		"shop.csv!shop!B6: required: item is empty",
		"items.csv!items!B5: langkey: \"nope\" is not a key of strings",
		"shop.csv!shop!B5: ref: \"4\" is not a key of items",
		"shop.csv!shop!C5: ref: \"5\" is not a key of items",
		"shop.csv!shop!D: ref: column other refers to nothing, which is not a table",
		"shop.csv!shop!E: ref: column plain is string but the key of items is int",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestLimits(t *testing.T) {
	opts := sheet.Options{Limits: sheet.Limits{MaxRows: 2, MaxColumns: 3, MaxCellSize: 5, MaxFileSize: 200, MaxProblems: 2}}
	got := problems(t, opts,
		csvInput("rows.csv", "id\nint\nkey\n1\n2\n3\n"),
		csvInput("cols.csv", "a,b,c,d\n"),
		csvInput("big.csv", strings.Repeat("x", 201)),
		csvInput("cell.csv", "id\nstring\n\"\"\nabcdef\n"),
	)
	want := []string{
		"rows.csv!rows!A6: limit: more than 2 data rows",
		"cols.csv!cols!D1: limit: more than 3 columns",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	_, err := sheet.Read(opts, csvInput("rows.csv", "id\nint\nkey\n1\n2\n3\n"), csvInput("big.csv", strings.Repeat("x", 201)), csvInput("cell.csv", "id\nstring\n\"\"\nabcdef\n"), csvInput("more.csv", "x\n"))
	var ve *sheet.ValidationError
	if !errors.As(err, &ve) || ve.More != 2 || !strings.HasSuffix(err.Error(), "... and 2 more") {
		t.Fatalf("err = %v, want 2 problems and 2 more", err)
	}
}

// An .xlsx workbook: comment sheets, rows and columns are skipped; typed
// cells (numbers, booleans) read as their values.
func TestXLSX(t *testing.T) {
	f := excelize.NewFile()
	f.SetSheetName("Sheet1", "#notes")
	f.SetSheetRow("#notes", "A1", &[]any{"free text", 1})
	f.NewSheet("units")
	for i, row := range [][]any{
		{"# units", nil, nil},
		{"id", "#comment", "hp", "fast"},
		{"int", "whatever", "float", "bool"},
		{"key", nil, "range(0..)", nil},
		{1, "x", 2.25, true},
		{2, nil, 1e6, false},
	} {
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		f.SetSheetRow("units", cell, &row)
	}
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}
	b, err := sheet.Read(sheet.Options{}, sheet.Input{Name: "u.xlsx", R: &buf})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Tables) != 1 {
		t.Fatalf("%d tables", len(b.Tables))
	}
	u := b.Table("units")
	if u.NumRows() != 2 || len(u.Columns) != 3 || u.Columns[1].Floats[1] != 1e6 || u.Columns[2].Ints[0] != 1 || u.Columns[0].Ints[1] != 2 || u.Rows[1] != 6 {
		t.Fatalf("units = %+v %+v", u, u.Columns[1])
	}
	_, err = sheet.Read(sheet.Options{}, sheet.Input{Name: "x.xlsx", R: strings.NewReader("not a zip")})
	if err == nil || !strings.Contains(err.Error(), "x.xlsx: file: not a readable .xlsx workbook") {
		t.Fatalf("err = %v", err)
	}
}

func TestCellName(t *testing.T) {
	for _, c := range []struct {
		col, row int
		want     string
	}{{1, 1, "A1"}, {26, 9, "Z9"}, {27, 10, "AA10"}, {702, 1, "ZZ1"}, {703, 1, "AAA1"}} {
		if got := sheet.CellName(c.col, c.row); got != c.want {
			t.Errorf("CellName(%d, %d) = %s, want %s", c.col, c.row, got, c.want)
		}
	}
}
