// Package synth makes a synthetic table for the data tool's benchmarks and
// tests: table "units", 20 columns of every kind, any number of rows, as a
// CSV file or an .xlsx workbook with the same cells.
package synth

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/xuri/excelize/v2"
)

// Header is the three header rows of table units.
var Header = [3][]string{
	{"id", "name", "kind", "level", "hp", "atk", "def", "crit", "rare", "tags", "drops", "parent", "starts_at", "price", "weight", "desc", "icon", "group", "flag", "sort"},
	{"int", "string", "enum(melee|ranged|magic|support)", "int", "int64", "float", "float", "float", "bool", "list<string>", "list<int>", "ref(units)", "datetime(UTC)", "int64", "float", "string", "string", "int", "bool", "int"},
	{"key", "required size(1..40)", "required", "range(1..100)", "range(0..)", "range(0..)", "", "range(0..1)", "", "size(..4)", "", "", "", "range(0..)", "", "", "", "oneof(1|2|3|4)", "", "unique"},
}

var kinds = [...]string{"melee", "ranged", "magic", "support"}

// Row returns data row i (0-based) as cells: numbers as int or float64,
// booleans as bool, everything else as string.
func Row(i int) []any {
	id := i + 1
	parent := ""
	if id > 1 {
		parent = strconv.Itoa(id / 2)
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Minute)
	return []any{
		id,
		"unit " + strconv.Itoa(id),
		kinds[i%4],
		1 + i%100,
		int64(i) * 1000,
		float64(i%1000) * 1.5,
		float64(i%777) / 4, // Excel keeps 15 significant digits: exact values here
		float64(i%100) / 100,
		i%7 == 0,
		"tag" + strconv.Itoa(i%10) + ", tag" + strconv.Itoa(i%13),
		strconv.Itoa(i%50) + ", " + strconv.Itoa(i%51) + ", " + strconv.Itoa(i%52),
		parent,
		start.Format("2006-01-02 15:04:05"),
		int64(i%5000) * 99,
		float64(i%321) * 0.25,
		"a synthetic unit for benchmarks number " + strconv.Itoa(id),
		"icons/unit_" + strconv.Itoa(i%300) + ".png",
		1 + i%4,
		i%2 == 0,
		rows1e9 - i,
	}
}

const rows1e9 = 1_000_000_000

func cellText(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case int:
		return strconv.Itoa(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	}
	return fmt.Sprint(v)
}

// CSV returns table units with n rows as a CSV file.
func CSV(n int) []byte {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	for _, h := range Header {
		w.Write(h)
	}
	rec := make([]string, len(Header[0]))
	for i := 0; i < n; i++ {
		for c, v := range Row(i) {
			rec[c] = cellText(v)
		}
		w.Write(rec)
	}
	w.Flush()
	return buf.Bytes()
}

// WriteXLSX writes table units with n rows as a workbook of one sheet
// (numbers and booleans as typed cells, as a designer's would be).
func WriteXLSX(w io.Writer, n int) error {
	f := excelize.NewFile()
	defer f.Close()
	if err := f.SetSheetName("Sheet1", "units"); err != nil {
		return err
	}
	sw, err := f.NewStreamWriter("units")
	if err != nil {
		return err
	}
	row := 1
	for _, h := range Header {
		cells := make([]any, len(h))
		for i, s := range h {
			cells[i] = s
		}
		cell, _ := excelize.CoordinatesToCellName(1, row)
		if err := sw.SetRow(cell, cells); err != nil {
			return err
		}
		row++
	}
	for i := 0; i < n; i++ {
		cell, _ := excelize.CoordinatesToCellName(1, row)
		if err := sw.SetRow(cell, Row(i)); err != nil {
			return err
		}
		row++
	}
	if err := sw.Flush(); err != nil {
		return err
	}
	return f.Write(w)
}
