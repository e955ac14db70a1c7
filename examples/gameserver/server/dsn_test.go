package server

import (
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/madang-io/madang/shard"
)

// TestMySQLDSNInterpolated: the common database's DSN and the game
// databases' template get interpolateParams=true (one round trip per
// statement), unless the operator's DSN decided otherwise.
func TestMySQLDSNInterpolated(t *testing.T) {
	for _, c := range []struct {
		dsn  string
		want bool
	}{
		{"game:secret@tcp(10.0.0.5:3306)/madang", true},
		{"game:secret@tcp(10.0.0.5:3306)/madang?parseTime=true", true},
		{"game:secret@tcp(10.0.0.5:3306)/madang?interpolateParams=false", false},
		{"game:secret@tcp(10.0.0.5:3306)/madang?charset=sjis", false},
	} {
		dsn, err := shard.MySQLDSN(c.dsn)
		if err != nil {
			t.Fatal(err)
		}
		mc, err := mysql.ParseDSN(dsn)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := dsnTemplate(mc)
		if mc.InterpolateParams != c.want || strings.Contains(tmpl, "interpolateParams=true") != c.want {
			t.Errorf("%q: common DSN %q, template %q; want interpolated %v", c.dsn, dsn, tmpl, c.want)
		}
		if !strings.Contains(tmpl, "@tcp({host}:{port})/{db}") {
			t.Errorf("%q: template %q", c.dsn, tmpl)
		}
	}
}
