package fault

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// proc is one child process: started, waited for by a goroutine of its own
// (so it is reaped), killed on demand.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // Wait's error, set before done closes
	// killed is set before the run kills it on purpose.
	killed atomic.Bool
}

// wasKilled reports whether the run killed or stopped the process.
func (p *proc) wasKilled() bool { return p.killed.Load() }

// startProc starts argv with its output appended to logPath.
func startProc(name, logPath string, argv []string) (*proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logf, "\n==== %s: %s %q\n", time.Now().Format(time.RFC3339Nano), name, argv)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the process (nothing once it has exited).
func (p *proc) signal(sig os.Signal) error {
	if p.exited() {
		return nil
	}
	return p.cmd.Process.Signal(sig)
}

// kill9 kills the process with SIGKILL and waits for it to be reaped.
func (p *proc) kill9() {
	p.killed.Store(true)
	_ = p.signal(syscall.SIGKILL)
	_ = p.signal(syscall.SIGCONT) // a stopped process dies only when continued on some kernels
	<-p.done
}

// stop asks the process to end (SIGTERM), and kills it after grace.
func (p *proc) stop(grace time.Duration) {
	p.killed.Store(true)
	_ = p.signal(syscall.SIGCONT)
	_ = p.signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.kill9()
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitFor polls probe every 200 ms until it succeeds, p exits, or timeout.
func waitFor(ctx context.Context, p *proc, timeout time.Duration, probe func(context.Context) error) error {
	deadline := time.Now().Add(timeout)
	var err error
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err = probe(pctx)
		cancel()
		if err == nil {
			return nil
		}
		if p != nil && p.exited() {
			return fmt.Errorf("%s exited (%v) before it answered: %w", p.name, p.err, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer within %v: %w", p.name, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// running holds a child server's current process, replaced at each start.
type running struct {
	mu sync.Mutex
	p  *proc
}

func (r *running) set(p *proc) {
	r.mu.Lock()
	r.p = p
	r.mu.Unlock()
}

// proc returns the current process (nil before the first start).
func (r *running) proc() *proc {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.p
}

// gameServer is the game server binary run as a child process on Redis and
// the private MariaDB.
type gameServer struct {
	argv    []string
	addr    string // game listener host:port
	admin   string // ops listener host:port
	logPath string

	running
	// crashes counts exits the run did not cause.
	crashes int
}

// start starts the server, retrying (a start fails while a backend is down)
// until its listener answers or timeout.
func (g *gameServer) start(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		p, err := startProc("gameserver", g.logPath, g.argv)
		if err != nil {
			return err
		}
		g.set(p)
		left := time.Until(deadline)
		if left < time.Second {
			left = time.Second
		}
		err = waitFor(ctx, p, left, g.health)
		if err == nil {
			return nil
		}
		p.kill9()
		if ctx.Err() != nil || time.Now().After(deadline) {
			return fmt.Errorf("game server: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func (g *gameServer) health(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+g.addr+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthz: HTTP %d", resp.StatusCode)
	}
	return nil
}
