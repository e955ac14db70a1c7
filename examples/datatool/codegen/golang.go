// Package codegen writes the code that loads a data file (package
// datafile): Go for the game server and C# for Unity clients. The code is
// generated from a sheet.Book's schema; a loader refuses a data file whose
// schema fingerprint (datafile.SchemaHash) is not the one it was generated
// for, so a server never reads tables it does not understand.
//
// # Go
//
// Go writes one self-contained file (standard library only): per table a
// row struct (table "items" → type ItemsRow; column "item_id" → field
// ItemID), per enum a named integer type with constants, a Data struct with
// a slice per table (Data.Items) and, for a table with a key column, a
// lookup by key (Data.ItemsByKey) that allocates nothing, and
// Load(data []byte) (*Data, error). Load copies the file once into one
// string and every string value of the tables shares it; each list column
// shares one backing array; so a load makes a few allocations per table.
// A loaded Data is immutable: share it between goroutines, do not modify
// the rows.
package codegen

import (
	"bytes"
	"fmt"
	"go/format"
	"sort"
	"strings"

	"github.com/madang-io/madang/examples/datatool/datafile"
	"github.com/madang-io/madang/examples/datatool/sheet"
)

// GoOptions configures Go.
type GoOptions struct {
	// Package is the generated package's name. Default "gamedata".
	Package string
}

// initialisms are written in capitals in Go names ("item_id" → "ItemID").
var initialisms = map[string]string{"id": "ID", "url": "URL", "api": "API", "json": "JSON", "http": "HTTP", "ip": "IP", "ui": "UI", "db": "DB", "sql": "SQL", "dps": "DPS", "ms": "Ms", "uid": "UID"}

