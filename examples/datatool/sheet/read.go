package sheet

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"
)

// Options configures a run. The zero value works.
type Options struct {
	// Limits of the inputs; zero fields take their defaults.
	Limits Limits
	// LangTable names the table whose keys langkey cells must be.
	// Default "strings".
	LangTable string
}

// Input is one input file: a workbook (Name ends in .xlsx) or a CSV file
// (Name ends in .csv). Name is used in problems and, for a CSV file, its
// base name without .csv is the table's name.
type Input struct {
	Name string
	R    io.Reader
}

// ReadFiles reads the named files (.xlsx or .csv; a directory stands for
// the .xlsx and .csv files in it, in name order, skipping names that
// start with '#', '.' or "~$") and validates them as one Book.
func ReadFiles(opts Options, paths ...string) (*Book, error) {
	var names []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("sheet: %w", err)
		}
		if !st.IsDir() {
			names = append(names, p)
			continue
		}
		ents, err := os.ReadDir(p)
		if err != nil {
			return nil, fmt.Errorf("sheet: %w", err)
		}
		for _, e := range ents {
			n := e.Name()
			ext := strings.ToLower(filepath.Ext(n))
			if e.IsDir() || strings.HasPrefix(n, "#") || strings.HasPrefix(n, ".") || strings.HasPrefix(n, "~$") || (ext != ".xlsx" && ext != ".csv") {
				continue
			}
			names = append(names, filepath.Join(p, n))
		}
	}
	var inputs []Input
	for _, n := range names {
		f, err := os.Open(n)
		if err != nil {
			return nil, fmt.Errorf("sheet: %w", err)
		}
		defer f.Close()
		inputs = append(inputs, Input{Name: n, R: f})
	}
	return Read(opts, inputs...)
}

// Read reads and validates the inputs as one Book: every table's header,
// every cell, and the references between tables. A Book is returned only
// when there is no problem; otherwise the error is a *ValidationError with
// every problem found (errors.Is(err, ErrInvalid)).
func Read(opts Options, inputs ...Input) (*Book, error) {
	r := &reader{lim: opts.Limits.withDefaults(), langTable: opts.LangTable}
	if r.langTable == "" {
		r.langTable = "strings"
	}
	for _, in := range inputs {
		r.readInput(in)
	}
	r.check()
	if len(r.problems) > 0 || r.more > 0 {
		return nil, &ValidationError{Problems: r.problems, More: r.more}
	}
	return &Book{Tables: r.tables}, nil
}

type reader struct {
	lim       Limits
	langTable string
	tables    []*Table
	problems  []Problem
	more      int
	// langRefs: the langkey cells to check once every table is read.
	badCols map[*Column]bool
}

func (r *reader) add(file, sheet, cell, rule, format string, args ...any) {
	if len(r.problems) >= r.lim.MaxProblems {
		r.more++
		return
	}
	r.problems = append(r.problems, Problem{File: file, Sheet: sheet, Cell: cell, Rule: rule, Msg: fmt.Sprintf(format, args...)})
}

func (r *reader) readInput(in Input) {
	ext := strings.ToLower(filepath.Ext(in.Name))
	if ext != ".xlsx" && ext != ".csv" {
		r.add(in.Name, "", "", RuleFile, "not an .xlsx or .csv file")
		return
	}
	data, err := io.ReadAll(io.LimitReader(in.R, r.lim.MaxFileSize+1))
	if err != nil {
		r.add(in.Name, "", "", RuleFile, "read: %v", err)
		return
	}
	if int64(len(data)) > r.lim.MaxFileSize {
		r.add(in.Name, "", "", RuleLimit, "file is larger than %d bytes", r.lim.MaxFileSize)
		return
	}
	if ext == ".csv" {
		name := strings.TrimSuffix(filepath.Base(in.Name), filepath.Ext(in.Name))
		r.readCSV(in.Name, name, data)
		return
	}
	r.readXLSX(in.Name, data)
}

