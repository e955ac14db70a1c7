// Command testjson reads `go test -json` on stdin and enforces CI's test rules:
// every test passes and none skips (in CI every test must run; a skip means a
// service or tool is missing, or a test that can never run). As events come it
// prints a line per package and the output of each failed or skipped test and
// of each failed package (a build failure, a panic, a timeout); then a summary.
// It exits 1 if anything failed or skipped. It does not judge go test's exit status: run it
// under `set -o pipefail`.
//
// .ci/run uses it: go test -json ./... | go run .ci/testjson.go
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action     string
	Package    string
	ImportPath string // build events (go1.24+)
	Test       string
	Elapsed    float64
	Output     string
}

func main() {
	bad, err := check(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testjson:", err)
		os.Exit(2)
	}
	if bad {
		os.Exit(1)
	}
}

// check reads events from r and reports on w as they come: a line per
// package, the output of each failed or skipped test, then a summary. bad says
// whether a test or a package failed, or a test skipped.
func check(r io.Reader, w io.Writer) (bad bool, err error) {
	type key struct{ pkg, test string }
	output := map[key]*strings.Builder{}
	show := func(title string, k key) {
		name := k.pkg
		if k.test != "" {
			name += " " + k.test
		}
		fmt.Fprintf(w, "--- %s: %s\n", title, name)
		if b := output[k]; b != nil {
			fmt.Fprint(w, b.String())
		}
	}
	var passed, failed, skipped, packages, failedPkgs int
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil || e.Action == "" {
			// Not an event (go test's exit status tells whether it
			// failed): pass it on.
			fmt.Fprintf(w, "%s\n", line)
			continue
		}
		k := key{e.Package, e.Test}
		switch e.Action {
		case "build-output":
			fmt.Fprint(w, e.Output)
		case "build-fail":
			fmt.Fprintf(w, "--- build failed: %s\n", e.ImportPath)
			bad = true
		case "output":
			b := output[k]
			if b == nil {
				b = &strings.Builder{}
				output[k] = b
			}
			b.WriteString(e.Output)
		case "pass":
			if e.Test != "" {
				passed++
			} else {
				packages++
				fmt.Fprintf(w, "ok    %s %.1fs\n", e.Package, e.Elapsed)
			}
		case "skip":
			if e.Test != "" {
				skipped++
				show("SKIP (CI must not skip: make the test run, or delete it)", k)
			} else {
				packages++ // no test files
			}
		case "fail":
			if e.Test != "" {
				failed++
				show("FAIL", k)
			} else {
				packages++
				failedPkgs++
				// Tests that never ended (a timeout's panic names them
				// and lands in their output): show them first.
				for _, u := range slices.SortedFunc(maps.Keys(output), func(a, b key) int { return strings.Compare(a.test, b.test) }) {
					if u.pkg == e.Package && u.test != "" {
						show("UNFINISHED (running when the package failed)", u)
						delete(output, u)
					}
				}
				show("FAIL package", k)
			}
		}
		if e.Action == "pass" || e.Action == "fail" || e.Action == "skip" {
			delete(output, k)
		}
	}
	if err := sc.Err(); err != nil {
		return true, err
	}
	fmt.Fprintf(w, "\ntestjson: %d packages, %d tests passed, %d failed, %d skipped; %d packages failed\n",
		packages, passed, failed, skipped, failedPkgs)
	return bad || failed > 0 || skipped > 0 || failedPkgs > 0, nil
}
