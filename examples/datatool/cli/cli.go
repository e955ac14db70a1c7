// Package cli is the datatool command: build (sheets → data file + Go
// code), diff (two data files) and upload (a data file to a game server's
// ops API). examples/datatool's main calls Run.
package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/madang-io/madang/examples/datatool/codegen"
	"github.com/madang-io/madang/examples/datatool/datafile"
	"github.com/madang-io/madang/examples/datatool/sheet"
)

// Usage is the command's usage text.
const Usage = `usage:
  datatool build -version V [-out FILE] [-go FILE] [-go-package NAME] [-cs FILE]
                 [-cs-namespace NAME] [-lang-table NAME] SHEETS...
      reads the .xlsx and .csv files (a directory: the ones in it), reports every
      problem, and writes the data file (default data_vV.bytes) and, with -go and
      -cs, the Go and C# code that loads it
  datatool diff OLD NEW
      prints the changes from data file OLD to NEW: tables and columns added and
      removed, rows added (+), removed (-) and changed (~) field by field
  datatool upload -url URL [-token T] [-by NAME] [-comment TEXT]
                  (-version V [-lang-table NAME] SHEETS... | -file DATAFILE)
      builds the sheets (or reads a data file) and validates them locally, sends
      the data file to the game server's ops API (URL: its game data endpoint,
      e.g. http://127.0.0.1:8081/v1/gamedata; token: -token or MADANG_ADMIN_TOKEN;
      by: default $USER) and prints the server's answer; the server validates
      the file again (the game's own rules) and stores nothing if it refuses it
`

// ErrUsage is returned (wrapped) for a bad command line.
var ErrUsage = errors.New("datatool: bad command line")

// Run runs the command args (without the program name), writing its
// output to stdout. A *sheet.ValidationError lists every problem of the
// sheets.
func Run(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: no command\n%s", ErrUsage, Usage)
	}
	switch args[0] {
	case "build":
		return build(args[1:], stdout)
	case "diff":
		return diff(args[1:], stdout)
	case "upload":
		return upload(args[1:], stdout)
	case "-h", "-help", "--help", "help":
		_, err := io.WriteString(stdout, Usage)
		return err
	}
	return fmt.Errorf("%w: unknown command %q\n%s", ErrUsage, args[0], Usage)
}

func build(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("datatool build", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	version := fs.String("version", "", "the data version's name (required)")
	out := fs.String("out", "", "the data file to write (default data_v<version>.bytes)")
	goOut := fs.String("go", "", "the Go file to write (none if empty)")
	goPkg := fs.String("go-package", "gamedata", "the generated Go package's name")
	csOut := fs.String("cs", "", "the C# file to write (none if empty)")
	csNS := fs.String("cs-namespace", "GameData", "the generated C# namespace")
	lang := fs.String("lang-table", "strings", "the table whose keys langkey cells name")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v\n%s", ErrUsage, err, Usage)
	}
	if *version == "" || fs.NArg() == 0 {
		return fmt.Errorf("%w: build needs -version and at least one sheet file\n%s", ErrUsage, Usage)
	}
	if *out == "" {
		*out = "data_v" + *version + ".bytes"
	}
	book, err := sheet.ReadFiles(sheet.Options{LangTable: *lang}, fs.Args()...)
	if err != nil {
		return err
	}
	data, err := datafile.Encode(book, *version)
	if err != nil {
		return err
	}
	var code []byte
	if *goOut != "" {
		if code, err = codegen.Go(book, codegen.GoOptions{Package: *goPkg}); err != nil {
			return err
		}
	}
	var cs []byte
	if *csOut != "" {
		if cs, err = codegen.CSharp(book, codegen.CSharpOptions{Namespace: *csNS}); err != nil {
			return err
		}
	}
	if err := writeFile(*out, data); err != nil {
		return err
	}
	rows := 0
	for _, t := range book.Tables {
		rows += t.NumRows()
	}
	fmt.Fprintf(stdout, "%s: version %s, %d tables, %d rows, %d bytes, sha256 %x\n", *out, *version, len(book.Tables), rows, len(data), data[8:40])
	if code != nil {
		if err := writeFile(*goOut, code); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: package %s\n", *goOut, *goPkg)
	}
	if cs != nil {
		if err := writeFile(*csOut, cs); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: namespace %s\n", *csOut, *csNS)
	}
	return nil
}

