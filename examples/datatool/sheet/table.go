package sheet

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Limits of the reader. A zero field takes its default.
type Limits struct {
	// MaxFileSize bounds one input file in bytes. Default 64 MiB.
	MaxFileSize int64
	// MaxUnzipped bounds the uncompressed size of an .xlsx workbook and
	// of one worksheet's XML in it. Default 512 MiB.
	MaxUnzipped int64
	// MaxRows bounds the data rows of one table. Default 1,000,000.
	MaxRows int
	// MaxColumns bounds the columns of one table (comment columns
	// included). Default 256.
	MaxColumns int
	// MaxCellSize bounds one cell in bytes. Default 32,767 (Excel's own
	// limit of characters in a cell).
	MaxCellSize int
	// MaxTables bounds the tables of one run. Default 256.
	MaxTables int
	// MaxProblems bounds the problems kept in a ValidationError; the rest
	// are counted in ValidationError.More. Default 1000.
	MaxProblems int
}

// Default limits.
const (
	DefaultMaxFileSize = 64 << 20
	DefaultMaxUnzipped = 512 << 20
	DefaultMaxRows     = 1_000_000
	DefaultMaxColumns  = 256
	DefaultMaxCellSize = 32767
	DefaultMaxTables   = 256
	DefaultMaxProblems = 1000
)

// Fixed limits of the format.
const (
	// MaxNameLen bounds table, column and enum value names.
	MaxNameLen = 64
	// MaxEnumValues bounds the values of one enum.
	MaxEnumValues = 1000
	// MaxListLen bounds the elements of one list cell.
	MaxListLen = 10_000
)

func (l Limits) withDefaults() Limits {
	if l.MaxFileSize <= 0 {
		l.MaxFileSize = DefaultMaxFileSize
	}
	if l.MaxUnzipped <= 0 {
		l.MaxUnzipped = DefaultMaxUnzipped
	}
	if l.MaxRows <= 0 {
		l.MaxRows = DefaultMaxRows
	}
	if l.MaxColumns <= 0 {
		l.MaxColumns = DefaultMaxColumns
	}
	if l.MaxCellSize <= 0 {
		l.MaxCellSize = DefaultMaxCellSize
	}
	if l.MaxTables <= 0 {
		l.MaxTables = DefaultMaxTables
	}
	if l.MaxProblems <= 0 {
		l.MaxProblems = DefaultMaxProblems
	}
	return l
}

// Rules named by problems.
const (
	RuleFile     = "file"     // the file cannot be read (format, size)
	RuleLimit    = "limit"    // a limit of Limits was passed
	RuleHeader   = "header"   // the header rows (names, types, constraints)
	RuleName     = "name"     // a table or column name
	RuleType     = "type"     // a cell that is not a value of its type
	RuleKey      = "key"      // a duplicate or empty key
	RuleUnique   = "unique"   // a duplicate value of a unique column
	RuleRequired = "required" // an empty cell of a required column
	RuleRange    = "range"    // a number outside range(min..max)
	RuleSize     = "size"     // a string or list outside size(min..max)
	RuleRef      = "ref"      // a reference to a missing key
	RuleOneOf    = "oneof"    // a value outside oneof(a|b|c)
	RuleEnum     = "enum"     // a value that is not one of the enum's
	RuleLangKey  = "langkey"  // a language key missing from the language table
)

// Problem is one problem of a run.
type Problem struct {
	File  string // input file name as given
	Sheet string // sheet name (a CSV file's table name)
	Cell  string // A1 name of the cell ("B7"), a column ("B") or "" for the whole sheet or file
	Rule  string // Rule* constant
	Msg   string
}

// String returns "file!sheet!cell: rule: message".
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Sheet != "" {
		b.WriteString("!" + p.Sheet)
	}
	if p.Cell != "" {
		b.WriteString("!" + p.Cell)
	}
	b.WriteString(": " + p.Rule + ": " + p.Msg)
	return b.String()
}

// ErrInvalid is matched by every *ValidationError (errors.Is).
var ErrInvalid = errors.New("sheet: invalid sheets")

// ValidationError lists every problem of a run (up to Limits.MaxProblems;
// More counts the rest): the problems of each table's header and cells in
// reading order, then those of references between tables (ref, langkey).
type ValidationError struct {
	Problems []Problem
	// More counts the problems past Limits.MaxProblems.
	More int
}