// rowSource yields the rows of one sheet: cells, the 1-based row number
// and an error; io.EOF ends.
type rowSource func() ([]string, int, error)

func (r *reader) readCSV(file, name string, data []byte) {
	cr := csv.NewReader(bytes.NewReader(data))
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	r.readTable(file, name, name, func() ([]string, int, error) {
		rec, err := cr.Read()
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, pe.StartLine, pe.Err
			}
			return nil, 0, err
		}
		line, _ := cr.FieldPos(0)
		return rec, line, nil
	})
}

func (r *reader) readXLSX(file string, data []byte) {
	f, err := excelize.OpenReader(bytes.NewReader(data), excelize.Options{UnzipSizeLimit: r.lim.MaxUnzipped, UnzipXMLSizeLimit: r.lim.MaxUnzipped})
	if err != nil {
		r.add(file, "", "", RuleFile, "not a readable .xlsx workbook: %v", err)
		return
	}
	defer f.Close()
	for _, sh := range f.GetSheetList() {
		if strings.HasPrefix(sh, "#") {
			continue // a comment sheet
		}
		rows, err := f.Rows(sh)
		if err != nil {
			r.add(file, sh, "", RuleFile, "read sheet: %v", err)
			continue
		}
		raw := excelize.Options{RawCellValue: true}
		n := 0
		r.readTable(file, sh, sh, func() ([]string, int, error) {
			if !rows.Next() {
				if err := rows.Error(); err != nil {
					return nil, n, err
				}
				return nil, n, io.EOF
			}
			n++
			cells, err := rows.Columns(raw)
			return cells, n, err
		})
		rows.Close()
	}
}

// colState is a column being read.
type colState struct {
	col    *Column
	cellOK bool // header valid: read its cells
	seen   map[string]int32
	oneOf  map[string]bool
}

// readTable reads one sheet: the first non-empty, non-comment row names
// the columns; the next two non-comment rows (empty or not) are the types
// and the constraints; the rest is data.
func (r *reader) readTable(file, sheet, name string, next rowSource) {
	if len(r.tables) >= r.lim.MaxTables {
		r.add(file, sheet, "", RuleLimit, "more than %d tables", r.lim.MaxTables)
		return
	}
	if !validName(name) {
		r.add(file, sheet, "", RuleName, "table name %q is not a name (a lower-case letter, then lower-case letters, digits or _; at most %d bytes); start a sheet's name with # to skip it", name, MaxNameLen)
		return
	}
	for _, t := range r.tables {
		if t.Name == name {
			r.add(file, sheet, "", RuleName, "table %q is also defined in %s!%s", name, t.File, t.Sheet)
			return
		}
	}
	t := &Table{Name: name, File: file, Sheet: sheet, Key: -1}
	var header [3][]string
	var headerRows [3]int
	nh := 0
	var cols []*colState // by sheet column (index 0 = A), nil for skipped
	for {
		cells, row, err := next()
		if err == io.EOF {
			break
		}
		if err != nil {
			r.add(file, sheet, "", RuleFile, "row %d: %v", row, err)
			return
		}
		if len(cells) > r.lim.MaxColumns {
			r.add(file, sheet, CellName(r.lim.MaxColumns+1, row), RuleLimit, "more than %d columns", r.lim.MaxColumns)
			return
		}
		if len(cells) > 0 && strings.HasPrefix(cells[0], "#") {
			continue // a comment row
		}
		if (nh == 0 || nh == 3) && allEmpty(cells) {
			continue // an empty row (above the names or among the data)
		}
		if nh < 3 {
			header[nh] = append([]string(nil), cells...)
			headerRows[nh] = row
			nh++
			if nh == 3 {
				cols = r.parseHeader(t, header, headerRows)
			}
			continue
		}
		if len(t.Rows) >= r.lim.MaxRows {
			r.add(file, sheet, CellName(1, row), RuleLimit, "more than %d data rows", r.lim.MaxRows)
			return
		}
		r.readRow(t, cols, row, cells)
	}
	if nh < 3 {
		r.add(file, sheet, "", RuleHeader, "needs three header rows (names, types, constraints) before the data; found %d", nh)
		return
	}
	r.tables = append(r.tables, t)
}

