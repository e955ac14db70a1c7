// Command datatool turns designers' spreadsheets into a validated,
// versioned data file and the Go code that loads it, and compares two data
// files. The sheet format is described in package sheet (sheet/doc.go) and
// in README.md; the command line in package cli.
//
//	datatool build -version 3 -go gamedata/gamedata.go sheets/
//	datatool diff data_v2.bytes data_v3.bytes
package main

import (
	"errors"
	"fmt"
	"os"
	_ "time/tzdata" // datetime(Asia/Seoul) resolves on a machine without a zone database

	"github.com/madang-io/madang/examples/datatool/cli"
)

func main() {
	if err := cli.Run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if errors.Is(err, cli.ErrUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}
