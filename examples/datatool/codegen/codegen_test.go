package codegen_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/madang-io/madang/examples/datatool/codegen"
	"github.com/madang-io/madang/examples/datatool/sheet"
)

func book(t *testing.T, csv ...string) *sheet.Book {
	t.Helper()
	var in []sheet.Input
	for i, c := range csv {
		in = append(in, sheet.Input{Name: []string{"t.csv", "u.csv"}[i], R: strings.NewReader(c)})
	}
	b, err := sheet.Read(sheet.Options{}, in...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNameCollisions(t *testing.T) {
	for _, c := range []struct {
		csv  []string
		want string
	}{
		{[]string{"a_id,a__id\nint,int\n\"\"\n"}, "Go field AID of t.a__id collides with column a_id"},
		{[]string{"id,e\nint,enum(x|y)\n\"\"\n", "id\nint\n\"\"\n"}, ""},
		{[]string{"id,row\nint,enum(x)\n\"\"\n"}, "Go name TRow of enum t.row collides with table t"},
	} {
		_, err := codegen.Go(book(t, c.csv...), codegen.GoOptions{})
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%q: err = %v, want %q", c.csv, err, c.want)
		}
	}
	if _, err := codegen.CSharp(book(t, "id,e\nint,enum(none|some)\n\"\"\n"), codegen.CSharpOptions{}); err == nil || !strings.Contains(err.Error(), "None") {
		t.Errorf("enum value none: err = %v", err)
	}
}

// TestCSharp compiles the generated C# of the example sheets
// (example/csharp/GameData.cs, kept up to date by the cli tests) with a
// program that loads the example data file and checks its values, with
// Mono's mcs, and runs it. Without mcs it is skipped, except in CI
// (MADANG_CI=1), where .ci/run installs Debian's mono-mcs.
func TestCSharp(t *testing.T) {
	mcs, err := exec.LookPath("mcs")
	if err != nil {
		if os.Getenv("MADANG_CI") == "1" {
			t.Fatal("mcs is not installed (Debian: apt-get install mono-mcs)")
		}
		t.Skip("mcs is not installed (Debian: apt-get install mono-mcs)")
	}
	mono, err := exec.LookPath("mono")
	if err != nil {
		t.Fatal("mcs without mono")
	}
	exe := filepath.Join(t.TempDir(), "check.exe")
	src := filepath.Join("..", "example", "csharp")
	if out, err := exec.Command(mcs, "-warnaserror+", "-out:"+exe, filepath.Join(src, "Check.cs"), filepath.Join(src, "GameData.cs")).CombinedOutput(); err != nil {
		t.Fatalf("mcs: %v\n%s", err, out)
	}
	out, err := exec.Command(mono, exe, filepath.Join("..", "example", "gamedata", "testdata", "data.bytes")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok: version 1, 3 items") {
		t.Fatalf("check.exe: %v\n%s", err, out)
	}
}
