// Package datafile is the data tool's versioned data file: the validated
// tables of a sheet.Book in a compact binary form with a manifest, as the
// game server and clients load it (data_vXXX.bytes).
//
// # Layout (format version 1)
//
// All integers are little-endian; "uvarint" and "varint" are Go's
// encoding/binary variable-length integers (varint zig-zag encoded).
//
//	header (72 bytes)
//	  0  4  magic "MDTF"
//	  4  2  format version (1)
//	  6  2  reserved, 0
//	  8 32  SHA-256 of the body (everything after the header)
//	 40 32  SHA-256 of the schema section: the schema's fingerprint
//	body
//	  uvarint+bytes  data version (the name given to the build)
//	  uvarint+bytes  schema section:
//	    uvarint tables; per table: name, uvarint key column + 1 (0: none),
//	    uvarint columns; per column: name, kind byte (sheet.Kind), flags
//	    byte (1 list, 2 key, 4 unique, 8 required), uvarint enum values
//	    and each value, ref table name, time zone (strings: uvarint+bytes)
//	  per table: uvarint rows, uvarint payload bytes
//	  payload: per table, per column, the values of every row in order
//	    (columnar); a list row is a uvarint count then its elements:
//	    int, int64: varint; enum: uvarint ordinal (0 empty); bool: one
//	    byte; float: 8 bytes IEEE 754; string, langkey: uvarint+bytes;
//	    datetime: varint Unix seconds, varint zone offset in seconds.
//
// The decoder verifies the body's hash before reading anything else and
// refuses a newer format version (ErrNewerFormat), a wrong hash
// (ErrChecksum) and malformed content (ErrCorrupt) with a *DecodeError.
// Encoding is deterministic: the same tables give the same bytes.
package datafile

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/madang-io/madang/examples/datatool/sheet"
)

// Format constants.
const (
	// Magic starts every data file.
	Magic = "MDTF"
	// FormatVersion is the format this package writes and the newest it reads.
	FormatVersion = 1
	// HeaderSize is the fixed header's size in bytes.
	HeaderSize = 72
	// MaxTables and MaxColumns bound a file's schema.
	MaxTables  = 1024
	MaxColumns = 1024
	// MaxRows bounds one table's rows.
	MaxRows = 10_000_000
	// MaxNameLen bounds names, enum values, versions and zones in a file.
	MaxNameLen = 256
)

// Errors of Decode, wrapped in a *DecodeError.
var (
	// ErrNotDataFile: the bytes do not start with the magic.
	ErrNotDataFile = errors.New("datafile: not a data file")
	// ErrNewerFormat: the file's format version is newer than FormatVersion.
	ErrNewerFormat = errors.New("datafile: newer format version")
	// ErrChecksum: the body's SHA-256 is not the header's.
	ErrChecksum = errors.New("datafile: content hash mismatch")
	// ErrCorrupt: the content is malformed (the hash matched: a bad writer).
	ErrCorrupt = errors.New("datafile: malformed content")
)

// DecodeError is Decode's error: Err is one of the Err* values.
type DecodeError struct {
	Err    error
	Detail string
}

// Error returns the sentinel's text and the detail.
func (e *DecodeError) Error() string { return e.Err.Error() + ": " + e.Detail }

// Unwrap returns Err.
func (e *DecodeError) Unwrap() error { return e.Err }

// Flags of a column in the schema section.
const (
	flagList     = 1
	flagKey      = 2
	flagUnique   = 4
	flagRequired = 8
)

