// Package privateserver starts and controls private mariadbd and
// redis-server processes: a server of the caller's own, on 127.0.0.1, with
// its own port and files, that it may kill with SIGKILL, start again, or
// freeze (SIGSTOP) and thaw (SIGCONT) — never a shared server.
//
// It is the one implementation behind the public starters
// shardtest.StartMariaDBServer, shardtest.PrivateMySQL,
// sessiontest.StartRedisServer and sessiontest.PrivateRedis (and
// testredis.Private, for tests that cannot import sessiontest); tools such
// as examples/faultrun use the public ones.
package privateserver

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// proc is one run of a child process: started, waited for by a goroutine
// of its own (so it is reaped), its output appended to a log file.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // Wait's error, set before done closes
}

// startProc starts argv with its output appended to logPath, after a line
// naming the start.
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

// kill kills the process with SIGKILL and waits until it is reaped.
func (p *proc) kill() {
	_ = p.signal(syscall.SIGKILL)
	_ = p.signal(syscall.SIGCONT) // a stopped process dies only when continued on some kernels
	<-p.done
}

// stop continues the process if it was stopped, asks it to end (SIGTERM),
// and kills it after grace.
func (p *proc) stop(grace time.Duration) {
	_ = p.signal(syscall.SIGCONT)
	_ = p.signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.kill()
	}
}

// Server is a private server process: started by Start on its port, and
// again by Restart after Kill (same port, same files). Safe for concurrent
// use.
type Server struct {
	name    string
	logPath string
	argv    func(port int) []string
	// probe answers nil when the server on port serves.
	probe func(ctx context.Context, addr string) error
	// freePort picks a port for a server whose port was not given.
	freePort func() (int, error)
	timeout  time.Duration

	mu   sync.Mutex
	port int
	auto bool // the port is chosen at the first start (retried if taken)
	p    *proc
}

// Addr is the server's host:port on 127.0.0.1.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return addr(s.port)
}

func addr(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }

// PID is the process id of the current process (0 before Start).
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.p == nil {
		return 0
	}
	return s.p.cmd.Process.Pid
}

// LogPath is the file the server's output is appended to.
func (s *Server) LogPath() string { return s.logPath }

func (s *Server) current() *proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.p
}

// Start starts the server and waits until it answers (bounded by the
// server's start timeout). A server whose port was chosen for it gets
// another free port when it exits before answering (the port was taken
// meanwhile), up to five times; afterwards the port stays.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.p != nil && !s.p.exited() {
		s.mu.Unlock()
		return fmt.Errorf("%s: already running (pid %d)", s.name, s.p.cmd.Process.Pid)
	}
	auto := s.auto
	s.auto = false
	s.mu.Unlock()
	tries := 1
	if auto {
		tries = 5
	}
	var err error
	for range tries {
		if auto {
			port, perr := s.freePort()
			if perr != nil {
				return perr
			}
			s.mu.Lock()
			s.port = port
			s.mu.Unlock()
		}
		if err = s.startOnce(ctx); err == nil || !auto || ctx.Err() != nil {
			return err
		}
	}
	return err
}

func (s *Server) startOnce(ctx context.Context) error {
	s.mu.Lock()
	port := s.port
	s.mu.Unlock()
	p, err := startProc(s.name, s.logPath, s.argv(port))
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.p = p
	s.mu.Unlock()
	if err := s.wait(ctx, p); err != nil {
		p.kill()
		return err
	}
	return nil
}

// wait polls the probe every 50 ms until it answers, p exits, ctx ends or
// the start timeout passes.
func (s *Server) wait(ctx context.Context, p *proc) error {
	deadline := time.Now().Add(s.timeout)
	a := s.Addr()
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := s.probe(pctx, a)
		cancel()
		if err == nil {
			return nil
		}
		if p.exited() {
			return fmt.Errorf("%s exited (%v) before it answered (log %s): %w", s.name, p.err, s.logPath, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer within %v (log %s): %w", s.name, s.timeout, s.logPath, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Ping reports whether the server answers now.
func (s *Server) Ping(ctx context.Context) error { return s.probe(ctx, s.Addr()) }

// Kill kills the server with SIGKILL (also when frozen) and waits until
// the process is reaped. Safe to call more than once, and before Start.
func (s *Server) Kill() {
	if p := s.current(); p != nil {
		p.kill()
	}
}

// Restart kills the server if it runs and starts it again on the same
// port and files, waiting until it answers.
func (s *Server) Restart(ctx context.Context) error {
	s.Kill()
	return s.Start(ctx)
}

// Freeze stops the server with SIGSTOP: it holds its connections and
// answers nothing until Thaw.
func (s *Server) Freeze() error {
	p := s.current()
	if p == nil {
		return fmt.Errorf("%s: not started", s.name)
	}
	return p.signal(syscall.SIGSTOP)
}

// Thaw continues a frozen server with SIGCONT and waits until it answers.
func (s *Server) Thaw(ctx context.Context) error {
	p := s.current()
	if p == nil {
		return fmt.Errorf("%s: not started", s.name)
	}
	if err := p.signal(syscall.SIGCONT); err != nil {
		return err
	}
	return s.wait(ctx, p)
}

// Stop ends the server gracefully: SIGCONT (if frozen), SIGTERM, and
// SIGKILL after grace. Safe to call more than once, and before Start.
func (s *Server) Stop(grace time.Duration) {
	if p := s.current(); p != nil {
		p.stop(grace)
	}
}

// freeTCPPort returns a loopback port that was free a moment ago.
func freeTCPPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// lookBin returns bin's path: bin itself when it names a file, else found
// in PATH or, for server binaries installed outside a user's PATH, in
// /usr/sbin, /usr/local/sbin.
func lookBin(bin string) (string, error) {
	if p, err := exec.LookPath(bin); err == nil {
		return p, nil
	}
	if filepath.Base(bin) == bin {
		for _, d := range []string{"/usr/sbin", "/usr/local/sbin"} {
			if p, err := exec.LookPath(filepath.Join(d, bin)); err == nil {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("%s is not installed (not in PATH, /usr/sbin or /usr/local/sbin): %w", bin, exec.ErrNotFound)
}