func allEmpty(cells []string) bool {
	for _, c := range cells {
		if strings.TrimSpace(c) != "" {
			return false
		}
	}
	return true
}

func (r *reader) parseHeader(t *Table, h [3][]string, hr [3]int) []*colState {
	cell := func(i, c int) string {
		if c < len(h[i]) {
			return strings.TrimSpace(h[i][c])
		}
		return ""
	}
	var cols []*colState
	names := map[string]bool{}
	for c := 0; c < len(h[0]) || c < len(h[1]) || c < len(h[2]); c++ {
		name := cell(0, c)
		if name == "" || strings.HasPrefix(name, "#") {
			cols = append(cols, nil) // a comment column
			continue
		}
		if !validName(name) {
			r.add(t.File, t.Sheet, CellName(c+1, hr[0]), RuleName, "column name %q is not a name (a lower-case letter, then lower-case letters, digits or _; at most %d bytes); start it with # for a comment column", name, MaxNameLen)
			cols = append(cols, nil)
			continue
		}
		if names[name] {
			r.add(t.File, t.Sheet, CellName(c+1, hr[0]), RuleName, "column %q appears twice", name)
			cols = append(cols, nil)
			continue
		}
		names[name] = true
		col := &Column{Name: name, SheetCol: c + 1}
		cs := &colState{col: col, cellOK: true}
		typ, err := parseType(cell(1, c))
		if err != nil {
			r.add(t.File, t.Sheet, CellName(c+1, hr[1]), RuleHeader, "%v", err)
			cs.cellOK = false
		}
		col.Type = typ
		if err := r.parseConstraints(col, cell(2, c)); err != nil {
			r.add(t.File, t.Sheet, CellName(c+1, hr[2]), RuleHeader, "%v", err)
			cs.cellOK = false
		}
		if col.Key {
			if t.Key >= 0 {
				r.add(t.File, t.Sheet, CellName(c+1, hr[2]), RuleHeader, "second key column (the key is %s)", t.Columns[t.Key].Name)
				cs.cellOK = false
			} else {
				t.Key = len(t.Columns)
			}
		}
		if col.Key || col.Unique {
			cs.seen = map[string]int32{}
		}
		if col.OneOf != nil {
			cs.oneOf = map[string]bool{}
			for _, v := range col.OneOf {
				cs.oneOf[v] = true
			}
		}
		t.Columns = append(t.Columns, col)
		cols = append(cols, cs)
		if !cs.cellOK {
			if r.badCols == nil {
				r.badCols = map[*Column]bool{}
			}
			r.badCols[col] = true
		}
	}
	return cols
}

