// Command load measures a realtime server side by side: madang's
// examples/realtimeserver (-dev, memory mode) or the centrifuge server of
// this directory. It starts the server binary, reads its resident memory
// (VmRSS) with no connections, connects N idle websockets (each on its own
// channel; with -shared each also subscribed to one shared channel), waits
// -settle, reads VmRSS again, and reports (RSS with - RSS without)/N. With
// -pubs M it then publishes M messages of -size bytes on the shared
// channel through the server's HTTP endpoint at -rate per second, waits for
// every subscriber to receive all of them, and reports the server's CPU
// (utime+stime of /proc/<pid>/stat over the phase) per delivery.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"github.com/madang-io/madang/realtime"
)

var (
	server  = flag.String("server", "madang", "madang or centrifuge")
	bin     = flag.String("bin", "", "server binary")
	conns   = flag.Int("conns", 5000, "idle connections")
	shared  = flag.Bool("shared", true, "subscribe every connection to the shared channel")
	pubs    = flag.Int("pubs", 0, "publications on the shared channel (0: memory only)")
	rate    = flag.Float64("rate", 50, "publications per second")
	size    = flag.Int("size", 200, "message size in bytes")
	settle  = flag.Duration("settle", 5*time.Second, "wait before reading the idle RSS")
	dialers = flag.Int("dialers", 8, "concurrent dials")
	portF   = flag.Int("port", 0, "server port (0: a free one)")
	hold    = flag.Duration("hold", 0, "wait after the idle RSS reading (to take a profile)")
)

var received atomic.Int64

type target interface {
	connect(ctx context.Context, i int) (io.Closer, error)
	publish(msg string) error
}

func main() {
	flag.Parse()
	port := *portF
	if port == 0 {
		port = freePort()
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	var cmd *exec.Cmd
	var t target
	switch *server {
	case "madang":
		cmd = exec.Command(*bin, "-dev", "-addr", addr)
		t = &madang{base: "http://" + addr}
	case "centrifuge":
		cmd = exec.Command(*bin, "-addr", addr)
		t = &centrifuge{base: "http://" + addr}
	default:
		log.Fatalf("unknown -server %q", *server)
	}
	stdin, _ := cmd.StdinPipe()
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGINT)
		stdin.Close()
		cmd.Wait()
	}()
	pid := cmd.Process.Pid
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if i > 200 {
			log.Fatal("server did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	rss0 := rss(pid)
	ctx := context.Background()
	clients := make([]io.Closer, *conns)
	var wg sync.WaitGroup
	var next atomic.Int64
	var failed atomic.Value
	start := time.Now()
	for range *dialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= *conns || failed.Load() != nil {
					return
				}
				c, err := t.connect(ctx, i)
				if err != nil {
					failed.Store(err)
					return
				}
				clients[i] = c
			}
		}()
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		log.Fatal(err)
	}
	dialed := time.Since(start)
	time.Sleep(*settle)
	rss1 := rss(pid)
	fmt.Printf("server=%s conns=%d shared=%v dial=%s rss0=%dKB rss1=%dKB rss-per-conn=%.1fKB load=%s\n",
		*server, *conns, *shared, dialed.Round(time.Millisecond), rss0>>10, rss1>>10,
		float64(rss1-rss0)/float64(*conns)/1024, loadavg())
	time.Sleep(*hold)
	if *pubs > 0 {
		msg := strings.Repeat("x", *size-len(`{"message":""}`))
		cpu0 := cpuTicks(pid)
		received.Store(0)
		t0 := time.Now()
		tick := time.NewTicker(time.Duration(float64(time.Second) / *rate))
		for range *pubs {
			<-tick.C
			if err := t.publish(msg); err != nil {
				log.Fatal(err)
			}
		}
		tick.Stop()
		want := int64(*pubs) * int64(*conns)
		// Until every delivery arrived, or none for 10 s: the CPU and time
		// are taken at the last delivery seen (an incomplete run does not
		// count its idle wait).
		got, el, cpu1 := received.Load(), time.Since(t0), cpuTicks(pid)
		for last := time.Now(); got < want && time.Since(last) < 10*time.Second; {
			time.Sleep(10 * time.Millisecond)
			if n := received.Load(); n != got {
				got, el, cpu1, last = n, time.Since(t0), cpuTicks(pid), time.Now()
			}
		}
		ns := float64(cpu1-cpu0) * 1e9 / 100 / float64(got)
		fmt.Printf("server=%s conns=%d pubs=%d rate=%.0f/s delivered=%d/%d in %s: %.0f deliveries/s, server CPU %.2fs, %.2f µs/delivery load=%s\n",
			*server, *conns, *pubs, *rate, got, want, el.Round(time.Millisecond), float64(got)/el.Seconds(),
			float64(cpu1-cpu0)/100, ns/1000, loadavg())
	}
	for _, c := range clients {
		if c != nil {
			c.Close()
		}
	}
}

