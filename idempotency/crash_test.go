package idempotency_test

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/madang-io/madang/idempotency"
	"github.com/madang-io/madang/protocol"
)

// privateMariaDB is a mariadbd of the test's own: its own datadir under
// t.TempDir(), its own port, loopback only. Never the shared server.
type privateMariaDB struct {
	t       *testing.T
	bin     string
	dir     string
	port    int
	cmd     *exec.Cmd
	exited  chan struct{}
	logPath string
}

// startPrivateMariaDB installs a datadir and starts mariadbd on it. It
// skips the test when mariadbd is not installed (outside CI only).
func startPrivateMariaDB(t *testing.T) *privateMariaDB {
	t.Helper()
	find := func(name string) string {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		for _, d := range []string{"/usr/sbin", "/usr/local/sbin", "/usr/bin"} {
			if p := filepath.Join(d, name); fileExists(p) {
				return p
			}
		}
		return ""
	}
	bin, install := find("mariadbd"), find("mariadb-install-db")
	if bin == "" || install == "" {
		if os.Getenv("MADANG_CI") != "" {
			t.Fatal("mariadbd or mariadb-install-db not found, and CI must not skip the crash test")
		}
		t.Skip("mariadbd and mariadb-install-db are not installed: the kill -9 test needs a private server")
	}
	dir := t.TempDir()
	m := &privateMariaDB{t: t, bin: bin, dir: dir, logPath: filepath.Join(dir, "mariadb.log")}
	out, err := exec.Command(install, "--no-defaults", "--datadir="+filepath.Join(dir, "data"), "--user="+currentUser(),
		"--auth-root-authentication-method=normal", "--skip-test-db").CombinedOutput()
	if err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	m.start()
	t.Cleanup(m.kill)
	return m
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func currentUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "root"
}

func (m *privateMariaDB) dsn(db string) string {
	return fmt.Sprintf("root@tcp(127.0.0.1:%d)/%s?interpolateParams=true", m.port, db)
}

// start runs mariadbd (durability defaults: innodb_flush_log_at_trx_commit
// = 1) and waits until it answers (bounded: two minutes).
func (m *privateMariaDB) start() {
	m.t.Helper()
	logf, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		m.t.Fatal(err)
	}
	defer logf.Close()
	m.cmd = exec.Command(m.bin, "--no-defaults", "--datadir="+filepath.Join(m.dir, "data"), "--user="+currentUser(),
		"--bind-address=127.0.0.1", "--port="+strconv.Itoa(m.port), "--socket="+filepath.Join(m.dir, "sock"),
		"--pid-file="+filepath.Join(m.dir, "pid"), "--skip-log-bin", "--innodb-buffer-pool-size=32M",
		"--max-connections=200")
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	if err := m.cmd.Start(); err != nil {
		m.t.Fatal(err)
	}
	m.exited = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) { _ = c.Wait(); close(done) }(m.cmd, m.exited)
	db, err := sql.Open("mysql", m.dsn(""))
	if err != nil {
		m.t.Fatal(err)
	}
	defer db.Close()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if err := db.Ping(); err == nil {
			return
		}
		select {
		case <-m.exited:
			log, _ := os.ReadFile(m.logPath)
			m.t.Fatalf("mariadbd exited at start:\n%s", log)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			m.t.Fatal("mariadbd did not answer within two minutes")
		}
	}
}

// kill sends SIGKILL to mariadbd and waits for it to exit.
func (m *privateMariaDB) kill() {
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	_ = m.cmd.Process.Kill()
	<-m.exited
	m.cmd = nil
}

type crashAnswer struct {
	code    protocol.Code
	replay  bool
	payload string
}