// writeFile writes through a temporary file and a rename, so that a
// reader never sees half a file.
func writeFile(name string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o644); err != nil { // CreateTemp's 0600 would keep the file from its readers
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}

func diff(args []string, stdout io.Writer) error {
	if len(args) != 2 || strings.HasPrefix(args[0], "-") {
		return fmt.Errorf("%w: diff needs two data files\n%s", ErrUsage, Usage)
	}
	var files [2]*datafile.File
	for i, name := range args {
		data, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		if files[i], err = datafile.Decode(data); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	fmt.Fprintf(stdout, "--- %s (version %s)\n+++ %s (version %s)\n", args[0], files[0].Version, args[1], files[1].Version)
	return datafile.WriteDiff(stdout, datafile.Diff(files[0].Book, files[1].Book))
}

// ErrRefused is returned (wrapped, with the server's answer) when the server
// refuses an upload.
var ErrRefused = errors.New("datatool: the server refused the upload")

// MaxAnswer bounds the server's answer read by upload (1 MiB).
const MaxAnswer = 1 << 20

func upload(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("datatool upload", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	url := fs.String("url", "", "the game data ops endpoint, e.g. http://127.0.0.1:8081/v1/gamedata (required)")
	token := fs.String("token", "", "the ops bearer token (default: $MADANG_ADMIN_TOKEN)")
	by := fs.String("by", "", "who uploads (default: $USER)")
	comment := fs.String("comment", "", "what changed")
	version := fs.String("version", "", "build the sheets as this data version")
	file := fs.String("file", "", "upload this data file instead of building sheets")
	lang := fs.String("lang-table", "strings", "the table whose keys langkey cells name")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v\n%s", ErrUsage, err, Usage)
	}
	if *url == "" || (*file == "") == (*version == "") || (*file != "") != (fs.NArg() == 0) {
		return fmt.Errorf("%w: upload needs -url and either -version with sheets or -file\n%s", ErrUsage, Usage)
	}
	if *token == "" {
		*token = os.Getenv("MADANG_ADMIN_TOKEN")
	}
	if *by == "" {
		*by = os.Getenv("USER")
	}
	if *token == "" || *by == "" {
		return fmt.Errorf("%w: upload needs a token (-token or MADANG_ADMIN_TOKEN) and an uploader (-by or USER)\n%s", ErrUsage, Usage)
	}
	var data []byte
	if *file != "" {
		var err error
		if data, err = os.ReadFile(*file); err != nil {
			return err
		}
		if _, err := datafile.Decode(data); err != nil {
			return fmt.Errorf("%s: %w", *file, err)
		}
	} else {
		book, err := sheet.ReadFiles(sheet.Options{LangTable: *lang}, fs.Args()...)
		if err != nil {
			return err
		}
		if data, err = datafile.Encode(book, *version); err != nil {
			return err
		}
	}
	body, err := json.Marshal(map[string]any{"uploaded_by": *by, "comment": *comment, "data": data})
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPost, strings.TrimSuffix(*url, "/")+"/versions", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: -url: %v", ErrUsage, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+*token)
	client := &http.Client{Timeout: time.Minute}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("datatool: upload: %w", err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, MaxAnswer))
	if err != nil {
		return fmt.Errorf("datatool: upload: reading the answer: %w", err)
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, answer, "", "  ") == nil {
		answer = pretty.Bytes()
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%w: %s\n%s", ErrRefused, resp.Status, answer)
	}
	fmt.Fprintf(stdout, "%s (%d bytes, sha256 %x): %s\n%s\n", req.URL, len(data), data[8:40], resp.Status, bytes.TrimSpace(answer))
	return nil
}
