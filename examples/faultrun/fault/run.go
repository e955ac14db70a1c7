package fault

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	_ "github.com/go-sql-driver/mysql" // the audit's connection to the private MariaDB

	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/session/sessiontest"
	"github.com/madang-io/madang/shard/shardtest"
)

// Config configures a fault run. The zero value (after Defaults) is the
// documented default run.
type Config struct {
	// Duration is how long faults are applied while the players play.
	// Default 2 minutes. The whole run takes longer: start-up, the clients'
	// retries after the last fault (up to GiveUp), the sweep wait and the
	// audit.
	Duration time.Duration
	// Players is how many virtual players play at once. Default 24.
	Players int
	// Think is the most a player waits between two requests (uniform
	// 0..Think). Default 50 ms.
	Think time.Duration
	// Gap is the least time between two faults (each gap is Gap..2*Gap).
	// Default 3 s.
	Gap time.Duration
	// Freeze is how long mariadbd stays stopped (SIGSTOP) per freeze.
	// Default 5 s.
	Freeze time.Duration
	// GiveUp is how long a copy keeps retrying after the later of its
	// start and the end of the fault phase. Default 60 s.
	GiveUp time.Duration
	// SweepWait is how long, after every player logged in once more, the
	// audit waits for redeemed receipts to be granted by the server (a
	// grant at login or a sweep). Default 15 s.
	SweepWait time.Duration
	// MailEvery is how often every player gets an operator mail. Default
	// 5 s.
	MailEvery time.Duration
	// Seed seeds the players' and the faults' choices. Default: random.
	Seed uint64

	// GameServer is the game server binary. Default: built with go build
	// from the module's examples/gameserver.
	GameServer string
	// MariaDB, MariaDBInstall and RedisServer are the binaries (looked up
	// in PATH). Defaults mariadbd, mariadb-install-db, redis-server.
	MariaDB, MariaDBInstall, RedisServer string
	// Dir holds the data directories, logs and the run's records (give an
	// empty or new directory). Default: a temporary directory, removed after
	// a run without violations unless Keep.
	Dir  string
	Keep bool
	// Log receives progress lines. Nil: none.
	Log io.Writer
}

// Defaults returns cfg with zero fields set to their defaults.
func (cfg Config) Defaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.Duration, 2*time.Minute)
	def(&cfg.Think, 50*time.Millisecond)
	def(&cfg.Gap, 3*time.Second)
	def(&cfg.Freeze, 5*time.Second)
	def(&cfg.GiveUp, 60*time.Second)
	def(&cfg.SweepWait, 15*time.Second)
	def(&cfg.MailEvery, 5*time.Second)
	if cfg.Players <= 0 {
		cfg.Players = 24
	}
	if cfg.MariaDB == "" {
		cfg.MariaDB = "mariadbd"
	}
	if cfg.MariaDBInstall == "" {
		cfg.MariaDBInstall = "mariadb-install-db"
	}
	if cfg.RedisServer == "" {
		cfg.RedisServer = "redis-server"
	}
	return cfg
}

// Result is a run's outcome: the faults applied and the audit.
type Result struct {
	ID        string
	Dir       string
	Seed      uint64
	Elapsed   time.Duration
	Faults    []Fault
	FaultKind map[string]int
	// Crashes counts game server exits the run did not cause.
	Crashes int
	// Logins counts sessions opened (the first ones and the re-logins
	// after Redis lost them); LoginAnswers the login answers by code,
	// LoginLost the logins without a reply.
	Logins       int
	LoginAnswers map[protocol.Code]int
	LoginLost    int
	// MailRounds is how many operator grants reached every player.
	MailRounds int
	Audit      *Audit
	// Gaps lists what the run failed to exercise (a command never applied,
	// a fault kind never applied): a run with gaps proves too little, and
	// each gap counts as a violation.
	Gaps []string
}

