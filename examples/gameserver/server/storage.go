package server

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/idempotency"
	"github.com/madang-io/madang/internal/sqldialect"
	"github.com/madang-io/madang/shard"
	_ "modernc.org/sqlite" // the embedded mode's SQLite driver ("sqlite")
)

// Embedded layout: a common database (directory, accounts) and
// EmbeddedGameDBs game databases in Config.DataDir, game database i owning
// user keys i*EmbeddedKeyRange .. (i+1)*EmbeddedKeyRange-1 (gamedb01 from
// 10000000, gamedb02 from 20000000, ... as in the talk).
const (
	EmbeddedGameDBs  = 4
	EmbeddedKeyRange = 10_000_000
)

// storage is the embedded mode's databases.
type storage struct {
	common    *sql.DB
	directory *shard.SQLDirectory
	accounts  *shard.Accounts
	router    *shard.Router
	idem      *idempotency.SQLStore
}

// openStorage opens (creating on first start) the embedded databases under
// dataDir, registers the game databases in the directory if missing, and
// migrates every database. It is safe to run again on the same directory.
func openStorage(ctx context.Context, dataDir string, log *slog.Logger) (_ *storage, err error) {
	// Absolute paths go into the directory, so the server finds its
	// databases whatever its working directory is on the next start.
	dir, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	st := &storage{}
	defer func() {
		if err != nil {
			st.Close()
		}
	}()
	st.common, err = sql.Open("sqlite", sqldialect.SQLiteDSN(filepath.Join(dir, "common.db")))
	if err != nil {
		return nil, fmt.Errorf("common database: %w", err)
	}
	if _, err := shard.Migrate(ctx, st.common, shard.DirectoryMigrations()); err != nil {
		return nil, fmt.Errorf("common database: %w", err)
	}
	if st.directory, err = shard.NewSQLDirectory(st.common); err != nil {
		return nil, err
	}
	if err := registerGameDBs(ctx, st.directory, dir); err != nil {
		return nil, err
	}
	st.accounts = shard.NewAccounts(st.directory)
	if st.router, err = shard.NewRouter(ctx, shard.Config{Directory: st.directory, Logger: log}); err != nil {
		return nil, err
	}
	if _, err := st.router.MigrateAll(ctx, game.Migrations()); err != nil {
		return nil, fmt.Errorf("game databases: %w", err)
	}
	st.idem, err = idempotency.NewSQLStore(ctx, st.common, idempotency.SQLConfig{
		Config: idempotency.Config{RequireKey: true, Logger: log},
		DB: func(ctx context.Context, s idempotency.Scope) (*sql.DB, error) {
			return st.router.DB(ctx, s.UserKey)
		},
	})
	if err != nil {
		return nil, err
	}
	err = st.router.ForEach(ctx, func(ctx context.Context, _ shard.Database, db *sql.DB) error {
		return st.idem.Migrate(ctx, db)
	})
	if err != nil {
		return nil, fmt.Errorf("game databases: %w", err)
	}
	return st, nil
}

// registerGameDBs adds the embedded game databases missing from the
// directory. Another process starting at the same time may add one first:
// Add then fails on the overlapping range and the re-read finds it.
func registerGameDBs(ctx context.Context, d *shard.SQLDirectory, dir string) error {
	have := func() (map[int]bool, error) {
		dbs, err := d.Databases(ctx)
		if err != nil {
			return nil, fmt.Errorf("directory: %w", err)
		}
		m := make(map[int]bool, len(dbs))
		for _, db := range dbs {
			m[db.ID] = true
		}
		return m, nil
	}
	present, err := have()
	if err != nil {
		return err
	}
	for i := 1; i <= EmbeddedGameDBs; i++ {
		if present[i] {
			continue
		}
		name := fmt.Sprintf("gamedb%02d", i)
		first := int64(i) * EmbeddedKeyRange
		err := d.Add(ctx, shard.Database{
			ID: i, ServerID: 1, WorldID: 1, Name: name, Driver: "sqlite",
			DSN:      sqldialect.SQLiteDSN(filepath.Join(dir, name+".db")),
			FirstKey: first, LastKey: first + EmbeddedKeyRange - 1,
			Description: "embedded SQLite game database",
		})
		if err != nil {
			again, rerr := have()
			if rerr != nil || !again[i] {
				return fmt.Errorf("directory: add %s: %w", name, err)
			}
		}
	}
	return nil
}

// Close closes the router's pools and the common database.
func (st *storage) Close() error {
	var errs []error
	if st.router != nil {
		errs = append(errs, st.router.Close())
	}
	if st.common != nil {
		errs = append(errs, st.common.Close())
	}
	return errors.Join(errs...)
}