// parseConstraints reads a constraint cell: space-separated key, unique,
// required, range(a..b), size(a..b), ref(table), oneof(a|b).
func (r *reader) parseConstraints(col *Column, s string) error {
	for _, tok := range splitConstraints(s) {
		switch {
		case tok == "key":
			col.Key, col.Unique, col.Required = true, true, true
		case tok == "unique":
			col.Unique = true
		case tok == "required":
			col.Required = true
		case strings.HasPrefix(tok, "range(") && strings.HasSuffix(tok, ")"):
			b, err := parseBounds(tok[6 : len(tok)-1])
			if err != nil {
				return fmt.Errorf("%s: %v", tok, err)
			}
			col.Range = &b
		case strings.HasPrefix(tok, "size(") && strings.HasSuffix(tok, ")"):
			b, err := parseBounds(tok[5 : len(tok)-1])
			if err != nil {
				return fmt.Errorf("%s: %v", tok, err)
			}
			if b.HasMin && b.MinInt < 0 {
				return fmt.Errorf("%s: a size is not negative", tok)
			}
			col.Size = &b
		case strings.HasPrefix(tok, "ref(") && strings.HasSuffix(tok, ")"):
			ref := strings.TrimSpace(tok[4 : len(tok)-1])
			if !validName(ref) {
				return fmt.Errorf("%s: %q is not a table name", tok, ref)
			}
			if col.Type.Ref != "" && col.Type.Ref != ref {
				return fmt.Errorf("%s: the type already refers to %s", tok, col.Type.Ref)
			}
			col.Type.Ref = ref
		case strings.HasPrefix(tok, "oneof(") && strings.HasSuffix(tok, ")"):
			col.OneOf = strings.Split(tok[6:len(tok)-1], "|")
			for i := range col.OneOf {
				col.OneOf[i] = strings.TrimSpace(col.OneOf[i])
			}
		default:
			return fmt.Errorf("unknown constraint %q (key, unique, required, range(a..b), size(a..b), ref(table), oneof(a|b))", tok)
		}
	}
	k := col.Type.Kind
	if col.Key && (col.Type.List || col.Type.Ref != "" || (k != Int && k != Int64 && k != String && k != 0)) {
		return fmt.Errorf("a key column is int, int64 or string (not %s)", col.Type)
	}
	if col.Unique && col.Type.List {
		return fmt.Errorf("unique does not apply to a list")
	}
	if col.Range != nil && k != Int && k != Int64 && k != Float && col.Type.Ref == "" {
		return fmt.Errorf("range applies to int, int64 and float (not %s)", col.Type)
	}
	if col.Size != nil && !col.Type.List && k != String && k != LangKey && col.Type.Ref == "" {
		return fmt.Errorf("size applies to a string or a list (not %s)", col.Type)
	}
	if col.OneOf != nil && (k == Float || k == DateTime || k == Bool) {
		return fmt.Errorf("oneof applies to int, int64, string, enum and langkey (not %s)", col.Type)
	}
	if col.Type.Ref != "" && k != 0 && k != Int && k != Int64 && k != String {
		return fmt.Errorf("ref applies to int, int64 and string (not %s)", col.Type)
	}
	return nil
}

// splitConstraints splits s on spaces outside parentheses.
func splitConstraints(s string) []string {
	var out []string
	depth, start := 0, -1
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '(':
			depth++
		case c == ')':
			depth--
		}
		space := (c == ' ' || c == '\t' || c == ';' || c == ',') && depth <= 0
		if space {
			if start >= 0 {
				out = append(out, s[start:i])
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		out = append(out, s[start:])
	}
	return out
}

// readRow appends one data row.
func (r *reader) readRow(t *Table, cols []*colState, row int, cells []string) {
	i := int32(len(t.Rows))
	t.Rows = append(t.Rows, int32(row))
	for c, cs := range cols {
		if cs == nil {
			continue
		}
		v := ""
		if c < len(cells) {
			v = cells[c]
		}
		r.readCell(t, cs, i, row, v)
	}
}

