package server

import (
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"sort"
	"strconv"
	"strings"
	"time"
)

// PprofPath is where the admin listener serves the Go runtime's profiles
// when Config.Pprof is on (flag -pprof): off by default, on the admin
// listener only, which must then listen on a loopback address, for
// requests from a loopback address with the ops bearer token:
//
//	GET /debug/pprof/                        the profiles, as text
//	GET /debug/pprof/profile?seconds=N       CPU profile over N s (1..120, default 30)
//	GET /debug/pprof/trace?seconds=N         execution trace over N s (1..60, default 5)
//	GET /debug/pprof/<name>[?debug=0|1|2]    goroutine, heap, allocs, block, mutex, threadcreate
//
// For example:
//
//	curl -sf -H "Authorization: Bearer $TOKEN" -o cpu.prof 'http://127.0.0.1:8081/debug/pprof/profile?seconds=20'
//	go tool pprof -top cpu.prof
//
// The profiles are written with runtime/pprof and runtime/trace, not by
// importing net/http/pprof, whose init registers its handlers on
// http.DefaultServeMux: a studio embedding this package and serving the
// default mux elsewhere would expose them there.
const PprofPath = "/debug/pprof/"

// Profiling rates Config.Pprof turns on at New for the block and mutex
// profiles (runtime.SetBlockProfileRate, runtime.SetMutexProfileFraction:
// process-wide settings, left as they are when Pprof is off).
const (
	// PprofBlockRate samples one blocking event per 10 µs spent blocked.
	PprofBlockRate = 10_000
	// PprofMutexFraction samples one contended mutex event in 10.
	PprofMutexFraction = 10
)

// Bounds of the profile and trace durations.
const (
	maxPprofCPUSeconds   = 120
	maxPprofTraceSeconds = 60
)

// pprofHandler serves PprofPath behind the loopback and token checks:
// 403 for a request that does not come from a loopback address, 401
// without the token.
func pprofHandler(token string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !remoteIsLoopback(r.RemoteAddr) {
			http.Error(w, "forbidden: profiles are served to loopback clients only", http.StatusForbidden)
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || token == "" || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="madang-ops"`)
			http.Error(w, "missing or wrong bearer token", http.StatusUnauthorized)
			return
		}
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, "use GET", http.StatusMethodNotAllowed)
			return
		}
		name := strings.TrimPrefix(r.URL.Path, PprofPath)
		switch name {
		case "":
			pprofIndex(w)
		case "profile":
			sec, ok := pprofSeconds(w, r, 30, maxPprofCPUSeconds)
			if !ok {
				return
			}
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Disposition", `attachment; filename="profile"`)
			if err := pprof.StartCPUProfile(w); err != nil {
				w.Header().Del("Content-Disposition")
				http.Error(w, "could not start the CPU profile: "+err.Error(), http.StatusConflict)
				return
			}
			pprofSleep(w, r, sec)
			pprof.StopCPUProfile()
		case "trace":
			sec, ok := pprofSeconds(w, r, 5, maxPprofTraceSeconds)
			if !ok {
				return
			}
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Disposition", `attachment; filename="trace"`)
			if err := trace.Start(w); err != nil {
				w.Header().Del("Content-Disposition")
				http.Error(w, "could not start the trace: "+err.Error(), http.StatusConflict)
				return
			}
			pprofSleep(w, r, sec)
			trace.Stop()
		default:
			p := pprof.Lookup(name)
			if p == nil {
				http.Error(w, "unknown profile "+strconv.Quote(name), http.StatusNotFound)
				return
			}
			debug := 0
			if v := r.URL.Query().Get("debug"); v != "" {
				d, err := strconv.Atoi(v)
				if err != nil || d < 0 || d > 2 {
					http.Error(w, "debug must be 0, 1 or 2", http.StatusBadRequest)
					return
				}
				debug = d
			}
			if debug == 0 {
				w.Header().Set("Content-Type", "application/octet-stream")
			} else {
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			}
			_ = p.WriteTo(w, debug)
		}
	})
}

// pprofIndex lists the profiles.
func pprofIndex(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	profiles := pprof.Profiles()
	sort.Slice(profiles, func(i, j int) bool { return profiles[i].Name() < profiles[j].Name() })
	fmt.Fprintf(w, "madang game server profiles (%s, GOMAXPROCS %d)\n\n", runtime.Version(), runtime.GOMAXPROCS(0))
	for _, p := range profiles {
		fmt.Fprintf(w, "%s%s?debug=1\t%d\n", PprofPath, p.Name(), p.Count())
	}
	fmt.Fprintf(w, "%sprofile?seconds=30\tCPU profile\n%strace?seconds=5\texecution trace\n", PprofPath, PprofPath)
}

// pprofSeconds reads the seconds parameter: def when absent, 1..max.
func pprofSeconds(w http.ResponseWriter, r *http.Request, def, max int) (int, bool) {
	v := r.URL.Query().Get("seconds")
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		http.Error(w, fmt.Sprintf("seconds must be 1..%d", max), http.StatusBadRequest)
		return 0, false
	}
	return n, true
}

// pprofSleep waits sec seconds or until the client leaves, after moving
// the response's write deadline past them (the admin listener's
// WriteTimeout is shorter than a long profile).
func pprofSleep(w http.ResponseWriter, r *http.Request, sec int) {
	d := time.Duration(sec) * time.Second
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(d + 30*time.Second))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	}
}

// remoteIsLoopback reports whether a request's RemoteAddr is a loopback
// address (127.0.0.0/8, ::1).
func remoteIsLoopback(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}