// gaps lists what res did not exercise.
func gaps(res *Result) []string {
	var out []string
	for _, cmd := range []string{game.CmdShopBuy, game.CmdShopBuyIAP, game.CmdMailClaimAll} {
		if res.Audit.AppliedByCommand[cmd] == 0 {
			out = append(out, fmt.Sprintf("no %s was applied (%d sent): is the command enabled (dev receipts for shop.buy_iap)?", cmd, res.Audit.ByCommand[cmd]))
		}
	}
	for _, kind := range []string{KillGameServer, RestartRedis, KillMariaDB, FreezeMariaDB} {
		if res.FaultKind[kind] == 0 {
			out = append(out, fmt.Sprintf("no fault %s was applied (%d faults in all): lengthen -duration", kind, len(res.Faults)))
		}
	}
	return out
}

// Violations is the audit's violations plus the game server's crashes and
// the logins answered 40 (internal: a backend failure must be 41).
func (res *Result) Violations() int {
	n := res.Crashes + res.LoginAnswers[protocol.CodeInternal] + len(res.Gaps)
	if res.Audit != nil {
		n += res.Audit.Violations()
	}
	return n
}

// runner is one run's state.
type runner struct {
	cfg        Config
	id         string
	wire       *wire
	maria      *shardtest.MariaDBServer
	redis      *sessiontest.RedisServer
	gs         *gameServer
	gsOp       sync.Mutex // one start of the game server at a time
	adminToken string
	players    []*player
	stats      clientStats
	faultEnd   time.Time

	mu       sync.Mutex
	requests []*Request
	faultLog []Fault
	failed   error
	cancel   context.CancelFunc
}

func (r *runner) logf(format string, args ...any) {
	if r.cfg.Log != nil {
		fmt.Fprintf(r.cfg.Log, "faultrun: "+format+"\n", args...)
	}
}