// Encode writes the tables of b as a data file named version.
func Encode(b *sheet.Book, version string) ([]byte, error) {
	if len(version) == 0 || len(version) > MaxNameLen {
		return nil, fmt.Errorf("datafile: data version must be 1..%d bytes", MaxNameLen)
	}
	schema := encodeSchema(b)
	var payload []byte
	sizes := make([][2]int, len(b.Tables))
	for ti, t := range b.Tables {
		start := len(payload)
		for _, c := range t.Columns {
			payload = appendColumn(payload, c, t.NumRows())
		}
		sizes[ti] = [2]int{t.NumRows(), len(payload) - start}
	}
	out := make([]byte, HeaderSize, HeaderSize+len(version)+len(schema)+len(payload)+16*len(sizes)+20)
	copy(out, Magic)
	binary.LittleEndian.PutUint16(out[4:], FormatVersion)
	out = appendString(out, version)
	out = binary.AppendUvarint(out, uint64(len(schema)))
	out = append(out, schema...)
	for _, s := range sizes {
		out = binary.AppendUvarint(out, uint64(s[0]))
		out = binary.AppendUvarint(out, uint64(s[1]))
	}
	out = append(out, payload...)
	body := sha256.Sum256(out[HeaderSize:])
	copy(out[8:40], body[:])
	sh := sha256.Sum256(schema)
	copy(out[40:72], sh[:])
	return out, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func encodeSchema(b *sheet.Book) []byte {
	var s []byte
	s = binary.AppendUvarint(s, uint64(len(b.Tables)))
	for _, t := range b.Tables {
		s = appendString(s, t.Name)
		s = binary.AppendUvarint(s, uint64(t.Key+1))
		s = binary.AppendUvarint(s, uint64(len(t.Columns)))
		for _, c := range t.Columns {
			s = appendString(s, c.Name)
			s = append(s, byte(c.Type.Kind), columnFlags(c))
			s = binary.AppendUvarint(s, uint64(len(c.Type.Enum)))
			for _, e := range c.Type.Enum {
				s = appendString(s, e)
			}
			s = appendString(s, c.Type.Ref)
			s = appendString(s, c.Type.Zone)
		}
	}
	return s
}

func columnFlags(c *sheet.Column) byte {
	var f byte
	if c.Type.List {
		f |= flagList
	}
	if c.Key {
		f |= flagKey
	}
	if c.Unique {
		f |= flagUnique
	}
	if c.Required {
		f |= flagRequired
	}
	return f
}

// SchemaHash returns the SHA-256 of b's schema section: the fingerprint
// generated code compares with a file's before loading it.
func SchemaHash(b *sheet.Book) [32]byte { return sha256.Sum256(encodeSchema(b)) }

func appendColumn(p []byte, c *sheet.Column, rows int) []byte {
	if !c.Type.List {
		for j := 0; j < rows; j++ {
			p = appendValue(p, c, j)
		}
		return p
	}
	for i := 0; i < rows; i++ {
		p = binary.AppendUvarint(p, uint64(int(c.Ends[i])-c.Start(i)))
		for j := c.Start(i); j < int(c.Ends[i]); j++ {
			p = appendValue(p, c, j)
		}
	}
	return p
}

func appendValue(p []byte, c *sheet.Column, j int) []byte {
	switch c.Type.Kind {
	case sheet.Int, sheet.Int64:
		return binary.AppendVarint(p, c.Ints[j])
	case sheet.Enum:
		return binary.AppendUvarint(p, uint64(c.Ints[j]))
	case sheet.Bool:
		return append(p, byte(c.Ints[j]))
	case sheet.Float:
		return binary.LittleEndian.AppendUint64(p, math.Float64bits(c.Floats[j]))
	case sheet.String, sheet.LangKey:
		return appendString(p, c.Strs[j])
	case sheet.DateTime:
		p = binary.AppendVarint(p, c.Ints[j])
		return binary.AppendVarint(p, int64(c.Offs[j]))
	}
	return p
}

// File is a decoded data file.
type File struct {
	// FormatVersion is the file's format version.
	FormatVersion int
	// Version is the data version named at build.
	Version string
	// Hash is the SHA-256 of the body; SchemaHash the schema's.
	Hash, SchemaHash [32]byte
	// Book holds the tables (Table.File and Sheet are empty, Rows holds
	// 1-based row numbers, Column.SheetCol 1-based column numbers).
	Book *sheet.Book
}

// HashString returns the body hash in hex.
func (f *File) HashString() string { return fmt.Sprintf("%x", f.Hash) }

// ReadHeader checks the header of data and returns the body hash, without
// hashing or decoding the body.
func ReadHeader(data []byte) (format int, hash [32]byte, err error) {
	if len(data) < HeaderSize || string(data[:4]) != Magic {
		return 0, hash, &DecodeError{ErrNotDataFile, "no " + strconv.Quote(Magic) + " header"}
	}
	format = int(binary.LittleEndian.Uint16(data[4:]))
	if format > FormatVersion {
		return format, hash, &DecodeError{ErrNewerFormat, fmt.Sprintf("format %d, this decoder reads up to %d", format, FormatVersion)}
	}
	if format == 0 {
		return format, hash, &DecodeError{ErrCorrupt, "format 0"}
	}
	copy(hash[:], data[8:40])
	return format, hash, nil
}

// Decode verifies and decodes a data file.
func Decode(data []byte) (*File, error) {
	format, hash, err := ReadHeader(data)
	if err != nil {
		return nil, err
	}
	if got := sha256.Sum256(data[HeaderSize:]); !bytes.Equal(got[:], hash[:]) {
		return nil, &DecodeError{ErrChecksum, fmt.Sprintf("body hash %x, header says %x", got[:8], hash[:8])}
	}
	f := &File{FormatVersion: format, Hash: hash}
	copy(f.SchemaHash[:], data[40:72])
	d := &dec{b: data, i: HeaderSize}
	f.Version = d.str(MaxNameLen)
	schemaLen := d.uint(len(data))
	schemaStart := d.i
	f.Book = d.schema()
	if d.err == nil && d.i != schemaStart+schemaLen {
		d.fail("schema section length")
	}
	if d.err == nil {
		if got := sha256.Sum256(data[schemaStart:d.i]); !bytes.Equal(got[:], f.SchemaHash[:]) {
			d.fail("schema hash")
		}
	}
	if d.err != nil {
		return nil, d.err
	}
	sizes := make([][2]int, len(f.Book.Tables))
	for i := range sizes {
		sizes[i][0] = d.uint(MaxRows)
		sizes[i][1] = d.uint(len(data))
	}
	for ti, t := range f.Book.Tables {
		if d.err != nil {
			return nil, d.err
		}
		end := d.i + sizes[ti][1]
		if end > len(data) || end < d.i {
			d.fail("table " + t.Name + " payload size")
			break
		}
		rows := sizes[ti][0]
		if len(t.Columns) > 0 && rows > sizes[ti][1] {
			d.fail("table " + t.Name + " rows")
			break
		}
		t.Rows = make([]int32, rows)
		for i := range t.Rows {
			t.Rows[i] = int32(i + 1)
		}
		for _, c := range t.Columns {
			d.column(c, rows, end)
		}
		if d.err == nil && d.i != end {
			d.fail("table " + t.Name + " payload length")
		}
	}
	if d.err == nil && d.i != len(data) {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return nil, d.err
	}
	return f, nil
}

type dec struct {
	b   []byte
	i   int
	err error
}

func (d *dec) fail(what string) {
	if d.err == nil {
		d.err = &DecodeError{ErrCorrupt, fmt.Sprintf("%s at byte %d", what, d.i)}
	}
}

// uint reads a uvarint of at most max.
func (d *dec) uint(max int) int {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.i:])
	if n <= 0 || v > uint64(max) {
		d.fail("bad length")
		return 0
	}
	d.i += n
	return int(v)
}