// readCell appends one cell's value(s) to its column. A cell with a
// problem stores the zero value, so that columns stay aligned.
func (r *reader) readCell(t *Table, cs *colState, i int32, row int, v string) {
	col := cs.col
	if len(v) > r.lim.MaxCellSize {
		r.add(t.File, t.Sheet, CellName(col.SheetCol, row), RuleLimit, "cell is larger than %d bytes", r.lim.MaxCellSize)
		v = ""
	}
	if !utf8.ValidString(v) {
		r.add(t.File, t.Sheet, CellName(col.SheetCol, row), RuleType, "cell is not UTF-8 text")
		v = ""
	}
	if !cs.cellOK {
		r.appendZero(col)
		if col.Type.List {
			col.Ends = append(col.Ends, int32(col.Len()))
		}
		return
	}
	if col.Type.Kind != String {
		v = strings.TrimSpace(v)
	}
	if v == "" && col.Required {
		rule := RuleRequired
		if col.Key {
			rule = RuleKey
		}
		r.add(t.File, t.Sheet, CellName(col.SheetCol, row), rule, "%s is empty", col.Name)
	}
	if !col.Type.List {
		r.readValue(t, cs, row, v)
		if cs.seen != nil && v != "" {
			if first, dup := cs.seen[v]; dup {
				rule := RuleUnique
				if col.Key {
					rule = RuleKey
				}
				r.add(t.File, t.Sheet, CellName(col.SheetCol, row), rule, "%q repeats %s", v, CellName(col.SheetCol, int(first)))
			} else {
				cs.seen[v] = int32(row)
			}
		}
		return
	}
	n := 0
	if v != "" {
		for rest := v; ; {
			el, tail, more := strings.Cut(rest, ",")
			el = strings.TrimSpace(el)
			n++
			if n > MaxListLen {
				r.add(t.File, t.Sheet, CellName(col.SheetCol, row), RuleLimit, "more than %d list elements", MaxListLen)
				break
			}
			if el == "" {
				r.add(t.File, t.Sheet, CellName(col.SheetCol, row), RuleType, "list element %d is empty", n)
				r.appendZero(col)
			} else {
				r.readValue(t, cs, row, el)
			}
			if !more {
				break
			}
			rest = tail
		}
	}
	col.Ends = append(col.Ends, int32(col.Len()))
	if col.Size != nil {
		r.checkSize(t, col, row, int64(int(col.Ends[i])-col.Start(int(i))), "list")
	}
}

func (r *reader) appendZero(col *Column) {
	switch col.Type.Kind {
	case Float:
		col.Floats = append(col.Floats, 0)
	case String, LangKey:
		col.Strs = append(col.Strs, "")
	case DateTime:
		col.Ints = append(col.Ints, ZeroTime)
		col.Offs = append(col.Offs, 0)
	case 0: // a ref, resolved later: its values are kept as text
		col.Strs = append(col.Strs, "")
	default:
		col.Ints = append(col.Ints, 0)
	}
}

func (r *reader) checkSize(t *Table, col *Column, row int, n int64, what string) {
	b := col.Size
	if b.HasMin && n < b.MinInt || b.HasMax && n > b.MaxInt {
		r.add(t.File, t.Sheet, CellName(col.SheetCol, row), RuleSize, "%s of length %d is outside size(%s)", what, n, b)
	}
}