func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		log.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	log.Fatal("no VmRSS")
	return 0
}

// cpuTicks is utime+stime of the process, in clock ticks (1/100 s).
func cpuTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		log.Fatal(err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	u, _ := strconv.ParseInt(f[11], 10, 64) // field 14
	s, _ := strconv.ParseInt(f[12], 10, 64) // field 15
	return u + s
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.Join(strings.Fields(string(b))[:3], "/")
}

// madang: /dev/login for a token, realtime.Dial, rt.subscribe "system";
// publications through POST /dev/notice (Hub.Broadcast on "system").
type madang struct{ base string }

func (m *madang) connect(ctx context.Context, i int) (io.Closer, error) {
	resp, err := http.Get(fmt.Sprintf("%s/dev/login?user=%d", m.base, i+1))
	if err != nil {
		return nil, err
	}
	var login struct{ Token string }
	err = json.NewDecoder(resp.Body).Decode(&login)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	c, err := realtime.Dial(ctx, "ws"+strings.TrimPrefix(m.base, "http")+"/ws", login.Token, &realtime.DialOptions{PushBuffer: 256})
	if err != nil {
		return nil, err
	}
	if *shared {
		if _, err := c.Subscribe(ctx, realtime.ChannelSystem, nil); err != nil {
			return nil, err
		}
	}
	go func() {
		for {
			p, err := c.Next(context.Background())
			if err != nil {
				return
			}
			if p.Topic == "bench" {
				received.Add(1)
			}
		}
	}()
	return c, nil
}

func (m *madang) publish(msg string) error {
	return post(m.base + "/dev/notice?topic=bench&message=" + url.QueryEscape(msg))
}

// centrifuge: its JSON protocol (v2) over a plain websocket: connect with
// the token as the user id (the server subscribes it to "#<token>"),
// subscribe "chat"; publications through the server's POST /publish.
type centrifuge struct{ base string }

type cfConn struct{ ws *websocket.Conn }

func (c *cfConn) Close() error { return c.ws.Close(websocket.StatusNormalClosure, "") }

func (cf *centrifuge) connect(ctx context.Context, i int) (io.Closer, error) {
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(cf.base, "http")+"/connection/websocket", nil)
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(4 << 20)
	call := func(msg string) error {
		if err := ws.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			return err
		}
		_, b, err := ws.Read(ctx)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(`"error"`)) {
			return fmt.Errorf("centrifuge: %s", b)
		}
		return nil
	}
	if err := call(fmt.Sprintf(`{"id":1,"connect":{"token":"u%d"}}`, i+1)); err != nil {
		return nil, err
	}
	if *shared {
		if err := call(`{"id":2,"subscribe":{"channel":"chat"}}`); err != nil {
			return nil, err
		}
	}
	go func() {
		for {
			_, b, err := ws.Read(context.Background())
			if err != nil {
				return
			}
			for line := range bytes.Lines(b) {
				line = bytes.TrimSpace(line)
				switch {
				case string(line) == "{}": // ping
					ws.Write(context.Background(), websocket.MessageText, []byte("{}"))
				case bytes.Contains(line, []byte(`"pub"`)):
					received.Add(1)
				}
			}
		}
	}()
	return &cfConn{ws}, nil
}

func (cf *centrifuge) publish(msg string) error {
	return post(cf.base + "/publish?ch=chat&data=" + url.QueryEscape(`{"message":"`+msg+`"}`))
}

func post(u string) error {
	resp, err := http.Post(u, "text/plain", nil)
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %d %s", u, resp.StatusCode, b)
	}
	return nil
}
