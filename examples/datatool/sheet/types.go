package sheet

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Kind is the kind of a column's values (of its elements, for a list).
type Kind uint8

// Kinds of values. The numbers are part of the data file format
// (package datafile): never renumber them.
const (
	// Int is a 32-bit signed integer (type "int").
	Int Kind = 1
	// Int64 is a 64-bit signed integer (type "int64").
	Int64 Kind = 2
	// Float is a 64-bit floating point number (type "float"); NaN and
	// infinities are refused.
	Float Kind = 3
	// Bool is true or false (type "bool"; cells true, false, 1 or 0, any case).
	Bool Kind = 4
	// String is text (type "string").
	String Kind = 5
	// Enum is one of the column's declared values (type "enum(a|b|c)"),
	// stored as its 1-based ordinal; 0 is an empty cell.
	Enum Kind = 6
	// DateTime is an instant with the column's time zone (type
	// "datetime(Asia/Seoul)", "datetime(UTC)" or "datetime(+09:00)"),
	// to the second.
	DateTime Kind = 7
	// LangKey is the key of a language string (type "langkey"): a string
	// that must be a key of the language table (Options.LangTable).
	LangKey Kind = 8
)

var kindNames = [...]string{Int: "int", Int64: "int64", Float: "float", Bool: "bool", String: "string", Enum: "enum", DateTime: "datetime", LangKey: "langkey"}

// String returns the kind's name in the type row ("int", "enum", ...).
func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Valid reports whether k is one of the declared kinds.
func (k Kind) Valid() bool { return k >= Int && k <= LangKey }

// Type is a column's type, read from the type row.
type Type struct {
	// Kind is the kind of the values (of the elements of a list). For a
	// reference, the kind of the referenced table's key column.
	Kind Kind
	// List: the cell is a comma-separated list of values of Kind
	// (type "list<T>").
	List bool
	// Enum holds the declared values of an Enum, in order (ordinal i+1).
	Enum []string
	// Ref names the table whose key the values are (type "ref(table)" or
	// constraint "ref(table)"); empty if none.
	Ref string
	// Zone is the time zone of a DateTime: an IANA name ("Asia/Seoul"),
	// "UTC", or a fixed offset "+09:00".
	Zone string

	loc *time.Location
}

// String returns the type as written in the type row.
func (t Type) String() string {
	var s string
	switch {
	case t.Ref != "" && t.Kind == 0:
		s = "ref(" + t.Ref + ")"
	case t.Kind == Enum:
		s = "enum(" + strings.Join(t.Enum, "|") + ")"
	case t.Kind == DateTime:
		s = "datetime(" + t.Zone + ")"
	default:
		s = t.Kind.String()
	}
	if t.List {
		s = "list<" + s + ">"
	}
	return s
}

// Location returns the time zone of a DateTime type (nil otherwise).
func (t Type) Location() *time.Location { return t.loc }

// parseType parses a type cell.
func parseType(s string) (Type, error) {
	s = strings.TrimSpace(s)
	var t Type
	if inner, ok := cutCall(s, "list<", ">"); ok {
		el, err := parseType(inner)
		if err != nil {
			return t, err
		}
		if el.List {
			return t, fmt.Errorf("a list of lists is not supported")
		}
		el.List = true
		return el, nil
	}
	switch s {
	case "int", "int32":
		t.Kind = Int
	case "int64":
		t.Kind = Int64
	case "float", "float64", "double":
		t.Kind = Float
	case "bool":
		t.Kind = Bool
	case "string":
		t.Kind = String
	case "langkey":
		t.Kind = LangKey
	default:
		if inner, ok := cutCall(s, "enum(", ")"); ok {
			vals := strings.Split(inner, "|")
			seen := make(map[string]bool, len(vals))
			for i, v := range vals {
				v = strings.TrimSpace(v)
				if !validIdent(v) {
					return t, fmt.Errorf("enum value %q is not a name (a letter, then letters, digits or _)", v)
				}
				if seen[v] {
					return t, fmt.Errorf("enum value %q declared twice", v)
				}
				seen[v] = true
				vals[i] = v
			}
			if len(vals) > MaxEnumValues {
				return t, fmt.Errorf("more than %d enum values", MaxEnumValues)
			}
			t.Kind, t.Enum = Enum, vals
		} else if inner, ok := cutCall(s, "ref(", ")"); ok {
			inner = strings.TrimSpace(inner)
			if !validName(inner) {
				return t, fmt.Errorf("ref(%s): %q is not a table name", inner, inner)
			}
			t.Ref = inner // Kind resolved from the referenced key column
		} else if inner, ok := cutCall(s, "datetime(", ")"); ok {
			loc, err := parseZone(strings.TrimSpace(inner))
			if err != nil {
				return t, err
			}
			t.Kind, t.Zone, t.loc = DateTime, strings.TrimSpace(inner), loc
		} else if s == "datetime" {
			return t, fmt.Errorf("datetime needs its time zone: datetime(UTC), datetime(Asia/Seoul) or datetime(+09:00)")
		} else if s == "" {
			return t, fmt.Errorf("empty type")
		} else {
			return t, fmt.Errorf("unknown type %q (int, int64, float, bool, string, langkey, enum(a|b), ref(table), datetime(zone), list<T>)", s)
		}
	}
	return t, nil
}

