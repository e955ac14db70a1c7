package cmdline

import (
	"errors"
	"flag"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
)

func newFlagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("tool", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.String("addr", "127.0.0.1:1", "listen address")
	return fs
}

func TestParseHelp(t *testing.T) {
	for _, arg := range []string{"-h", "-help", "--help"} {
		fs := newFlagSet()
		err := Parse(fs, []string{arg})
		var he *HelpError
		if !errors.Is(err, flag.ErrHelp) || !errors.As(err, &he) {
			t.Fatalf("%s: %v, want a *HelpError", arg, err)
		}
		if !strings.HasPrefix(err.Error(), "Usage of tool:\n") || !strings.Contains(err.Error(), "-addr string") ||
			!strings.Contains(err.Error(), `listen address (default "127.0.0.1:1")`) {
			t.Errorf("%s: usage %q", arg, err.Error())
		}
		if fs.Output() != io.Discard {
			t.Errorf("%s: output not restored", arg)
		}
	}
}

func TestParseOther(t *testing.T) {
	if err := Parse(newFlagSet(), []string{"-addr", ":2"}); err != nil {
		t.Fatal(err)
	}
	err := Parse(newFlagSet(), []string{"-nope"})
	if err == nil || errors.Is(err, flag.ErrHelp) || !strings.Contains(err.Error(), "-nope") {
		t.Fatalf("unknown flag: %v", err)
	}
}

func TestHelp(t *testing.T) {
	var out strings.Builder
	if err := Help(&out, Parse(newFlagSet(), []string{"-h"})); err != nil || !strings.HasPrefix(out.String(), "Usage of tool:") {
		t.Fatalf("help: %v, %q", err, out.String())
	}
	out.Reset()
	other := errors.New("bad flag")
	if err := Help(&out, other); err != other || out.Len() != 0 {
		t.Fatalf("other error: %v, %q", err, out.String())
	}
	if err := Help(&out, nil); err != nil || out.Len() != 0 {
		t.Fatalf("nil: %v, %q", err, out.String())
	}
}

func TestRedisOptions(t *testing.T) {
	if _, ok := RedisOptions("", ""); ok {
		t.Error("no flags: Redis")
	}
	if opt, ok := RedisOptions("a:1, b:2", ""); !ok || !slices.Equal(opt.Addrs, []string{"a:1", "b:2"}) || opt.ClusterAddrs != nil {
		t.Errorf("nodes: %+v %v", opt, ok)
	}
	if opt, ok := RedisOptions("a:1", "c:1,c:2"); !ok || !slices.Equal(opt.ClusterAddrs, []string{"c:1", "c:2"}) || opt.Addrs != nil {
		t.Errorf("cluster wins: %+v %v", opt, ok)
	}
}

func TestSplitList(t *testing.T) {
	for in, want := range map[string][]string{
		"":                    nil,
		" , ,":                nil,
		"a:1":                 {"a:1"},
		" a:1, b:2 ,,c:3 ":    {"a:1", "b:2", "c:3"},
		"127.0.0.1:7000,x:70": {"127.0.0.1:7000", "x:70"},
	} {
		if got := SplitList(in); !slices.Equal(got, want) {
			t.Errorf("SplitList(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseBool(t *testing.T) {
	for _, v := range []string{"1", "t", "T", "true", "TRUE", "True"} {
		if b, err := ParseBool("MADANG_DEV", v); err != nil || !b {
			t.Errorf("%q: %v %v", v, b, err)
		}
	}
	for _, v := range []string{"0", "f", "F", "false", "FALSE", "False"} {
		if b, err := ParseBool("MADANG_DEV", v); err != nil || b {
			t.Errorf("%q: %v %v", v, b, err)
		}
	}
	// The values that used to leave dev mode on: refused, naming the switch.
	for _, v := range []string{"no", "off", "yes", "on", "n", "y", "", " 0", "false ", "2", "disable"} {
		_, err := ParseBool("MADANG_DEV", v)
		if err == nil || !strings.Contains(err.Error(), "MADANG_DEV") || !strings.Contains(err.Error(), "not a boolean") {
			t.Errorf("%q: %v", v, err)
		}
	}
}

func TestEnvBool(t *testing.T) {
	env := map[string]string{"A": "false", "B": "off", "C": "1"}
	getenv := func(k string) string { return env[k] }
	if b, err := EnvBool(getenv, "A", true); err != nil || b {
		t.Errorf("A: %v %v", b, err)
	}
	if _, err := EnvBool(getenv, "B", true); err == nil || !strings.Contains(err.Error(), `B="off"`) {
		t.Errorf("B: %v", err)
	}
	if b, err := EnvBool(getenv, "C", false); err != nil || !b {
		t.Errorf("C: %v %v", b, err)
	}
	for _, def := range []bool{true, false} {
		if b, err := EnvBool(getenv, "UNSET", def); err != nil || b != def {
			t.Errorf("unset, default %v: %v %v", def, b, err)
		}
	}
}

func TestIsLoopbackListen(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8080": true, "127.1.2.3:1": true, "[::1]:8080": true, "localhost:8080": true, "LocalHost:0": true,
		":8080": false, "0.0.0.0:8080": false, "[::]:8080": false, "10.0.0.5:8080": false, "example.com:80": false,
		"127.0.0.1": false, "": false, "localhost.example.com:80": false,
	} {
		if got := IsLoopbackListen(addr); got != want {
			t.Errorf("IsLoopbackListen(%q) = %v, want %v", addr, got, want)
		}
	}
	for _, c := range []struct {
		a    net.Addr
		want bool
	}{
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, true},
		{&net.TCPAddr{IP: net.IPv6loopback, Port: 1}, true},
		{&net.TCPAddr{IP: net.IPv4zero, Port: 1}, false},
		{&net.TCPAddr{IP: net.IPv6unspecified, Port: 1}, false},
		{&net.TCPAddr{Port: 1}, false},
		{&net.TCPAddr{IP: net.IPv4(192, 168, 1, 2), Port: 1}, false},
		{&net.UnixAddr{Name: "/tmp/s", Net: "unix"}, true},
		{nil, false},
	} {
		if got := IsLoopbackAddr(c.a); got != c.want {
			t.Errorf("IsLoopbackAddr(%v) = %v, want %v", c.a, got, c.want)
		}
	}
}