// fatal ends the run with err (the first one wins).
func (r *runner) fatal(err error) {
	r.mu.Lock()
	if r.failed == nil {
		r.failed = err
	}
	r.mu.Unlock()
	r.cancel()
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Run starts a private mariadbd and redis-server, the game server on them,
// and plays cfg.Players players against it while faults are applied for
// cfg.Duration; then it lets the clients finish their retries, logs every
// player in once more, waits cfg.SweepWait for redeemed receipts to be
// granted, and audits the databases against every answer (AuditRun). The
// error is for a run that could not be carried out; violations are in the
// Result's Audit.
func Run(ctx context.Context, cfg Config) (_ *Result, err error) {
	cfg = cfg.Defaults()
	started := time.Now()
	if cfg.Seed == 0 {
		s, _ := strconv.ParseUint(randHex(7), 16, 64)
		cfg.Seed = s
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := &runner{cfg: cfg, id: "fr" + randHex(4), adminToken: randHex(16), cancel: cancel}
	r.stats.loginCodes = map[protocol.Code]int{}
	for _, bin := range []*string{&cfg.MariaDB, &cfg.MariaDBInstall, &cfg.RedisServer} {
		p, err := exec.LookPath(*bin)
		if err != nil {
			return nil, err
		}
		*bin = p
	}
	dir := cfg.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "madang-faultrun-"); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	res := &Result{ID: r.id, Dir: dir, Seed: cfg.Seed, FaultKind: map[string]int{}}
	r.logf("run %s, seed %d, files in %s", r.id, cfg.Seed, dir)
	defer func() {
		r.shutdown()
		if err == nil && !cfg.Keep && cfg.Dir == "" && res.Audit != nil && res.Violations() == 0 {
			os.RemoveAll(dir)
			res.Dir = ""
		}
	}()

	// The game server binary.
	bin := cfg.GameServer
	if bin == "" {
		bin = filepath.Join(dir, "gameserver")
		r.logf("building the game server")
		out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/madang-io/madang/examples/gameserver").CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("go build the game server: %w\n%s", err, out)
		}
	}

	// MariaDB and Redis, private (ports chosen, files under dir).
	r.logf("initialising MariaDB")
	if r.maria, err = shardtest.StartMariaDBServer(ctx, shardtest.MariaDBServerConfig{
		Dir: filepath.Join(dir, "mariadb"), Bin: cfg.MariaDB, InstallBin: cfg.MariaDBInstall,
		Args: []string{"--skip-log-bin", "--max-connections=500", "--innodb-buffer-pool-size=64M",
			// The defaults, stated: a commit is on disk when it is acknowledged.
			"--innodb-flush-log-at-trx-commit=1", "--sync-binlog=1"},
	}); err != nil {
		return nil, err
	}
	if r.redis, err = sessiontest.StartRedisServer(ctx, sessiontest.RedisServerConfig{
		Dir: filepath.Join(dir, "redis"), Bin: cfg.RedisServer,
	}); err != nil {
		return nil, err
	}
	common := r.id
	db, err := sql.Open("mysql", r.mariaDSN(""))
	if err != nil {
		return nil, err
	}
	_, err = db.ExecContext(ctx, "CREATE DATABASE "+common)
	db.Close()
	if err != nil {
		return nil, fmt.Errorf("create database: %w", err)
	}

	// The game server.
	gport, err := freePort()
	if err != nil {
		return nil, err
	}
	aport, err := freePort()
	if err != nil {
		return nil, err
	}
	xorKey := randHex(16)
	r.gs = &gameServer{
		addr: "127.0.0.1:" + strconv.Itoa(gport), admin: "127.0.0.1:" + strconv.Itoa(aport),
		logPath: filepath.Join(dir, "gameserver.log"),
	}
	r.gs.argv = []string{bin, "-addr", r.gs.addr, "-admin-addr", r.gs.admin, "-admin-token", r.adminToken,
		// Development receipts need dev mode; the listeners are loopback.
		"-dev=true", "-xor-key", xorKey, "-log-level", "warn",
		"-redis", r.redis.Addr(), "-redis-prefix", r.id + ":",
		"-mysql", r.mariaDSN(common), "-mysql-game-dbs", "2"}
	r.logf("starting the game server on %s (ops %s)", r.gs.addr, r.gs.admin)
	if err := r.gs.start(ctx, 2*time.Minute); err != nil {
		return nil, err
	}
	if r.wire, err = newWire("http://"+r.gs.addr+protocol.DefaultHTTPPath, []byte(xorKey), 10*time.Second); err != nil {
		return nil, err
	}

	// Players log in; everyone gets a first mail.
	r.players = make([]*player, cfg.Players)
	for i := range r.players {
		r.players[i] = &player{idx: i, device: fmt.Sprintf("%s-device-%d", r.id, i)}
	}
	if err := r.forEachPlayer(ctx, func(p *player) error {
		return r.login(ctx, p, time.Now().Add(time.Minute))
	}); err != nil {
		return nil, err
	}
	if !r.mailRound(ctx, r.id+"-mail-1", time.Now().Add(time.Minute)) {
		return nil, errors.New("the first operator mail did not reach every player")
	}

	// The fault phase.
	r.faultEnd = time.Now().Add(cfg.Duration)
	r.logf("%d players playing for %v while faults are applied", cfg.Players, cfg.Duration)
	watchCtx, stopWatch := context.WithCancel(ctx)
	var watch sync.WaitGroup
	watch.Add(1)
	go func() {
		defer watch.Done()
		r.watchGameServer(watchCtx)
	}()
	var wg sync.WaitGroup
	for _, p := range r.players {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.play(ctx, p, cfg.Seed)
		}()
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		r.mailer(ctx, cfg.MailEvery)
	}()
	go func() {
		defer wg.Done()
		r.faults(ctx, cfg.Seed)
	}()
	wg.Wait()
	stopWatch()
	watch.Wait()
	if err := r.failure(ctx); err != nil {
		return nil, err
	}
	r.logf("faults over, every request answered or given up; %d requests", len(r.requests))

	// Recovery: everything answers; every player logs in once more (a
	// server may grant redeemed receipts at login); the sweep gets its time.
	if err := r.healthy(ctx); err != nil {
		return nil, err
	}
	if err := r.forEachPlayer(ctx, func(p *player) error {
		p.mu.Lock()
		defer p.mu.Unlock()
		return r.login(ctx, p, time.Now().Add(time.Minute))
	}); err != nil {
		return nil, err
	}
	auditDB, err := sql.Open("mysql", r.mariaDSN(""))
	if err != nil {
		return nil, err
	}
	defer auditDB.Close()
	var snap *Snapshot
	for wait := time.Now().Add(cfg.SweepWait); ; {
		if snap, err = loadSnapshot(ctx, auditDB, common); err != nil {
			return nil, err
		}
		if pendingReceipts(snap) == 0 || !sleepUntil(ctx, time.Second, wait) {
			break
		}
	}

	r.mu.Lock()
	res.Audit = AuditRun(r.requests, snap, game.StartGold, game.StartGems)
	res.Faults = r.faultLog
	r.mu.Unlock()
	for _, f := range res.Faults {
		res.FaultKind[f.Kind]++
	}
	res.Gaps = gaps(res)
	r.gsOp.Lock()
	res.Crashes = r.gs.crashes
	r.gsOp.Unlock()
	r.stats.mu.Lock()
	res.Logins, res.LoginAnswers, res.LoginLost, res.MailRounds = r.stats.logins, r.stats.loginCodes, r.stats.loginLost, r.stats.mailRounds
	r.stats.mu.Unlock()
	res.Elapsed = time.Since(started)
	if err := r.writeRecords(filepath.Join(dir, "requests.jsonl")); err != nil {
		r.logf("writing the records: %v", err)
	}
	return res, nil
}