// parseZone reads a datetime zone: an IANA name, "UTC" or "+hh:mm"/"-hh:mm".
func parseZone(z string) (*time.Location, error) {
	if z == "" {
		return nil, fmt.Errorf("datetime needs its time zone")
	}
	if z[0] == '+' || z[0] == '-' {
		t, err := time.Parse("-07:00", z)
		if err != nil {
			return nil, fmt.Errorf("zone %q is not an offset like +09:00", z)
		}
		_, off := t.Zone()
		return time.FixedZone(z, off), nil
	}
	loc, err := time.LoadLocation(z)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q", z)
	}
	return loc, nil
}

// cutCall returns the text between prefix and suffix if s is prefix…suffix.
func cutCall(s, prefix, suffix string) (string, bool) {
	if len(s) >= len(prefix)+len(suffix) && strings.HasPrefix(s, prefix) && strings.HasSuffix(s, suffix) {
		return s[len(prefix) : len(s)-len(suffix)], true
	}
	return "", false
}

// Bounds is an inclusive range; a missing side is unbounded.
type Bounds struct {
	HasMin, HasMax bool
	// Min and Max are the bounds of a float range; of integers, lengths
	// and counts too, when they are exact in a float64 (MinInt/MaxInt are
	// exact).
	Min, Max float64
	// MinInt and MaxInt are the bounds of an integer range or a size.
	MinInt, MaxInt int64
}

// String returns "min..max" (a side empty when unbounded).
func (b Bounds) String() string {
	var lo, hi string
	if b.HasMin {
		lo = strconv.FormatFloat(b.Min, 'f', -1, 64)
	}
	if b.HasMax {
		hi = strconv.FormatFloat(b.Max, 'f', -1, 64)
	}
	return lo + ".." + hi
}

func parseBounds(s string) (Bounds, error) {
	var b Bounds
	lo, hi, ok := strings.Cut(s, "..")
	if !ok {
		return b, fmt.Errorf("%q is not min..max", s)
	}
	for i, part := range []string{strings.TrimSpace(lo), strings.TrimSpace(hi)} {
		if part == "" {
			continue
		}
		f, err := strconv.ParseFloat(part, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return b, fmt.Errorf("bound %q is not a number", part)
		}
		n, ierr := strconv.ParseInt(part, 10, 64)
		if ierr != nil {
			n = int64(f) // fractional bound of an integer column: truncated (floor for ≥ 0)
			if i == 0 && float64(n) < f {
				n++
			}
		}
		if i == 0 {
			b.HasMin, b.Min, b.MinInt = true, f, n
		} else {
			b.HasMax, b.Max, b.MaxInt = true, f, n
		}
	}
	if b.HasMin && b.HasMax && b.Min > b.Max {
		return b, fmt.Errorf("min %s is above max %s", lo, hi)
	}
	return b, nil
}

// validName reports whether s is a table or column name: a lower-case
// letter, then lower-case letters, digits or '_', at most MaxNameLen bytes.
func validName(s string) bool {
	if s == "" || len(s) > MaxNameLen || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// validIdent reports whether s is an enum value: a letter, then letters,
// digits or '_', at most MaxNameLen bytes.
func validIdent(s string) bool {
	if s == "" || len(s) > MaxNameLen || !(s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z') {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// CellName returns the A1 name of a cell (col and row 1-based).
func CellName(col, row int) string {
	var buf [16]byte
	i := len(buf)
	for c := col; c > 0; c = (c - 1) / 26 {
		i--
		buf[i] = byte('A' + (c-1)%26)
	}
	return string(buf[i:]) + strconv.Itoa(row)
}

// ColumnName returns the letters of a 1-based column ("A", "AB").
func ColumnName(col int) string {
	s := CellName(col, 0)
	return s[:len(s)-1]
}
