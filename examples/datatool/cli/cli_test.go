package cli_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/madang-io/madang/examples/datatool/cli"
	"github.com/madang-io/madang/examples/datatool/datafile"
)

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{nil, {"frob"}, {"build"}, {"build", "-version", "1"}, {"build", "-nope"}, {"diff", "a"}} {
		if err := cli.Run(args, io.Discard); !errors.Is(err, cli.ErrUsage) {
			t.Errorf("%q: err = %v, want ErrUsage", args, err)
		}
	}
}

func TestDiffRefusesCorruptFile(t *testing.T) {
	data, err := os.ReadFile("../example/gamedata/testdata/data.bytes")
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), data...)
	bad[len(bad)-1] ^= 1
	p := filepath.Join(t.TempDir(), "bad.bytes")
	os.WriteFile(p, bad, 0o644)
	err = cli.Run([]string{"diff", "../example/gamedata/testdata/data.bytes", p}, io.Discard)
	if !errors.Is(err, datafile.ErrChecksum) {
		t.Fatalf("err = %v, want ErrChecksum", err)
	}
}
