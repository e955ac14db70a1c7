package datafile

import (
	"fmt"
	"io"
	"strings"

	"github.com/madang-io/madang/examples/datatool/sheet"
)

// Change is one difference between two data files.
type Change struct {
	// Kind is "+table", "-table", "+column", "-column", "type" (a
	// column's type changed), "+row", "-row" or "~row".
	Kind string
	// Table and Key locate it (Key: the row's key, or "#n" for a table
	// without a key column; empty for table and column changes).
	Table, Key string
	// Column names the column of a column change.
	Column string
	// Fields lists the changed fields of a "~row", in column order.
	Fields []FieldChange
}

// FieldChange is one changed field of a row.
type FieldChange struct {
	Column   string
	Old, New string
}

// String returns the change as one line.
func (c Change) String() string {
	switch c.Kind {
	case "+table", "-table":
		return c.Kind[:1] + " table " + c.Table
	case "+column", "-column", "type":
		if c.Kind == "type" {
			return fmt.Sprintf("~ %s.%s type %s → %s", c.Table, c.Column, c.Fields[0].Old, c.Fields[0].New)
		}
		return c.Kind[:1] + " column " + c.Table + "." + c.Column
	case "+row", "-row":
		return c.Kind[:1] + " " + c.Table + "[" + c.Key + "]"
	}
	var b strings.Builder
	b.WriteString("~ " + c.Table + "[" + c.Key + "]:")
	for i, f := range c.Fields {
		if i > 0 {
			b.WriteString(";")
		}
		fmt.Fprintf(&b, " %s: %q → %q", f.Column, f.Old, f.New)
	}
	return b.String()
}

// Diff compares two decoded files: tables and columns added and removed,
// column types changed, and rows added, removed and changed field by field
// (rows match by key; in a table without a key, by position). Changes come
// in the new file's table order, then removed tables.
func Diff(old, new *sheet.Book) []Change {
	var out []Change
	for _, nt := range new.Tables {
		ot := old.Table(nt.Name)
		if ot == nil {
			out = append(out, Change{Kind: "+table", Table: nt.Name})
			continue
		}
		out = append(out, diffTable(ot, nt)...)
	}
	for _, ot := range old.Tables {
		if new.Table(ot.Name) == nil {
			out = append(out, Change{Kind: "-table", Table: ot.Name})
		}
	}
	return out
}

func diffTable(ot, nt *sheet.Table) []Change {
	var out []Change
	type pair struct{ o, n *sheet.Column }
	var common []pair
	for _, nc := range nt.Columns {
		oc := ot.Column(nc.Name)
		switch {
		case oc == nil:
			out = append(out, Change{Kind: "+column", Table: nt.Name, Column: nc.Name})
		case oc.Type.String() != nc.Type.String():
			out = append(out, Change{Kind: "type", Table: nt.Name, Column: nc.Name, Fields: []FieldChange{{nc.Name, oc.Type.String(), nc.Type.String()}}})
			common = append(common, pair{oc, nc}) // compared as text
		default:
			common = append(common, pair{oc, nc})
		}
	}
	for _, oc := range ot.Columns {
		if nt.Column(oc.Name) == nil {
			out = append(out, Change{Kind: "-column", Table: nt.Name, Column: oc.Name})
		}
	}
	oldIdx := map[string]int{}
	for i := 0; i < ot.NumRows(); i++ {
		oldIdx[ot.KeyString(i)] = i
	}
	if (ot.Key < 0) != (nt.Key < 0) {
		oldIdx = map[string]int{}
		for i := 0; i < ot.NumRows(); i++ {
			oldIdx[fmt.Sprintf("#%d", i+1)] = i
		}
	}
	seen := make([]bool, ot.NumRows())
	for i := 0; i < nt.NumRows(); i++ {
		k := nt.KeyString(i)
		if (ot.Key < 0) != (nt.Key < 0) {
			k = fmt.Sprintf("#%d", i+1)
		}
		j, ok := oldIdx[k]
		if !ok {
			out = append(out, Change{Kind: "+row", Table: nt.Name, Key: k})
			continue
		}
		seen[j] = true
		var fields []FieldChange
		for _, p := range common {
			if o, n := p.o.Format(j), p.n.Format(i); o != n {
				fields = append(fields, FieldChange{p.n.Name, o, n})
			}
		}
		if fields != nil {
			out = append(out, Change{Kind: "~row", Table: nt.Name, Key: k, Fields: fields})
		}
	}
	for j, s := range seen {
		if !s {
			k := ot.KeyString(j)
			if (ot.Key < 0) != (nt.Key < 0) {
				k = fmt.Sprintf("#%d", j+1)
			}
			out = append(out, Change{Kind: "-row", Table: nt.Name, Key: k})
		}
	}
	return out
}

// WriteDiff writes changes one a line, then a summary line per table
// with row changes ("items: +1 -0 ~2 rows"), or "no changes".
func WriteDiff(w io.Writer, changes []Change) error {
	type counts struct{ add, del, mod int }
	var order []string
	sum := map[string]*counts{}
	for _, c := range changes {
		if _, err := fmt.Fprintln(w, c.String()); err != nil {
			return err
		}
		n := sum[c.Table]
		if n == nil {
			n = &counts{}
			sum[c.Table] = n
			order = append(order, c.Table)
		}
		switch c.Kind {
		case "+row":
			n.add++
		case "-row":
			n.del++
		case "~row":
			n.mod++
		}
	}
	for _, t := range order {
		n := sum[t]
		if *n == (counts{}) {
			continue
		}
		if _, err := fmt.Fprintf(w, "%s: +%d -%d ~%d rows\n", t, n.add, n.del, n.mod); err != nil {
			return err
		}
	}
	if len(changes) == 0 {
		_, err := fmt.Fprintln(w, "no changes")
		return err
	}
	return nil
}
