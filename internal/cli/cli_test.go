package cli

import (
	"errors"
	"flag"
	"io"
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
