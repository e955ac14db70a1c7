package game

import "testing"

// TestHasReturning: only MariaDB 10.5 and later get the statements with
// RETURNING; MySQL, vtgate and older MariaDB keep the portable ones.
func TestHasReturning(t *testing.T) {
	for v, want := range map[string]bool{
		"10.11.19-MariaDB-0+deb12u1": true,
		"10.5.0-MariaDB":             true,
		"11.4.2-MariaDB-log":         true,
		"5.5.5-10.6.12-MariaDB":      true,
		"10.4.32-MariaDB":            false,
		"10.3.39-MariaDB-0+deb10u1":  false,
		"8.0.36":                     false,
		"8.0.30-Vitess":              false,
		"5.7.44-log":                 false,
		"MariaDB":                    false,
		"x.y-MariaDB":                false,
		"":                           false,
	} {
		if got := hasReturning(v); got != want {
			t.Errorf("hasReturning(%q) = %v, want %v", v, got, want)
		}
	}
}