func (d *dec) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.i:])
	if n <= 0 {
		d.fail("bad integer")
		return 0
	}
	d.i += n
	return v
}

func (d *dec) byte1() byte {
	if d.err != nil || d.i >= len(d.b) {
		d.fail("truncated")
		return 0
	}
	d.i++
	return d.b[d.i-1]
}

func (d *dec) str(max int) string {
	n := d.uint(max)
	if d.err != nil {
		return ""
	}
	if n > len(d.b)-d.i {
		d.fail("truncated string")
		return ""
	}
	s := string(d.b[d.i : d.i+n])
	d.i += n
	return s
}

func (d *dec) schema() *sheet.Book {
	b := &sheet.Book{}
	nt := d.uint(MaxTables)
	for ti := 0; ti < nt && d.err == nil; ti++ {
		t := &sheet.Table{Name: d.str(MaxNameLen)}
		t.Key = d.uint(MaxColumns) - 1
		nc := d.uint(MaxColumns)
		for ci := 0; ci < nc && d.err == nil; ci++ {
			c := &sheet.Column{Name: d.str(MaxNameLen), SheetCol: ci + 1}
			c.Type.Kind = sheet.Kind(d.byte1())
			fl := d.byte1()
			c.Type.List = fl&flagList != 0
			c.Key, c.Unique, c.Required = fl&flagKey != 0, fl&flagUnique != 0, fl&flagRequired != 0
			ne := d.uint(sheet.MaxEnumValues)
			for e := 0; e < ne && d.err == nil; e++ {
				c.Type.Enum = append(c.Type.Enum, d.str(MaxNameLen))
			}
			c.Type.Ref = d.str(MaxNameLen)
			c.Type.Zone = d.str(MaxNameLen)
			if d.err == nil && !c.Type.Kind.Valid() {
				d.fail("column kind " + strconv.Itoa(int(c.Type.Kind)))
			}
			t.Columns = append(t.Columns, c)
		}
		if d.err == nil && t.Key >= len(t.Columns) {
			d.fail("key column")
		}
		b.Tables = append(b.Tables, t)
	}
	return b
}

