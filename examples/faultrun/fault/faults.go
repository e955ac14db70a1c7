package fault

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// Fault kinds.
const (
	// KillGameServer: the game server process is killed with SIGKILL and
	// started again.
	KillGameServer = "gameserver-kill9"
	// RestartRedis: redis-server is killed with SIGKILL and started again,
	// empty (no persistence): every session is gone.
	RestartRedis = "redis-restart-empty"
	// KillMariaDB: mariadbd is killed with SIGKILL and started again
	// (InnoDB crash recovery).
	KillMariaDB = "mariadb-kill9"
	// FreezeMariaDB: mariadbd is stopped with SIGSTOP for Config.Freeze,
	// then continued with SIGCONT.
	FreezeMariaDB = "mariadb-freeze"
)

// rotation is the order faults are applied in, again and again: every kind
// within the first four (about 30 s), then MariaDB crashes most often (they
// are where confirmed answers can be lost).
var rotation = []string{KillMariaDB, KillGameServer, FreezeMariaDB, RestartRedis, KillMariaDB, KillGameServer, KillMariaDB}

// Fault is one fault applied.
type Fault struct {
	Kind string
	// At is when it was applied, from the start of the fault phase.
	At time.Duration
	// Heal is how long until the component answered again.
	Heal time.Duration
	Err  string `json:",omitempty"`
}

// faults applies faults from rotation, one at a time with a random gap of
// Config.Gap to 2*Config.Gap before each, until the fault phase ends. Each
// fault is healed (the component answers again) before the next; the last
// one is healed when faults returns.
func (r *runner) faults(ctx context.Context, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	start := time.Now()
	for i := 0; ; i++ {
		gap := r.cfg.Gap + time.Duration(rng.Int64N(int64(r.cfg.Gap)+1))
		if !sleepUntil(ctx, gap, r.faultEnd) || ctx.Err() != nil {
			return
		}
		kind := rotation[i%len(rotation)]
		f := Fault{Kind: kind, At: time.Since(start)}
		t0 := time.Now()
		err := r.apply(ctx, kind)
		f.Heal = time.Since(t0)
		if err != nil {
			f.Err = err.Error()
		}
		r.logf("fault %-20s at %6.1fs, healed in %5.1fs %s", kind, f.At.Seconds(), f.Heal.Seconds(), f.Err)
		r.mu.Lock()
		r.faultLog = append(r.faultLog, f)
		r.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			r.fatal(fmt.Errorf("fault %s did not heal: %w", kind, err))
			return
		}
	}
}

// apply applies one fault and heals it.
func (r *runner) apply(ctx context.Context, kind string) error {
	switch kind {
	case KillGameServer:
		r.gsOp.Lock()
		defer r.gsOp.Unlock()
		r.gs.proc().kill9()
		return r.gs.start(ctx, 3*time.Minute)
	case RestartRedis:
		r.redis.Kill()
		time.Sleep(500 * time.Millisecond)
		return r.redis.Restart(ctx)
	case KillMariaDB:
		r.maria.Kill()
		return r.maria.Restart(ctx)
	case FreezeMariaDB:
		if err := r.maria.Freeze(); err != nil {
			return err
		}
		time.Sleep(r.cfg.Freeze)
		return r.maria.Thaw(ctx)
	}
	return fmt.Errorf("unknown fault %q", kind)
}

// watchGameServer restarts the game server when it exits without being
// killed by the run (a crash: counted), until ctx ends.
func (r *runner) watchGameServer(ctx context.Context) {
	for {
		p := r.gs.proc()
		select {
		case <-ctx.Done():
			return
		case <-p.done:
		}
		r.gsOp.Lock()
		if r.gs.proc() == p && !p.wasKilled() && ctx.Err() == nil {
			r.gs.crashes++
			r.logf("game server exited by itself (%v): restarting it", p.err)
			if err := r.gs.start(ctx, 3*time.Minute); err != nil && ctx.Err() == nil {
				r.gsOp.Unlock()
				r.fatal(fmt.Errorf("game server crashed and did not start again: %w", err))
				return
			}
		}
		r.gsOp.Unlock()
		// Killed by the run: wait for the new process to be in place.
		for r.gs.proc() == p && ctx.Err() == nil {
			time.Sleep(100 * time.Millisecond)
		}
	}
}
