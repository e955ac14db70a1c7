package synth_test

import (
	"bytes"
	"flag"
	"os"
	"sync"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/madang-io/madang/examples/datatool/codegen"
	"github.com/madang-io/madang/examples/datatool/datafile"
	"github.com/madang-io/madang/examples/datatool/example/synth"
	"github.com/madang-io/madang/examples/datatool/sheet"
)

var update = flag.Bool("update", false, "rewrite ../benchdata/benchdata.go")

// TestBenchdata checks the generated package ../benchdata (the loader of
// table units) is up to date; -update rewrites it.
func TestBenchdata(t *testing.T) {
	b, err := sheet.Read(sheet.Options{}, sheet.Input{Name: "units.csv", R: bytes.NewReader(synth.CSV(10))})
	if err != nil {
		t.Fatal(err)
	}
	code, err := codegen.Go(b, codegen.GoOptions{Package: "benchdata"})
	if err != nil {
		t.Fatal(err)
	}
	const golden = "../benchdata/benchdata.go"
	if *update {
		if err := os.WriteFile(golden, code, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(code, want) {
		t.Fatalf("%s is out of date: go test ./example/synth -run TestBenchdata -update", golden)
	}
}

// The CSV and the workbook hold the same table.
func TestSameCells(t *testing.T) {
	var x bytes.Buffer
	if err := synth.WriteXLSX(&x, 50); err != nil {
		t.Fatal(err)
	}
	a, err := sheet.Read(sheet.Options{}, sheet.Input{Name: "units.xlsx", R: &x})
	if err != nil {
		t.Fatal(err)
	}
	c, err := sheet.Read(sheet.Options{}, sheet.Input{Name: "units.csv", R: bytes.NewReader(synth.CSV(50))})
	if err != nil {
		t.Fatal(err)
	}
	da, _ := datafile.Encode(a, "1")
	dc, _ := datafile.Encode(c, "1")
	if !bytes.Equal(da, dc) {
		t.Fatal("the workbook and the CSV build different data files")
	}
}

// benchRows is the size of the build benchmark (issue 18: 100,000 rows ×
// 20 columns).
const benchRows = 100_000

var (
	xlsxOnce sync.Once
	xlsx     []byte
)

func workbook(b *testing.B) []byte {
	xlsxOnce.Do(func() {
		var buf bytes.Buffer
		if err := synth.WriteXLSX(&buf, benchRows); err != nil {
			b.Fatal(err)
		}
		xlsx = buf.Bytes()
	})
	return xlsx
}

// BenchmarkExcelizeRows is the floor of BenchmarkBuild: excelize opening
// the workbook and reading every row's cells, nothing else.
func BenchmarkExcelizeRows(b *testing.B) {
	data := workbook(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		f, err := excelize.OpenReader(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		rows, err := f.Rows("units")
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for rows.Next() {
			cells, err := rows.Columns(excelize.Options{RawCellValue: true})
			if err != nil {
				b.Fatal(err)
			}
			n += len(cells)
		}
		rows.Close()
		f.Close()
		if n != (benchRows+3)*20 {
			b.Fatalf("%d cells", n)
		}
	}
}

// BenchmarkBuild is datatool build on the same workbook: read and validate
// it, encode the data file and generate the Go code.
func BenchmarkBuild(b *testing.B) {
	data := workbook(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		book, err := sheet.Read(sheet.Options{}, sheet.Input{Name: "units.xlsx", R: bytes.NewReader(data)})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := datafile.Encode(book, "1"); err != nil {
			b.Fatal(err)
		}
		if _, err := codegen.Go(book, codegen.GoOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
