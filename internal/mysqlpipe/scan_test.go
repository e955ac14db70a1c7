package mysqlpipe

import "testing"

func TestCombinable(t *testing.T) {
	for _, c := range []struct {
		q    string
		n    int
		want bool
	}{
		{"SELECT 1", 0, true},
		{"INSERT INTO t VALUES (?, ?)", 2, true},
		{"INSERT INTO t VALUES (?, ?)", 1, false},
		{"INSERT INTO t VALUES (?, ?);", 2, true},
		{"SELECT '?', \"?\", `?` FROM t WHERE a = ?", 1, true},
		{"SELECT 'it''s ?' WHERE a = ?", 1, true},
		{"SELECT 1 /* ? */ + ?", 1, true},
		{"SELECT 1 # ?\n + ?", 1, true},
		{"SELECT 1 -- ?\n + ?", 1, true},
		{"SELECT 1 --?", 1, true},   // not a comment without the space
		{"SELECT 1 -- ?", 0, false}, // ends in a comment
		{"SELECT 1 # x", 0, false},
		{"SELECT 1 /* x", 0, false},
		{"SELECT 'x", 0, false},
		{"SELECT `x", 0, false},
		{"SELECT 'a\\'?' + ?", 1, false},   // a backslash in a string
		{"SELECT 1 /*/ ? */ + ?", 2, true}, // the driver reads "/*/" as a whole comment
		{"", 0, false},
		{" ; ", 0, false},
		{"SELECT ? ; SELECT ?", 2, true},
	} {
		if got := combinable(c.q, c.n); got != c.want {
			t.Errorf("combinable(%q, %d) = %v, want %v", c.q, c.n, got, c.want)
		}
	}
}

// FuzzCombinable: a combinable statement followed by another keeps every
// placeholder the statements' own: the combined text counts the sum.
func FuzzCombinable(f *testing.F) {
	for _, q := range []string{"SELECT ?", "SELECT '?' -- x\n, ?", "INSERT INTO t VALUES (?, /* ? */ ?);", "SELECT `a?` FROM t WHERE b = \"?\" AND c = ?"} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		n := -1
		for i := 0; i <= len(q); i++ {
			if combinable(q, i) {
				n = i
				break
			}
		}
		if n < 0 {
			return
		}
		combined := "START TRANSACTION" + sep + trimStatement(q) + sep + "SELECT ?"
		if !combinable(combined, n+1) {
			t.Errorf("%q combinable with %d arguments, but %q not with %d", q, n, combined, n+1)
		}
	})
}