// goName turns a snake_case name into an exported Go name.
func goName(s string) string {
	var b strings.Builder
	for _, part := range strings.Split(s, "_") {
		if part == "" {
			continue
		}
		if v, ok := initialisms[strings.ToLower(part)]; ok {
			b.WriteString(v)
			continue
		}
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	out := b.String()
	if out == "" || out[0] < 'A' || out[0] > 'Z' {
		out = "X" + out
	}
	return out
}

// goTypeNames holds the Go names of one book.
type goNames struct {
	row, field, lookup map[*sheet.Table]string
	col                map[*sheet.Column]string
	enum               map[*sheet.Column]string
}

func makeGoNames(b *sheet.Book) (*goNames, error) {
	n := &goNames{row: map[*sheet.Table]string{}, field: map[*sheet.Table]string{}, lookup: map[*sheet.Table]string{}, col: map[*sheet.Column]string{}, enum: map[*sheet.Column]string{}}
	top := map[string]string{"Data": "the Data type", "Load": "func Load", "LoadError": "type LoadError", "SchemaHash": "const SchemaHash", "FormatVersion": "const FormatVersion"}
	for _, e := range []string{"ErrNotDataFile", "ErrNewerFormat", "ErrChecksum", "ErrSchema", "ErrCorrupt"} {
		top[e] = "var " + e
	}
	claim := func(name, what string) error {
		if prev, ok := top[name]; ok {
			return fmt.Errorf("codegen: Go name %s of %s collides with %s", name, what, prev)
		}
		top[name] = what
		return nil
	}
	dataFields := map[string]string{"Version": "Data.Version", "Hash": "Data.Hash"}
	for _, t := range b.Tables {
		g := goName(t.Name)
		n.row[t], n.field[t], n.lookup[t] = g+"Row", g, g+"ByKey"
		if err := claim(g+"Row", "table "+t.Name); err != nil {
			return nil, err
		}
		for _, f := range []string{g, g + "ByKey"} {
			if prev, ok := dataFields[f]; ok {
				return nil, fmt.Errorf("codegen: Go name Data.%s of table %s collides with %s", f, t.Name, prev)
			}
			dataFields[f] = "table " + t.Name
		}
		fields := map[string]string{}
		for _, c := range t.Columns {
			f := goName(c.Name)
			if prev, ok := fields[f]; ok {
				return nil, fmt.Errorf("codegen: Go field %s of %s.%s collides with column %s", f, t.Name, c.Name, prev)
			}
			fields[f] = c.Name
			n.col[c] = f
			if c.Type.Kind == sheet.Enum {
				e := g + f
				if err := claim(e, "enum "+t.Name+"."+c.Name); err != nil {
					return nil, err
				}
				n.enum[c] = e
				for _, v := range c.Type.Enum {
					if err := claim(e+goName(v), "enum value "+t.Name+"."+c.Name+" "+v); err != nil {
						return nil, err
					}
				}
			}
		}
	}
	return n, nil
}

func (n *goNames) goType(c *sheet.Column) string {
	var s string
	switch c.Type.Kind {
	case sheet.Int:
		s = "int32"
	case sheet.Int64:
		s = "int64"
	case sheet.Float:
		s = "float64"
	case sheet.Bool:
		s = "bool"
	case sheet.String, sheet.LangKey:
		s = "string"
	case sheet.Enum:
		s = n.enum[c]
	case sheet.DateTime:
		s = "time.Time"
	}
	if c.Type.List {
		s = "[]" + s
	}
	return s
}

// readExpr returns the reader call for one value of c.
func (n *goNames) readExpr(c *sheet.Column) string {
	switch c.Type.Kind {
	case sheet.Int:
		return "r.int32()"
	case sheet.Int64:
		return "r.varint()"
	case sheet.Float:
		return "r.float()"
	case sheet.Bool:
		return "r.bool()"
	case sheet.String, sheet.LangKey:
		return "r.str()"
	case sheet.Enum:
		return fmt.Sprintf("%s(r.enum(%d))", n.enum[c], len(c.Type.Enum))
	case sheet.DateTime:
		return "r.time(zones)"
	}
	return ""
}

// Go returns the Go source that loads data files of b's schema.
func Go(b *sheet.Book, opts GoOptions) ([]byte, error) {
	if opts.Package == "" {
		opts.Package = "gamedata"
	}
	names, err := makeGoNames(b)
	if err != nil {
		return nil, err
	}
	hash := datafile.SchemaHash(b)
	var w bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&w, format, args...) }
	p("// Code generated by datatool from the sheets; DO NOT EDIT.\n\n")
	p("// Package %s holds the game data tables: row types, lookups by key, and\n", opts.Package)
	p("// Load, which reads a data file built by datatool from the same sheets.\n")
	p("package %s\n\n", opts.Package)
	p("import (\n\"crypto/sha256\"\n\"errors\"\n\"math\"\n\"strconv\"\n\"time\"\n)\n\n")
	p("// FormatVersion is the newest data file format Load reads.\nconst FormatVersion = %d\n\n", datafile.FormatVersion)
	p("// SchemaHash is the SHA-256 of the schema this code was generated for, in\n// hex; Load refuses a data file of another schema.\nconst SchemaHash = \"%x\"\n\n", hash[:])
	p("var schemaHash = [32]byte{")
	for i, c := range hash {
		if i > 0 {
			p(", ")
		}
		p("%#02x", c)
	}
	p("}\n\n")
	for _, t := range b.Tables {
		for _, c := range t.Columns {
			if c.Type.Kind != sheet.Enum {
				continue
			}
			e := names.enum[c]
			base := "uint8"
			if len(c.Type.Enum) > 255 {
				base = "uint16"
			}
			p("// %s is the enum of %s.%s; 0 is an empty cell.\ntype %s %s\n\n", e, t.Name, c.Name, e, base)
			p("// Values of %s.\nconst (\n", e)
			for i, v := range c.Type.Enum {
				p("%s%s %s = %d\n", e, goName(v), e, i+1)
			}
			p(")\n\n")
			p("var names%s = [...]string{\"\"", e)
			for _, v := range c.Type.Enum {
				p(", %q", v)
			}
			p("}\n\n// String returns the value's name as written in the sheet (\"\" for 0).\n")
			p("func (v %s) String() string {\nif int(v) < len(names%s) {\nreturn names%s[v]\n}\nreturn strconv.Itoa(int(v))\n}\n\n", e, e, e)
		}
	}
	for _, t := range b.Tables {
		p("// %s is a row of table %s.\ntype %s struct {\n", names.row[t], t.Name, names.row[t])
		for _, c := range t.Columns {
			p("%s %s // %s %s%s\n", names.col[c], names.goType(c), c.Name, c.Type, constraintNote(c))
		}
		p("}\n\n")
	}
	p("// Data is one loaded data file. It is immutable: share it, do not modify it.\ntype Data struct {\n")
	p("// Version is the data version named at build.\nVersion string\n")
	p("// Hash is the SHA-256 of the file's body (its content hash).\nHash [32]byte\n")
	for _, t := range b.Tables {
		p("// %s holds table %s in sheet order.\n%s []%s\n", names.field[t], t.Name, names.field[t], names.row[t])
	}
	for _, t := range b.Tables {
		if t.Key >= 0 {
			p("by%s map[%s]int32\n", names.field[t], names.goType(t.Columns[t.Key]))
		}
	}
	p("}\n\n")
	for _, t := range b.Tables {
		if t.Key < 0 {
			continue
		}
		kc := t.Columns[t.Key]
		p("// %s returns the row of %s whose %s is key.\n", names.lookup[t], t.Name, kc.Name)
		p("func (d *Data) %s(key %s) (*%s, bool) {\ni, ok := d.by%s[key]\nif !ok {\nreturn nil, false\n}\nreturn &d.%s[i], true\n}\n\n",
			names.lookup[t], names.goType(kc), names.row[t], names.field[t], names.field[t])
	}
	p("%s", goRuntime)
	// Load.
	p("// Load verifies and reads a data file: its header, its content hash, its\n// schema fingerprint (SchemaHash), then every table.\n")
	p("func Load(data []byte) (*Data, error) {\n")
	p("if err := checkHeader(data); err != nil {\nreturn nil, err\n}\n")
	p("s := string(data) // one copy: every string of the tables shares it\n")
	p("d := &Data{}\ncopy(d.Hash[:], s[8:40])\n")
	p("r := &reader{s: s, i: headerSize, end: len(s)}\nd.Version = r.str()\nr.i += r.count() // the schema section, checked by its hash\n")
	p("var rows, sizes [%d]int\n", len(b.Tables))
	p("for t := range rows {\nrows[t], sizes[t] = r.count(), r.count()\n}\n")
	p("if r.bad {\nreturn nil, corrupt(\"manifest\", r.i)\n}\n")
	if hasKind(b, sheet.DateTime) {
		p("zones := map[int64]*time.Location{} // one *time.Location per zone offset\n")
	}
	for ti, t := range b.Tables {
		p("// Table %s.\n", t.Name)
		p("if r.end = r.i + sizes[%d]; r.end > len(s) || r.end < r.i || (rows[%d] > sizes[%d] && %d > 0) {\nreturn nil, corrupt(%q, r.i)\n}\n", ti, ti, ti, len(t.Columns), "table "+t.Name)
		p("d.%s = make([]%s, rows[%d])\n", names.field[t], names.row[t], ti)
		for _, c := range t.Columns {
			f := names.col[c]
			if !c.Type.List {
				p("for i := range d.%s {\nd.%s[i].%s = %s\n}\n", names.field[t], names.field[t], f, names.readExpr(c))
				continue
			}
			p("{\nends := make([]int32, len(d.%s))\nvar all %s\n", names.field[t], names.goType(c))
			p("for i := range ends {\nn := r.count()\nfor k := 0; k < n; k++ {\nall = append(all, %s)\n}\nends[i] = int32(len(all))\n}\n", names.readExpr(c))
			p("start := int32(0)\nfor i, e := range ends {\nd.%s[i].%s = all[start:e:e]\nstart = e\n}\n}\n", names.field[t], f)
		}
		p("if r.bad || r.i != r.end {\nreturn nil, corrupt(%q, r.i)\n}\n", "table "+t.Name)
		if t.Key >= 0 {
			kc := t.Columns[t.Key]
			p("d.by%s = make(map[%s]int32, len(d.%s))\n", names.field[t], names.goType(kc), names.field[t])
			p("for i := range d.%s {\nd.by%s[d.%s[i].%s] = int32(i)\n}\n", names.field[t], names.field[t], names.field[t], names.col[kc])
		}
		p("r.i = r.end\n")
	}
	p("if r.i != len(s) {\nreturn nil, corrupt(\"trailing bytes\", r.i)\n}\nreturn d, nil\n}\n")
	out, err := format.Source(w.Bytes())
	if err != nil {
		return nil, fmt.Errorf("codegen: generated Go does not parse (a bug): %w", err)
	}
	return out, nil
}