// mariaDSN is the DSN of database db ("" for none) on the private MariaDB,
// with bounded dial, read and write timeouts (a frozen server answers
// nothing).
func (r *runner) mariaDSN(db string) string {
	return r.maria.DSN(db) + "?timeout=3s&readTimeout=30s&writeTimeout=30s"
}

// pendingReceipts counts redemptions without a purchases row.
func pendingReceipts(s *Snapshot) int {
	granted := map[[2]string]bool{}
	for _, p := range s.Purchases {
		granted[[2]string{p.Store, p.TransactionID}] = true
	}
	n := 0
	for _, red := range s.Redemptions {
		if !granted[[2]string{red.Store, red.TransactionID}] {
			n++
		}
	}
	return n
}

// forEachPlayer runs fn for every player, 8 at a time.
func (r *runner) forEachPlayer(ctx context.Context, fn func(*player) error) error {
	sem := make(chan struct{}, 8)
	errs := make([]error, len(r.players))
	var wg sync.WaitGroup
	for i, p := range r.players {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = fn(p)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.Join(errs...)
}

func (r *runner) failure(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failed != nil {
		return r.failed
	}
	return ctx.Err()
}

// healthy checks that every component answers, starting what is down.
func (r *runner) healthy(ctx context.Context) error {
	if err := r.maria.Ping(ctx); err != nil {
		return fmt.Errorf("mariadbd after the faults: %w", err)
	}
	if err := r.redis.Ping(ctx); err != nil {
		return fmt.Errorf("redis-server after the faults: %w", err)
	}
	if err := r.gs.health(ctx); err != nil {
		return fmt.Errorf("game server after the faults: %w", err)
	}
	return nil
}

// shutdown stops the children: the game server first, then Redis and
// MariaDB (gracefully, so the data directory is clean).
func (r *runner) shutdown() {
	if r.gs != nil {
		if p := r.gs.proc(); p != nil {
			p.stop(15 * time.Second)
		}
	}
	if r.redis != nil {
		r.redis.Stop(10 * time.Second)
	}
	if r.maria != nil {
		r.maria.Stop(60 * time.Second)
	}
}

// writeRecords writes every request and its copies' answers, one JSON
// object a line.
func (r *runner) writeRecords(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(f)
	r.mu.Lock()
	for _, req := range r.requests {
		if err = enc.Encode(req); err != nil {
			break
		}
	}
	r.mu.Unlock()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
