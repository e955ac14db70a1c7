package sheet_test

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"github.com/madang-io/madang/examples/datatool/sheet"
)

// fuzzLimits keep a fuzzed input small: memory is bounded by the limits.
var fuzzLimits = sheet.Limits{MaxFileSize: 1 << 20, MaxUnzipped: 8 << 20, MaxRows: 1000, MaxColumns: 64, MaxProblems: 100}

// checkRead reads one input: a Book with aligned columns, or a
// *ValidationError with problems; never a panic.
func checkRead(t *testing.T, in sheet.Input) {
	b, err := sheet.Read(sheet.Options{Limits: fuzzLimits}, in)
	if err != nil {
		var ve *sheet.ValidationError
		if !errors.As(err, &ve) || len(ve.Problems) == 0 {
			t.Fatalf("error %v is not a *ValidationError with problems", err)
		}
		return
	}
	for _, tb := range b.Tables {
		for _, c := range tb.Columns {
			if c.Type.List && len(c.Ends) != tb.NumRows() || !c.Type.List && c.Len() != tb.NumRows() {
				t.Fatalf("table %s column %s holds %d values for %d rows", tb.Name, c.Name, c.Len(), tb.NumRows())
			}
			for i := 0; i < tb.NumRows(); i++ {
				_ = c.Format(i)
			}
		}
	}
}

func FuzzReadCSV(f *testing.F) {
	for _, s := range []string{
		"id,n\nstring,int\nkey,range(0..9)\na,1\nb,2\n",
		"id,l,e,d,r\nint,list<float>,enum(a|b),datetime(UTC),ref(t)\nkey,size(..2),,required,\n1,\"1.5, 2\",a,2026-01-01 00:00,1\n",
		"k,t\nstring,langkey\nkey,\nx,x\n",
		"\"a\nb\",c\n", "a,\"b\n", "#x\n\n\n", "x\nlist<list<int>>\n\n",
	} {
		f.Add([]byte(s))
	}
	if b, err := os.ReadFile("../example/sheets/strings.csv"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkRead(t, sheet.Input{Name: "t.csv", R: bytes.NewReader(data)})
	})
}

func FuzzReadXLSX(f *testing.F) {
	b, err := os.ReadFile("../example/sheets/game.xlsx")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:len(b)/2])
	f.Add([]byte("PK\x03\x04"))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkRead(t, sheet.Input{Name: "t.xlsx", R: bytes.NewReader(data)})
	})
}
