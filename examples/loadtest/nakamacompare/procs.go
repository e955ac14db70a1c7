package main

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/madang-io/madang/session/sessiontest"
	"github.com/madang-io/madang/shard/shardtest"
)

// proc is a child process of the harness.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
}

// start starts path with args, its output to logFile.
func start(path string, args []string, logFile string) (*proc, error) {
	f, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", filepath.Base(path), err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{}), log: f}
	go func() { _ = cmd.Wait(); close(p.done) }()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop ends the process: SIGTERM, then SIGKILL after 20 s.
func (p *proc) stop() {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.log.Close()
}

// waitUntil polls ok every 100 ms until it reports true, p exits, ctx ends
// or limit passes.
func waitUntil(ctx context.Context, p *proc, limit time.Duration, what string, ok func() bool) error {
	deadline := time.Now().Add(limit)
	for !ok() {
		switch {
		case p.exited():
			return fmt.Errorf("%s: the process exited (log %s)", what, p.log.Name())
		case ctx.Err() != nil:
			return ctx.Err()
		case time.Now().After(deadline):
			return fmt.Errorf("%s: not ready after %v (log %s)", what, limit, p.log.Name())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

// startServer starts a game server and waits for its /healthz.
func startServer(ctx context.Context, path string, args []string, logFile string, port int) (*proc, error) {
	p, err := start(path, args, logFile)
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Timeout: time.Second}
	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", port)
	err = waitUntil(ctx, p, 60*time.Second, "game server", func() bool {
		resp, err := hc.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// infra is the private MariaDB and Redis of the redis-mysql mode.
type infra struct {
	mysqld    *shardtest.MariaDBServer
	redis     *sessiontest.RedisServer
	mysqlAddr string
	redisAddr string
	db        *sql.DB
}

// startInfra starts mariadbd (a new data directory under tmp) and
// redis-server (no persistence) on 127.0.0.1; their logs go to logDir.
func startInfra(ctx context.Context, tmp, logDir string, mysqlPort, redisPort int) (_ *infra, err error) {
	inf := &infra{}
	defer func() {
		if err != nil {
			inf.stop()
		}
	}()
	// Default settings, as capacity.sh: max_connections raised for the
	// game server's pools (32 + 16 per game database), no binary log.
	if inf.mysqld, err = shardtest.StartMariaDBServer(ctx, shardtest.MariaDBServerConfig{
		Dir: filepath.Join(tmp, "mariadb"), Port: mysqlPort, Log: filepath.Join(logDir, "mariadb.log"),
		Args: []string{"--max-connections=1000", "--skip-log-bin"},
	}); err != nil {
		return nil, err
	}
	inf.mysqlAddr = inf.mysqld.Addr()
	if inf.db, err = sql.Open("mysql", inf.mysqld.DSN("")); err != nil {
		return nil, err
	}
	inf.db.SetMaxOpenConns(2)
	if inf.redis, err = sessiontest.StartRedisServer(ctx, sessiontest.RedisServerConfig{
		Dir: filepath.Join(tmp, "redis"), Port: redisPort, Log: filepath.Join(logDir, "redis.log"),
	}); err != nil {
		return nil, err
	}
	inf.redisAddr = inf.redis.Addr()
	return inf, nil
}

func (inf *infra) mysqldPID() int { return inf.mysqld.PID() }
func (inf *infra) redisPID() int  { return inf.redis.PID() }

// dsn is the game server's DSN of the common database db.
func (inf *infra) dsn(db string) string { return "root@tcp(" + inf.mysqlAddr + ")/" + db }

// freshState empties Redis and creates the common database db (the server
// creates its game databases db_gamedb01.. beside it).
func (inf *infra) freshState(ctx context.Context, db string) error {
	if err := redisCmd(inf.redisAddr, "FLUSHALL"); err != nil {
		return err
	}
	inf.dropDatabases(db)
	_, err := inf.db.ExecContext(ctx, "CREATE DATABASE `"+db+"`")
	return err
}

// dropDatabases drops db and its game databases (db_*).
func (inf *infra) dropDatabases(db string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rows, err := inf.db.QueryContext(ctx, "SHOW DATABASES")
	if err != nil {
		return
	}
	var names []string
	for rows.Next() {
		var n string
		if rows.Scan(&n) == nil && (n == db || strings.HasPrefix(n, db+"_")) {
			names = append(names, n)
		}
	}
	rows.Close()
	for _, n := range names {
		_, _ = inf.db.ExecContext(ctx, "DROP DATABASE `"+n+"`")
	}
}

// stop stops Redis and MariaDB: SIGTERM, then SIGKILL after 20 s.
func (inf *infra) stop() {
	if inf.db != nil {
		inf.db.Close()
	}
	if inf.redis != nil {
		inf.redis.Stop(20 * time.Second)
	}
	if inf.mysqld != nil {
		inf.mysqld.Stop(20 * time.Second)
	}
}

// redisCmd sends one inline command to the Redis at addr and checks for a
// +OK or +PONG answer.
func redisCmd(addr, cmd string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line = strings.TrimSpace(line); line != "+OK" && line != "+PONG" {
		return errors.New("redis " + cmd + ": " + line)
	}
	return nil
}