// readValue appends one value (a scalar cell or a list element).
func (r *reader) readValue(t *Table, cs *colState, row int, v string) {
	col := cs.col
	if cs.oneOf != nil && v != "" && !cs.oneOf[v] {
		r.add(t.File, t.Sheet, CellName(col.SheetCol, row), RuleOneOf, "%q is not one of %s", v, strings.Join(col.OneOf, "|"))
	}
	bad := func(format string, args ...any) {
		r.add(t.File, t.Sheet, CellName(col.SheetCol, row), RuleType, format, args...)
		r.appendZero(col)
	}
	switch col.Type.Kind {
	case 0: // ref: the key kind is known once every table is read
		col.Strs = append(col.Strs, v)
	case Int, Int64:
		if v == "" {
			col.Ints = append(col.Ints, 0)
			return
		}
		bits := 32
		if col.Type.Kind == Int64 {
			bits = 64
		}
		n, ok := parseInt(v, bits)
		if !ok {
			bad("%q is not an integer of %d bits", v, bits)
			return
		}
		col.Ints = append(col.Ints, n)
		if b := col.Range; b != nil && (b.HasMin && n < b.MinInt || b.HasMax && n > b.MaxInt) {
			r.add(t.File, t.Sheet, CellName(col.SheetCol, row), RuleRange, "%d is outside range(%s)", n, b)
		}
	case Float:
		if v == "" {
			col.Floats = append(col.Floats, 0)
			return
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			bad("%q is not a finite number", v)
			return
		}
		col.Floats = append(col.Floats, f)
		if b := col.Range; b != nil && (b.HasMin && f < b.Min || b.HasMax && f > b.Max) {
			r.add(t.File, t.Sheet, CellName(col.SheetCol, row), RuleRange, "%s is outside range(%s)", v, b)
		}
	case Bool:
		switch strings.ToLower(v) {
		case "", "false", "0":
			col.Ints = append(col.Ints, 0)
		case "true", "1":
			col.Ints = append(col.Ints, 1)
		default:
			bad("%q is not a bool (true, false, 1 or 0)", v)
		}
	case String, LangKey:
		col.Strs = append(col.Strs, v)
		if col.Size != nil && !col.Type.List {
			r.checkSize(t, col, row, int64(utf8.RuneCountInString(v)), "text")
		}
	case Enum:
		if v == "" {
			col.Ints = append(col.Ints, 0)
			return
		}
		for k, e := range col.Type.Enum {
			if e == v {
				col.Ints = append(col.Ints, int64(k+1))
				return
			}
		}
		r.add(t.File, t.Sheet, CellName(col.SheetCol, row), RuleEnum, "%q is not one of %s", v, strings.Join(col.Type.Enum, "|"))
		col.Ints = append(col.Ints, 0)
	case DateTime:
		if v == "" {
			col.Ints = append(col.Ints, ZeroTime)
			col.Offs = append(col.Offs, 0)
			return
		}
		tm, ok := parseTime(v, col.Type.loc)
		if !ok {
			bad("%q is not a date-time (2006-01-02 15:04:05 in %s, or RFC 3339 with its offset)", v, col.Type.Zone)
			return
		}
		tm = tm.In(col.Type.loc)
		_, off := tm.Zone()
		col.Ints = append(col.Ints, tm.Unix())
		col.Offs = append(col.Offs, int32(off))
	}
}

func parseInt(v string, bits int) (int64, bool) {
	n, err := strconv.ParseInt(v, 10, bits)
	if err == nil {
		return n, true
	}
	// A workbook may store an integer as "12.0" or "1.2E+3".
	f, ferr := strconv.ParseFloat(v, 64)
	if ferr != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, false
	}
	n = int64(f)
	if bits == 32 && (n < math.MinInt32 || n > math.MaxInt32) {
		return 0, false
	}
	return n, true
}

var timeLayouts = []string{"2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"}

// parseTime reads a date-time cell: a wall clock in loc, RFC 3339 with
// its own offset, or an Excel serial date (a number: a date-formatted cell).
func parseTime(v string, loc *time.Location) (time.Time, bool) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, true
	}
	for _, l := range timeLayouts {
		if t, err := time.ParseInLocation(l, v, loc); err == nil {
			return t, true
		}
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil && f > 0 && f < 2958466 { // up to 9999-12-31
		t, err := excelize.ExcelDateToTime(f, false)
		if err != nil {
			return time.Time{}, false
		}
		t = t.Round(time.Second)
		return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), 0, loc), true
	}
	return time.Time{}, false
}

