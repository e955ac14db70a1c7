// Package cli holds what the example commands (examples/gameserver,
// examples/realtimeserver, examples/loadtest) share in reading their
// command lines: -h/-help as a request for the usage rather than an error,
// comma-separated lists in flags, and the servers' rule for their -redis
// and -redis-cluster flags.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/madang-io/madang/session"
)

// HelpError is Parse's answer to -h or -help: its message is the usage
// text ("Usage of <name>:" and the flag defaults, ending in a newline), and
// errors.Is(err, flag.ErrHelp) holds. A main prints the message to
// standard output and exits 0.
type HelpError struct {
	// Usage is the usage text.
	Usage string
}

// Error returns the usage text.
func (e *HelpError) Error() string { return e.Usage }

// Unwrap returns flag.ErrHelp.
func (e *HelpError) Unwrap() error { return flag.ErrHelp }

// Parse parses args with fs, which should use flag.ContinueOnError and,
// so that nothing is printed, an io.Discard output. It returns fs.Parse's
// error, except for -h or -help, where it returns a *HelpError with fs's
// usage.
func Parse(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if !errors.Is(err, flag.ErrHelp) {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Usage of %s:\n", fs.Name())
	out := fs.Output()
	fs.SetOutput(&b)
	fs.PrintDefaults()
	fs.SetOutput(out)
	return &HelpError{Usage: b.String()}
}

// Help handles a command line's error: for a *HelpError it writes the
// usage to w (a main's standard output) and returns nil, or the write's
// error, so the main exits 0; any other err it returns as it is.
func Help(w io.Writer, err error) error {
	var help *HelpError
	if !errors.As(err, &help) {
		return err
	}
	_, err = io.WriteString(w, help.Usage)
	return err
}

// RedisOptions turns the example servers' Redis flags into
// session.OpenRedis options: the cluster seeds (comma-separated) win over
// the node list (comma-separated, users routed by user key). ok is false
// when both are empty (the servers then keep everything in memory).
func RedisOptions(nodes, cluster string) (opt session.RedisOptions, ok bool) {
	switch {
	case cluster != "":
		opt.ClusterAddrs = SplitList(cluster)
	case nodes != "":
		opt.Addrs = SplitList(nodes)
	default:
		return opt, false
	}
	return opt, true
}

// SplitList splits a comma-separated list, such as a flag's addresses,
// trimming spaces and dropping empty items. It returns nil for a list
// with no items.
func SplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