// TestSQLStoreReplaysSurviveMariaDBKill: copies of one request race (three
// per key, on separate connections) against a private mariadbd that is
// killed -9 in the middle; after it recovers, every answer a client got as
// done (code 0, first run or replay) has its key row and its effect row, and
// no effect exists twice. Bounded: three kills, a few hundred keys each.
//
// A crash hitting the window between a commit becoming visible and its
// redo flush is rare; this run audits the guarantee end to end rather than
// proving the mechanism (TestSQLStoreReplayCommitsBeforeAnswering does).
func TestSQLStoreReplaysSurviveMariaDBKill(t *testing.T) {
	m := startPrivateMariaDB(t)
	ctx := context.Background()
	admin, err := sql.Open("mysql", m.dsn(""))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec("CREATE DATABASE crash"); err != nil {
		t.Fatal(err)
	}
	admin.Close()
	setup, err := sql.Open("mysql", m.dsn("crash"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := setup.Exec("CREATE TABLE effects (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, rid VARBINARY(64) NOT NULL, KEY (rid)) ENGINE=InnoDB"); err != nil {
		t.Fatal(err)
	}
	st, err := idempotency.NewSQLStore(ctx, setup, idempotency.SQLConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(ctx, setup); err != nil {
		t.Fatal(err)
	}
	setup.Close()

	scope := idempotency.Scope{UserKey: 1, Command: "shop.buy_iap"}
	fp := idempotency.FingerprintOf([]byte(`{"product":"gems_100"}`))
	answers := map[string][]crashAnswer{}
	var mu sync.Mutex
	const rounds, copies, answersBeforeKill = 3, 3, 300
	total, done := 0, 0
	for round := range rounds {
		db, err := sql.Open("mysql", m.dsn("crash"))
		if err != nil {
			t.Fatal(err)
		}
		db.SetMaxOpenConns(24)
		s, err := idempotency.NewSQLStore(ctx, db, idempotency.SQLConfig{Config: idempotency.Config{WaitTimeout: 10 * time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		var got atomic.Int32
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := range 8 { // 8 keys in flight, 3 copies each
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					rid := fmt.Sprintf("r%d-w%d-%d", round, w, i)
					var cw sync.WaitGroup
					for range copies {
						cw.Go(func() {
							out, err := s.Do(ctx, scope, rid, fp, func(ctx context.Context) (idempotency.Result, error) {
								if _, err := idempotency.TxFrom(ctx).ExecContext(ctx, "INSERT INTO effects (rid) VALUES (?)", rid); err != nil {
									return idempotency.Result{}, err
								}
								return idempotency.Result{Payload: []byte(`{"granted":"` + rid + `"}`)}, nil
							})
							a := crashAnswer{code: protocol.CodeOf(err), replay: out.Replay, payload: string(out.Payload)}
							if err == nil {
								a.code = out.Code
								got.Add(1)
							}
							mu.Lock()
							answers[rid] = append(answers[rid], a)
							mu.Unlock()
						})
					}
					cw.Wait()
				}
			})
		}
		// Kill once enough answers came back: duplicates are racing then.
		deadline := time.Now().Add(3 * time.Minute)
		for got.Load() < answersBeforeKill {
			if time.Now().After(deadline) {
				close(stop)
				wg.Wait()
				t.Fatalf("round %d: only %d answers in three minutes", round, got.Load())
			}
			time.Sleep(5 * time.Millisecond)
		}
		m.kill()
		close(stop)
		wg.Wait()
		db.Close()
		m.start()
	}

	// Audit after the last recovery.
	db, err := sql.Open("mysql", m.dsn("crash"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	lost, twice, replays := 0, 0, 0
	for rid, as := range answers {
		var effects, keyRows int
		if err := db.QueryRow("SELECT COUNT(*) FROM effects WHERE rid = ?", rid).Scan(&effects); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow("SELECT COUNT(*) FROM idempotency_keys WHERE user_key = ? AND command = ? AND request_id = ? AND done = 1", scope.UserKey, scope.Command, rid).Scan(&keyRows); err != nil {
			t.Fatal(err)
		}
		if effects > 1 {
			twice++
			t.Errorf("%s applied %d times", rid, effects)
		}
		for _, a := range as {
			total++
			if a.code != protocol.CodeOK {
				continue
			}
			done++
			if a.replay {
				replays++
			}
			if effects != 1 || keyRows != 1 {
				lost++
				t.Errorf("%s answered done (replay %v, %s) but after recovery: %d effect rows, %d key rows", rid, a.replay, a.payload, effects, keyRows)
			}
		}
	}
	t.Logf("%d kills, %d answers, %d done (%d replays), %d lost, %d applied twice", rounds, total, done, replays, lost, twice)
	if done == 0 || replays == 0 {
		t.Fatalf("the run proves nothing: %d done answers, %d replays", done, replays)
	}
}
