package datafile_test

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/madang-io/madang/examples/datatool/datafile"
	"github.com/madang-io/madang/examples/datatool/sheet"
)

func exampleBook(t testing.TB) *sheet.Book {
	t.Helper()
	b, err := sheet.ReadFiles(sheet.Options{}, "../example/sheets")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dump returns every table, column and value of b as text.
func dump(b *sheet.Book) string {
	var s strings.Builder
	for _, t := range b.Tables {
		s.WriteString("table " + t.Name + "\n")
		for _, c := range t.Columns {
			s.WriteString("  " + c.Name + " " + c.Type.String() + ":")
			for i := 0; i < t.NumRows(); i++ {
				s.WriteString(" [" + c.Format(i) + "]")
			}
			s.WriteString("\n")
		}
	}
	return s.String()
}

func TestRoundTrip(t *testing.T) {
	b := exampleBook(t)
	data, err := datafile.Encode(b, "v1")
	if err != nil {
		t.Fatal(err)
	}
	again, _ := datafile.Encode(b, "v1")
	if !bytes.Equal(data, again) {
		t.Fatal("encoding is not deterministic")
	}
	f, err := datafile.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if f.Version != "v1" || f.FormatVersion != 1 || f.SchemaHash != datafile.SchemaHash(b) {
		t.Fatalf("manifest %q %d %x", f.Version, f.FormatVersion, f.SchemaHash)
	}
	if got, want := dump(f.Book), dump(b); got != want {
		t.Fatalf("decoded:\n%s\nwant:\n%s", got, want)
	}
	if !strings.Contains(dump(b), "starts_at datetime(Asia/Seoul): [2026-12-24T10:00:00+09:00] [2027-01-01T00:00:00+09:00]") {
		t.Fatalf("dump:\n%s", dump(b))
	}
}

func TestDecodeRefuses(t *testing.T) {
	data, err := datafile.Encode(exampleBook(t), "v1")
	if err != nil {
		t.Fatal(err)
	}
	mod := func(f func(b []byte)) []byte {
		b := append([]byte(nil), data...)
		f(b)
		return b
	}
	for _, c := range []struct {
		name string
		data []byte
		want error
	}{
		{"short", data[:10], datafile.ErrNotDataFile},
		{"magic", mod(func(b []byte) { b[1] = 'x' }), datafile.ErrNotDataFile},
		{"newer format", mod(func(b []byte) { b[4] = datafile.FormatVersion + 1 }), datafile.ErrNewerFormat},
		{"format 0", mod(func(b []byte) { b[4] = 0 }), datafile.ErrCorrupt},
		{"flipped byte", mod(func(b []byte) { b[len(b)/2] ^= 0x40 }), datafile.ErrChecksum},
		{"wrong hash", mod(func(b []byte) { b[8] ^= 1 }), datafile.ErrChecksum},
		{"truncated", data[:len(data)-1], datafile.ErrChecksum},
		{"schema hash", mod(func(b []byte) { b[40] ^= 1 }), datafile.ErrCorrupt},
	} {
		f, err := datafile.Decode(c.data)
		var de *datafile.DecodeError
		if f != nil || !errors.Is(err, c.want) || !errors.As(err, &de) {
			t.Errorf("%s: Decode = %v, %v; want a *DecodeError matching %v", c.name, f, err, c.want)
		}
	}
	_, err = datafile.Decode(mod(func(b []byte) { b[4] = 9 }))
	if err.Error() != "datafile: newer format version: format 9, this decoder reads up to 1" {
		t.Errorf("newer format: %v", err)
	}
}

func TestDiff(t *testing.T) {
	read := func(csv ...string) *sheet.Book {
		var in []sheet.Input
		for i, c := range csv {
			in = append(in, sheet.Input{Name: []string{"items.csv", "notes.csv", "gone.csv"}[i], R: strings.NewReader(c)})
		}
		b, err := sheet.Read(sheet.Options{}, in...)
		if err != nil {
			t.Fatal(err)
		}
		data, err := datafile.Encode(b, "x")
		if err != nil {
			t.Fatal(err)
		}
		f, err := datafile.Decode(data)
		if err != nil {
			t.Fatal(err)
		}
		return f.Book
	}
	old := read("id,price,tags,old\nstring,int,list<string>,int\nkey,,,\na,1,x,0\nb,2,,0\nc,3,\"x,y\",0\n",
		"text\nstring\n\"\"\nhello\nworld\n", "id\nint\nkey\n1\n")
	new := read("id,price,tags,new\nstring,int64,list<string>,bool\nkey,,,\nc,3,y,true\na,5,x,false\nd,4,,false\n",
		"text\nstring\n\"\"\nhello\nthere\nagain\n")
	var out bytes.Buffer
	if err := datafile.WriteDiff(&out, datafile.Diff(old, new)); err != nil {
		t.Fatal(err)
	}
	want := `~ items.price type int → int64
+ column items.new
- column items.old
~ items[c]: tags: "x, y" → "y"
~ items[a]: price: "1" → "5"
+ items[d]
- items[b]
~ notes[#2]: text: "world" → "there"
+ notes[#3]
- table gone
items: +1 -1 ~2 rows
notes: +1 -0 ~1 rows
`
	if out.String() != want {
		t.Fatalf("diff:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestExampleFileUpToDate(t *testing.T) {
	// The example's data file decodes with this package too.
	data, err := os.ReadFile("../example/gamedata/testdata/data.bytes")
	if err != nil {
		t.Fatal(err)
	}
	f, err := datafile.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := dump(f.Book), dump(exampleBook(t)); got != want {
		t.Fatalf("decoded:\n%s\nwant:\n%s", got, want)
	}
}