// Error returns the problems, one a line.
func (e *ValidationError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sheet: %d problem(s)", len(e.Problems)+e.More)
	for _, p := range e.Problems {
		b.WriteString("\n\t" + p.String())
	}
	if e.More > 0 {
		fmt.Fprintf(&b, "\n\t... and %d more", e.More)
	}
	return b.String()
}

// Is matches ErrInvalid.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// Column is one column of a table: its header and its values, stored by
// kind (columnar). Row i's value of a scalar column is Ints[i], Floats[i]
// or Strs[i]; a list's elements are Ints[Start(i):Ends[i]] (and so on).
type Column struct {
	// Name from the name row.
	Name string
	// Type from the type row.
	Type Type
	// Constraints from the constraint row.
	Key, Unique, Required bool
	// Range bounds numbers (each element of a list).
	Range *Bounds
	// Size bounds the length of a string (in characters) or of a list.
	Size *Bounds
	// OneOf lists the allowed values (as written), nil if any.
	OneOf []string
	// SheetCol is the 1-based column of the sheet (for A1 names).
	SheetCol int

	// Ints holds Int, Int64, Bool (0 or 1), Enum (ordinal) and DateTime
	// (Unix seconds) values.
	Ints []int64
	// Offs holds the zone offset in seconds of DateTime values.
	Offs []int32
	// Floats holds Float values.
	Floats []float64
	// Strs holds String and LangKey values.
	Strs []string
	// Ends holds, for a list, the end of each row's elements.
	Ends []int32
}

// Start returns where row i's elements of a list column begin.
func (c *Column) Start(i int) int {
	if i == 0 {
		return 0
	}
	return int(c.Ends[i-1])
}

// Len returns the number of values (elements, for a list) stored.
func (c *Column) Len() int {
	switch c.Type.Kind {
	case Float:
		return len(c.Floats)
	case String, LangKey, 0: // 0: a ref while reading, kept as text
		return len(c.Strs)
	}
	return len(c.Ints)
}

// FormatValue returns element j (an index into the value slices) as text.
func (c *Column) FormatValue(j int) string {
	switch c.Type.Kind {
	case Int, Int64:
		return strconv.FormatInt(c.Ints[j], 10)
	case Float:
		return strconv.FormatFloat(c.Floats[j], 'g', -1, 64)
	case Bool:
		return strconv.FormatBool(c.Ints[j] != 0)
	case String, LangKey:
		return c.Strs[j]
	case Enum:
		n := c.Ints[j]
		if n <= 0 || int(n) > len(c.Type.Enum) {
			return ""
		}
		return c.Type.Enum[n-1]
	case DateTime:
		if c.Ints[j] == ZeroTime && c.Offs[j] == 0 {
			return ""
		}
		return time.Unix(c.Ints[j], 0).In(time.FixedZone("", int(c.Offs[j]))).Format(time.RFC3339)
	}
	return ""
}

// Format returns row i's value as text (a list joined by ", ").
func (c *Column) Format(i int) string {
	if !c.Type.List {
		return c.FormatValue(i)
	}
	var b strings.Builder
	for j := c.Start(i); j < int(c.Ends[i]); j++ {
		if j > c.Start(i) {
			b.WriteString(", ")
		}
		b.WriteString(c.FormatValue(j))
	}
	return b.String()
}

// ZeroTime is the Unix time of an empty DateTime cell (time.Time{}).
const ZeroTime = -62135596800

// Table is one table: a sheet of a workbook or a CSV file.
type Table struct {
	// Name is the sheet's name (a CSV file's base name, without .csv).
	Name string
	// File and Sheet locate it, for problems.
	File, Sheet string
	// Columns, in sheet order, comment columns left out.
	Columns []*Column
	// Key is the index in Columns of the key column, -1 if none.
	Key int
	// Rows holds the 1-based sheet row of each data row.
	Rows []int32
}

// NumRows returns the number of data rows.
func (t *Table) NumRows() int { return len(t.Rows) }

// Column returns the column named name, or nil.
func (t *Table) Column(name string) *Column {
	for _, c := range t.Columns {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// KeyString returns row i's key as text ("#i" with a 1-based index when
// the table has no key).
func (t *Table) KeyString(i int) string {
	if t.Key < 0 {
		return "#" + strconv.Itoa(i+1)
	}
	return t.Columns[t.Key].FormatValue(i)
}

// Book is the tables of one run, in input order.
type Book struct {
	Tables []*Table
}

// Table returns the table named name, or nil.
func (b *Book) Table(name string) *Table {
	for _, t := range b.Tables {
		if t.Name == name {
			return t
		}
	}
	return nil
}
