// Package cmdline holds what the example commands (examples/gameserver,
// examples/realtimeserver, examples/loadtest) share in reading their
// command lines: -h/-help as a request for the usage rather than an error,
// comma-separated lists in flags, the servers' rule for their -redis and
// -redis-cluster flags, strict boolean switches (flags and environment
// variables) and the loopback rule of development mode.
//
// It is a package of the examples rather than an internal one so that an
// example copied into another module (a studio's own server) still
// compiles: it imports this package from the madang module.
package cmdline

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
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

// ParseBool parses the value of the boolean switch name (a flag such as
// "-dev" or an environment variable such as "MADANG_DEV") strictly: it
// accepts exactly strconv.ParseBool's set ("1", "t", "T", "true", "TRUE",
// "True" and "0", "f", "F", "false", "FALSE", "False"). Anything else —
// "no", "off", "yes", " 1", "" — is an error naming the switch and the
// accepted values, so a main refuses to start instead of guessing.
func ParseBool(name, value string) (bool, error) {
	b, err := strconv.ParseBool(value)
	if err != nil {
		return false, fmt.Errorf("%s=%q is not a boolean: use true or false (or 1, 0, t, f, TRUE, FALSE, True, False)", name, value)
	}
	return b, nil
}

// EnvBool reads the boolean environment variable name through getenv: def
// when it is unset or empty, else its value parsed by ParseBool (an error
// for anything outside strconv.ParseBool's set).
func EnvBool(getenv func(string) string, name string, def bool) (bool, error) {
	v := getenv(name)
	if v == "" {
		return def, nil
	}
	return ParseBool(name, v)
}

// IsLoopbackListen reports whether the listen address addr ("host:port")
// accepts connections from this machine only: its host is "localhost" or a
// loopback IP address (127.0.0.0/8, ::1). An empty host (":8080"), an
// unspecified address (0.0.0.0, ::), any other address and any other name
// (names are not resolved) are not loopback, nor is an address without a
// port.
func IsLoopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// IsLoopbackAddr reports whether a listener's address a is loopback: a TCP
// or UDP address on a loopback IP, or a Unix socket (local by nature).
// Any other TCP address — the unspecified 0.0.0.0 or :: included — is not.
func IsLoopbackAddr(a net.Addr) bool {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.IP.IsLoopback()
	case *net.UDPAddr:
		return a.IP.IsLoopback()
	case *net.UnixAddr:
		return true
	case nil:
		return false
	}
	return IsLoopbackListen(a.String())
}

// DevRemoteError is the error of a development mode that would serve on a
// non-loopback address without its explicit second switch: what names the
// listener ("-addr"), addr its address, features what development mode
// turns on there.
func DevRemoteError(what, addr, features string) error {
	return fmt.Errorf("development mode is on (-dev, MADANG_DEV; %s) and %s %q is not a loopback address: "+
		"turn development mode off (-dev=false or MADANG_DEV=false), listen on 127.0.0.1, "+
		"or run it there on purpose with -dev-allow-remote (MADANG_DEV_ALLOW_REMOTE=true)", features, what, addr)
}