// check resolves references and checks them, once every table is read.
func (r *reader) check() {
	byName := map[string]*Table{}
	for _, t := range r.tables {
		byName[t.Name] = t
	}
	// Key sets, built once per referenced table.
	keys := map[string]map[string]bool{}
	keySet := func(t *Table) map[string]bool {
		if s, ok := keys[t.Name]; ok {
			return s
		}
		kc := t.Columns[t.Key]
		s := make(map[string]bool, t.NumRows())
		for i := 0; i < t.NumRows(); i++ {
			s[kc.FormatValue(i)] = true
		}
		keys[t.Name] = s
		return s
	}
	for _, t := range r.tables {
		for _, col := range t.Columns {
			if r.badCols[col] {
				if col.Type.Kind == 0 {
					col.Type.Kind = String // keep the table consistent
				}
				continue
			}
			if col.Type.Kind == LangKey {
				lt := byName[r.langTable]
				if lt == nil || lt.Key < 0 {
					r.add(t.File, t.Sheet, ColumnName(col.SheetCol), RuleLangKey, "column %s is a langkey but there is no language table %q with a key column", col.Name, r.langTable)
					continue
				}
				r.checkRefs(t, col, keySet(lt), RuleLangKey, r.langTable)
				continue
			}
			if col.Type.Ref == "" {
				continue
			}
			rt := byName[col.Type.Ref]
			if rt == nil || rt.Key < 0 || r.badCols[rt.Columns[rt.Key]] {
				msg := "has no key column"
				if rt == nil {
					msg = "is not a table"
				}
				r.add(t.File, t.Sheet, ColumnName(col.SheetCol), RuleRef, "column %s refers to %s, which %s", col.Name, col.Type.Ref, msg)
				if col.Type.Kind == 0 {
					col.Type.Kind = String
				}
				continue
			}
			kk := rt.Columns[rt.Key].Type.Kind
			if col.Type.Kind == 0 && kk != String {
				r.convertRef(t, col, kk, keySet(rt))
				continue
			}
			if col.Type.Kind == 0 {
				col.Type.Kind = String
			} else if col.Type.Kind != kk {
				r.add(t.File, t.Sheet, ColumnName(col.SheetCol), RuleRef, "column %s is %s but the key of %s is %s", col.Name, col.Type.Kind, rt.Name, kk)
				continue
			}
			r.checkRefs(t, col, keySet(rt), RuleRef, rt.Name)
		}
	}
}

// convertRef turns a ref(table) column's text into the key's integer
// kind and checks that each non-empty value is a key.
func (r *reader) convertRef(t *Table, col *Column, kind Kind, keys map[string]bool) {
	col.Type.Kind = kind
	strs := col.Strs
	col.Strs = nil
	col.Ints = make([]int64, len(strs))
	bits := 32
	if kind == Int64 {
		bits = 64
	}
	for j, s := range strs {
		if s == "" {
			continue
		}
		n, ok := parseInt(s, bits)
		if !ok {
			r.add(t.File, t.Sheet, CellName(col.SheetCol, int(t.Rows[r.rowOf(col, j)])), RuleType, "%q is not an integer of %d bits", s, bits)
			continue
		}
		col.Ints[j] = n
		if b := col.Range; b != nil && (b.HasMin && n < b.MinInt || b.HasMax && n > b.MaxInt) {
			r.add(t.File, t.Sheet, CellName(col.SheetCol, int(t.Rows[r.rowOf(col, j)])), RuleRange, "%d is outside range(%s)", n, b)
		}
		if k := strconv.FormatInt(n, 10); !keys[k] {
			r.add(t.File, t.Sheet, CellName(col.SheetCol, int(t.Rows[r.rowOf(col, j)])), RuleRef, "%q is not a key of %s", k, col.Type.Ref)
		}
	}
}

// rowOf returns the data row of value j of col.
func (r *reader) rowOf(col *Column, j int) int {
	if !col.Type.List {
		return j
	}
	return sort.Search(len(col.Ends), func(i int) bool { return int(col.Ends[i]) > j })
}

func (r *reader) checkRefs(t *Table, col *Column, keys map[string]bool, rule, target string) {
	n := col.Len()
	for j := 0; j < n; j++ {
		v := col.FormatValue(j)
		if !col.Type.List && !col.Required && (v == "" || (col.Type.Kind == Int || col.Type.Kind == Int64) && col.Ints[j] == 0) {
			continue // empty and not required: no reference
		}
		if !keys[v] {
			r.add(t.File, t.Sheet, CellName(col.SheetCol, int(t.Rows[r.rowOf(col, j)])), rule, "%q is not a key of %s", v, target)
		}
	}
}