func hasKind(b *sheet.Book, k sheet.Kind) bool {
	for _, t := range b.Tables {
		for _, c := range t.Columns {
			if c.Type.Kind == k {
				return true
			}
		}
	}
	return false
}

func constraintNote(c *sheet.Column) string {
	var parts []string
	if c.Key {
		parts = append(parts, "key")
	} else {
		if c.Unique {
			parts = append(parts, "unique")
		}
		if c.Required {
			parts = append(parts, "required")
		}
	}
	if c.Range != nil {
		parts = append(parts, "range("+c.Range.String()+")")
	}
	if c.Size != nil {
		parts = append(parts, "size("+c.Size.String()+")")
	}
	if c.Type.Ref != "" {
		parts = append(parts, "ref("+c.Type.Ref+")")
	}
	if c.OneOf != nil {
		vals := append([]string(nil), c.OneOf...)
		sort.Strings(vals)
		parts = append(parts, "oneof("+strings.Join(vals, "|")+")")
	}
	if len(parts) == 0 {
		return ""
	}
	return " " + strings.Join(parts, " ")
}

// goRuntime is the reader every generated file carries (standard library
// only, so that the generated package needs nothing else).
const goRuntime = `const headerSize = 72

// Errors of Load, wrapped in a *LoadError.
var (
	// ErrNotDataFile: the bytes are not a data file.
	ErrNotDataFile = errors.New("gamedata: not a data file")
	// ErrNewerFormat: the file's format is newer than FormatVersion.
	ErrNewerFormat = errors.New("gamedata: newer data file format")
	// ErrChecksum: the content hash does not match.
	ErrChecksum = errors.New("gamedata: content hash mismatch")
	// ErrSchema: the file's schema is not the one this code was generated for.
	ErrSchema = errors.New("gamedata: data file of another schema")
	// ErrCorrupt: the content is malformed.
	ErrCorrupt = errors.New("gamedata: malformed data file")
)

// LoadError is Load's error; Err is one of the Err* values.
type LoadError struct {
	Err    error
	Detail string
}

// Error returns the sentinel's text and the detail.
func (e *LoadError) Error() string { return e.Err.Error() + ": " + e.Detail }

// Unwrap returns Err.
func (e *LoadError) Unwrap() error { return e.Err }

func corrupt(what string, at int) error {
	return &LoadError{ErrCorrupt, what + " at byte " + strconv.Itoa(at)}
}

func checkHeader(data []byte) error {
	if len(data) < headerSize || string(data[:4]) != "MDTF" {
		return &LoadError{ErrNotDataFile, "no MDTF header"}
	}
	if f := int(data[4]) | int(data[5])<<8; f > FormatVersion || f == 0 {
		return &LoadError{ErrNewerFormat, "format " + strconv.Itoa(f) + ", this code reads up to " + strconv.Itoa(FormatVersion)}
	}
	if sum := sha256.Sum256(data[headerSize:]); string(sum[:]) != string(data[8:40]) {
		return &LoadError{ErrChecksum, "the body's SHA-256 is not the header's"}
	}
	if [32]byte(data[40:72]) != schemaHash {
		return &LoadError{ErrSchema, "regenerate the code from the sheets the file was built from"}
	}
	return nil
}

// reader reads values of s[i:end]; bad records any malformed value.
type reader struct {
	s      string
	i, end int
	bad    bool
}

func (r *reader) uvarint() uint64 {
	var x uint64
	for shift := uint(0); shift < 64; shift += 7 {
		if r.i >= r.end {
			r.bad = true
			return 0
		}
		b := r.s[r.i]
		r.i++
		if b < 0x80 {
			if shift == 63 && b > 1 {
				r.bad = true
				return 0
			}
			return x | uint64(b)<<shift
		}
		x |= uint64(b&0x7f) << shift
	}
	r.bad = true
	return 0
}

func (r *reader) varint() int64 {
	u := r.uvarint()
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

func (r *reader) int32() int32 {
	v := r.varint()
	if v < math.MinInt32 || v > math.MaxInt32 {
		r.bad = true
	}
	return int32(v)
}

// count reads a length or count: at most the bytes left (every element
// takes at least one byte).
func (r *reader) count() int {
	n := r.uvarint()
	if n > uint64(r.end-r.i) {
		r.bad = true
		return 0
	}
	return int(n)
}

func (r *reader) str() string {
	n := r.count()
	v := r.s[r.i : r.i+n]
	r.i += n
	return v
}

func (r *reader) float() float64 {
	if r.end-r.i < 8 {
		r.bad = true
		return 0
	}
	s := r.s[r.i : r.i+8]
	r.i += 8
	return math.Float64frombits(uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56)
}

func (r *reader) bool() bool {
	if r.i >= r.end || r.s[r.i] > 1 {
		r.bad = true
		return false
	}
	r.i++
	return r.s[r.i-1] == 1
}

func (r *reader) enum(n uint64) uint64 {
	v := r.uvarint()
	if v > n {
		r.bad = true
		return 0
	}
	return v
}

// zeroTime is the Unix time of an empty date-time cell.
const zeroTime = -62135596800

func (r *reader) time(zones map[int64]*time.Location) time.Time {
	sec, off := r.varint(), r.varint()
	if off < -86400 || off > 86400 {
		r.bad = true
		return time.Time{}
	}
	if sec == zeroTime && off == 0 {
		return time.Time{}
	}
	if off == 0 {
		return time.Unix(sec, 0).UTC()
	}
	loc, ok := zones[off]
	if !ok {
		loc = time.FixedZone("", int(off))
		zones[off] = loc
	}
	return time.Unix(sec, 0).In(loc)
}

`
