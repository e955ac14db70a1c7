package server

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/madang-io/madang/examples/cmdline"
	"github.com/madang-io/madang/examples/gameserver/console"
	"github.com/madang-io/madang/realtime"
	"github.com/madang-io/madang/session"
	"github.com/madang-io/madang/shard"
)

// buildConsole makes the ops console (package console) for the admin
// listener: operators, sessions and the audit log in the common database.
func (s *Server) buildConsole(ctx context.Context) error {
	if _, err := shard.Migrate(ctx, s.store.common, console.Migrations()); err != nil {
		return fmt.Errorf("common database: %w", err)
	}
	store, err := console.NewStore(ctx, console.StoreConfig{DB: s.store.common, Dialect: s.store.dialect, PasswordCost: s.cfg.consolePasswordCost})
	if err != nil {
		return err
	}
	var listSessions func(context.Context, int64) ([]*session.Session, error)
	if l, ok := s.sessions.(session.SessionLister); ok {
		listSessions = l.UserSessions
	}
	s.console, err = console.New(console.Config{
		Sessions: listSessions,
		Store:    store, LiveOps: s.liveops, Registry: s.registry, Monitor: s.guard.Monitor(),
		Game: s.game, Catalog: s.catalog, RevokeUser: s.sessions.RevokeUser,
		FindUser: func(ctx context.Context, platform, id string) (int64, bool, error) {
			if len(id) > shard.MaxIdentityIDLen {
				return 0, false, nil
			}
			f, err := s.store.accounts.Find(ctx, shard.Identity{Platform: platform, ID: id})
			if err != nil {
				return 0, false, err
			}
			k, ok := f.UserKey()
			return k, ok, nil
		},
		Notice: func(ctx context.Context, n console.Notice) error {
			payload, _ := json.Marshal(NoticePayload{Message: n.Message})
			_, err := s.hub.Broadcast(ctx, realtime.Filter{Country: n.Country, Language: n.Language, Platform: n.Platform}, n.Topic, payload)
			return err
		},
		Secure: s.cfg.ConsoleSecureCookies,
		Logger: s.log,
	})
	return err
}

// adminMux serves the console under console.Prefix and the ops API (with
// NoticesPath) everywhere else: the admin listener's handler.
func (s *Server) adminMux() http.Handler {
	m := http.NewServeMux()
	if s.console != nil {
		m.Handle(console.Prefix, s.console)
		m.Handle("GET /console", http.RedirectHandler(console.Prefix, http.StatusSeeOther))
	}
	if s.cfg.Pprof {
		m.Handle(PprofPath, pprofHandler(s.adminToken))
	}
	m.Handle("/", withNotices(s.admin, s.hub, s.adminToken, s.log))
	return m
}

// RunOperator runs the game server's "operator" subcommand: it manages the
// ops console's operators in the common database the server would use
// (flags -data and -mysql, env MADANG_DATA_DIR and MADANG_MYSQL_DSN, as
// for the server), creating and migrating the databases on a first run.
// args are the subcommand's (console.RunCommand: add, passwd, role, list);
// a password is read from in.
func RunOperator(ctx context.Context, args []string, getenv func(string) string, in io.Reader, out io.Writer) error {
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	fs := flag.NewFlagSet("gameserver operator", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dataDir := fs.String("data", env("MADANG_DATA_DIR", DefaultDataDir), "directory of the embedded SQLite databases (env MADANG_DATA_DIR)")
	dsn := fs.String("mysql", env("MADANG_MYSQL_DSN", ""), "DSN of the common database on MySQL/MariaDB (env MADANG_MYSQL_DSN)")
	if err := cmdline.Parse(fs, args); err != nil {
		var he *cmdline.HelpError
		if errors.As(err, &he) {
			he.Usage += "\n" + console.CommandUsage
		}
		return err
	}
	st, err := openStorage(ctx, storageConfig{DataDir: *dataDir, MySQLDSN: *dsn}, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := shard.Migrate(ctx, st.common, console.Migrations()); err != nil {
		return fmt.Errorf("common database: %w", err)
	}
	store, err := console.NewStore(ctx, console.StoreConfig{DB: st.common, Dialect: st.dialect})
	if err != nil {
		return err
	}
	return console.RunCommand(ctx, store, fs.Args(), in, out)
}