// column reads one column of rows values ending before end.
func (d *dec) column(c *sheet.Column, rows, end int) {
	if !c.Type.List {
		d.values(c, rows, end)
		return
	}
	c.Ends = make([]int32, rows)
	total := 0
	for i := 0; i < rows && d.err == nil; i++ {
		n := d.uint(end - d.i)
		total += n
		if total > end { // every element takes at least one byte
			d.fail("list length")
			return
		}
		d.values(c, n, end)
		c.Ends[i] = int32(total)
	}
}

// values appends n values of c's kind.
func (d *dec) values(c *sheet.Column, n, end int) {
	if d.err != nil {
		return
	}
	if n > end-d.i {
		d.fail("value count")
		return
	}
	switch c.Type.Kind {
	case sheet.Float:
		if n*8 > end-d.i {
			d.fail("truncated floats")
			return
		}
		for k := 0; k < n; k++ {
			c.Floats = append(c.Floats, math.Float64frombits(binary.LittleEndian.Uint64(d.b[d.i:])))
			d.i += 8
		}
	case sheet.String, sheet.LangKey:
		for k := 0; k < n && d.err == nil; k++ {
			c.Strs = append(c.Strs, d.str(end-d.i))
		}
	case sheet.Bool:
		for k := 0; k < n && d.err == nil; k++ {
			v := d.byte1()
			if v > 1 {
				d.fail("bool")
			}
			c.Ints = append(c.Ints, int64(v))
		}
	case sheet.Enum:
		for k := 0; k < n && d.err == nil; k++ {
			c.Ints = append(c.Ints, int64(d.uint(len(c.Type.Enum))))
		}
	case sheet.Int, sheet.Int64:
		for k := 0; k < n && d.err == nil; k++ {
			v := d.varint()
			if c.Type.Kind == sheet.Int && (v < math.MinInt32 || v > math.MaxInt32) {
				d.fail("int out of 32 bits")
			}
			c.Ints = append(c.Ints, v)
		}
	case sheet.DateTime:
		for k := 0; k < n && d.err == nil; k++ {
			c.Ints = append(c.Ints, d.varint())
			off := d.varint()
			if off < -24*3600 || off > 24*3600 {
				d.fail("zone offset")
			}
			c.Offs = append(c.Offs, int32(off))
		}
	}
	if d.i > end {
		d.fail("value past its table")
	}
}
