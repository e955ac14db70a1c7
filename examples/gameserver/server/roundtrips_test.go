package server

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/madang-io/madang/anticheat/anticheattest"
	"github.com/madang-io/madang/session/sessiontest"
	"github.com/madang-io/madang/shard/shardtest"
)

// Round trips to the common database per login (issue 17's goal: at most
// 3 for a returning player, 4 for a new one), with the key-block refill a
// new player's login may pay (1 in EmbeddedKeyBlock / MySQLKeyBlock).
const (
	maxTripsReturning = 3
	maxTripsNew       = 4
)

// reload reports whether a statement is one of the in-process copies'
// periodic loads (the APK signature registry every SignatureCacheTTL, the
// block list every 10 s), which a login pays only when it finds a copy
// expired.
func reload(q string) bool {
	return strings.Contains(q, "FROM anticheat_signatures") && !strings.Contains(q, "WHERE") ||
		strings.Contains(q, "until_ms = 0 OR until_ms >")
}

// TestLoginRoundTrips counts the round trips each login makes to the
// common database (statements, BEGIN, COMMIT), through the whole HTTP
// chain (login gate, sessions, anti-cheat guard, live ops, the auth.guest
// handler), on embedded SQLite and on MariaDB: a returning player's login
// costs at most maxTripsReturning, a new player's at most maxTripsNew
// (its key block's refill included: enough new players log in to cross
// one). The caches' periodic loads are counted apart.
func TestLoginRoundTrips(t *testing.T) {
	for _, mode := range []string{"sqlite", "mariadb"} {
		t.Run(mode, func(t *testing.T) {
			// With purchases on, as in production: a returning player's
			// login reads its noted purchases (game.GrantPending).
			cfg := Config{XORKey: testXORKey, DataDir: filepath.Join(t.TempDir(), "data"), LiveOpsPoll: time.Hour,
				IAPVerifier: anticheattest.NewVerifier(), IAPSweepInterval: -1}
			if mode == "mariadb" {
				if os.Getenv(shardtest.EnvMySQLDSN) == "" {
					t.Skip(shardtest.EnvMySQLDSN + " not set")
				}
				cfg.MySQLDSN = shardtest.MySQL().NewDSN(t)
				dropGameDBs(t, cfg.MySQLDSN, EmbeddedGameDBs)
			}
			if os.Getenv(sessiontest.EnvRedisAddr) != "" {
				c := sessiontest.Redis(t)
				cfg.RedisAddr = os.Getenv(sessiontest.EnvRedisAddr)
				cfg.RedisPrefix = sessiontest.RedisPrefix(t, c)
			}
			// Every statement and BEGIN, COMMIT, ROLLBACK the counter lists
			// is one round trip.
			var counter *shardtest.Counter
			cfg.wrapCommon = func(db *sql.DB, dsn string) *sql.DB {
				counter = new(shardtest.Counter)
				drv := db.Driver()
				db.Close()
				return sql.OpenDB(counter.Connector(drv, dsn))
			}
			base, srv := startServerOn(t, cfg)
			if counter == nil {
				t.Fatal("the common database was not opened through the counter")
			}
			ctx := context.Background()
			c, _ := newClient(t, base)
			login(t, c, "warm-up") // loads the signature registry and block list
			// Returning players: accounts older than the 10 s in which a
			// login confirms a young row (shard.Accounts.Register).
			const returning = 5
			for i := range returning {
				login(t, c, fmt.Sprintf("old-%d", i))
			}
			if _, err := srv.store.common.ExecContext(ctx, "UPDATE shard_accounts SET created_at = created_at - 60000 WHERE external_id LIKE 'old-%'"); err != nil {
				t.Fatal(err)
			}
			counter.Take()
			var reloads []string
			count := func(device string) (int, []string) {
				t.Helper()
				login(t, c, device)
				var trips []string
				for _, q := range counter.Take() {
					if reload(q) {
						reloads = append(reloads, q)
						continue
					}
					trips = append(trips, q)
				}
				return len(trips), trips
			}
			maxRet, sumRet := 0, 0
			for i := range returning {
				n, trips := count(fmt.Sprintf("old-%d", i))
				if n > maxTripsReturning {
					t.Errorf("returning player's login: %d round trips to the common database, want at most %d:\n  %s",
						n, maxTripsReturning, strings.Join(trips, "\n  "))
				}
				if i == 0 {
					t.Logf("returning player's login: %s", strings.Join(trips, " | "))
				}
				maxRet, sumRet = max(maxRet, n), sumRet+n
			}
			// New players: more than a key block, so one login refills it.
			newPlayers := max(EmbeddedKeyBlock, MySQLKeyBlock) + 2
			maxNew, sumNew := 0, 0
			for i := range newPlayers {
				n, trips := count(fmt.Sprintf("new-%d", i))
				if n > maxTripsNew {
					t.Errorf("new player's login %d: %d round trips to the common database, want at most %d:\n  %s",
						i, n, maxTripsNew, strings.Join(trips, "\n  "))
				}
				if n > 2 || i == 0 {
					t.Logf("new player's login %d: %s", i, strings.Join(trips, " | "))
				}
				maxNew, sumNew = max(maxNew, n), sumNew+n
			}
			if maxNew < 3 {
				t.Errorf("no new player's login refilled its key block (max %d round trips): the test does not show the refill", maxNew)
			}
			// The caches load once per TTL, not per login: a few loads at
			// most however slow the machine is.
			if len(reloads) > 2*(returning+newPlayers)/10+2 {
				t.Errorf("%d cache loads for %d logins:\n  %s", len(reloads), returning+newPlayers, strings.Join(reloads, "\n  "))
			}
			t.Logf("%s: returning player: max %d, mean %.2f round trips; new player: max %d, mean %.2f; cache loads %d in %d logins",
				mode, maxRet, float64(sumRet)/returning, maxNew, float64(sumNew)/float64(newPlayers), len(reloads), returning+newPlayers)
		})
	}
}
