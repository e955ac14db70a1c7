package console_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"golang.org/x/crypto/bcrypt"
	_ "modernc.org/sqlite"

	"github.com/madang-io/madang/examples/gameserver/console"
	"github.com/madang-io/madang/session/sessiontest"
	"github.com/madang-io/madang/shard"
	"github.com/madang-io/madang/shard/shardtest"
)

func newStore(t *testing.T, b shardtest.Backend, clock *sessiontest.Clock) *console.Store {
	t.Helper()
	ctx := context.Background()
	db := b.Open(t, b.NewDSN(t))
	if _, err := shard.Migrate(ctx, db, console.Migrations()); err != nil {
		t.Fatal(err)
	}
	s, err := console.NewStore(ctx, console.StoreConfig{DB: db, PasswordCost: bcrypt.MinCost, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestStore runs the operators, sessions, lockout and audit log on SQLite
// and MariaDB (MADANG_MYSQL_DSN).
func TestStore(t *testing.T) {
	for _, b := range shardtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			clock := sessiontest.NewClock(time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC))
			s := newStore(t, b, clock)

			// Bad accounts name the field.
			for _, c := range []struct{ name, role, pw, field string }{
				{"", "operator", "long-enough-pw", "name"},
				{"al ice", "operator", "long-enough-pw", "name"},
				{"alice", "admin", "long-enough-pw", "role"},
				{"alice", "viewer", "short", "password"},
				{"alice", "viewer", strings.Repeat("x", 73), "password"},
			} {
				var fe *console.FieldError
				if err := s.AddOperator(ctx, c.name, c.role, c.pw); !errors.As(err, &fe) || fe.Field != c.field {
					t.Errorf("AddOperator(%q, %q, %d bytes): %v, want a %s error", c.name, c.role, len(c.pw), err, c.field)
				}
			}
			if err := s.AddOperator(ctx, "alice", console.RoleOperator, "alice-password-1"); err != nil {
				t.Fatal(err)
			}
			if err := s.AddOperator(ctx, "alice", console.RoleViewer, "another-password"); !errors.Is(err, console.ErrExists) {
				t.Fatalf("second alice: %v", err)
			}
			// Names compare byte for byte.
			if err := s.AddOperator(ctx, "Alice", console.RoleViewer, "another-password"); err != nil {
				t.Fatalf("Alice beside alice: %v", err)
			}
			if _, _, err := s.SignIn(ctx, "ALICE", "alice-password-1"); !errors.Is(err, console.ErrBadLogin) {
				t.Fatalf("ALICE: %v", err)
			}
			if _, _, err := s.SignIn(ctx, "nobody", "alice-password-1"); !errors.Is(err, console.ErrBadLogin) {
				t.Fatalf("unknown operator: %v", err)
			}

			token, sess, err := s.SignIn(ctx, "alice", "alice-password-1")
			if err != nil || sess.Operator.Role != console.RoleOperator || sess.CSRF == "" || token == "" {
				t.Fatalf("sign in: %v %+v", err, sess)
			}
			got, err := s.Session(ctx, token)
			if err != nil || got.CSRF != sess.CSRF || !got.Operator.CanChange() {
				t.Fatalf("session: %v %+v", err, got)
			}
			if _, err := s.Session(ctx, token+"x"); !errors.Is(err, console.ErrNoSession) {
				t.Fatalf("wrong token: %v", err)
			}
			// A role change applies at once and ends the sessions.
			if err := s.SetRole(ctx, "alice", console.RoleViewer); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Session(ctx, token); !errors.Is(err, console.ErrNoSession) {
				t.Fatalf("session after a role change: %v", err)
			}
			if err := s.SetRole(ctx, "nobody", console.RoleViewer); !errors.Is(err, console.ErrNoOperator) {
				t.Fatalf("role of nobody: %v", err)
			}
			// Sessions expire.
			token, _, err = s.SignIn(ctx, "alice", "alice-password-1")
			if err != nil {
				t.Fatal(err)
			}
			clock.Advance(console.DefaultSessionTTL)
			if _, err := s.Session(ctx, token); !errors.Is(err, console.ErrNoSession) {
				t.Fatalf("expired session: %v", err)
			}

			// Lockout after MaxFailures wrong passwords, until Lockout after
			// the last one; a success resets the count.
			for i := range console.DefaultMaxFailures {
				if _, _, err := s.SignIn(ctx, "alice", "wrong-password"); !errors.Is(err, console.ErrBadLogin) {
					t.Fatalf("failure %d: %v", i, err)
				}
			}
			if _, _, err := s.SignIn(ctx, "alice", "alice-password-1"); !errors.Is(err, console.ErrLockedOut) {
				t.Fatalf("locked out: %v", err)
			}
			clock.Advance(console.DefaultLockout - time.Second)
			if _, _, err := s.SignIn(ctx, "alice", "alice-password-1"); !errors.Is(err, console.ErrLockedOut) {
				t.Fatalf("still locked out: %v", err)
			}
			clock.Advance(time.Second)
			if _, _, err := s.SignIn(ctx, "alice", "alice-password-1"); err != nil {
				t.Fatalf("after the lockout: %v", err)
			}
			if _, _, err := s.SignIn(ctx, "alice", "wrong-password"); !errors.Is(err, console.ErrBadLogin) {
				t.Fatal(err)
			}
			if _, _, err := s.SignIn(ctx, "alice", "alice-password-1"); err != nil {
				t.Fatalf("one failure after a success: %v", err)
			}
			// A new password; the old one no longer works.
			if err := s.SetPassword(ctx, "alice", "new-password-22"); err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.SignIn(ctx, "alice", "alice-password-1"); !errors.Is(err, console.ErrBadLogin) {
				t.Fatalf("old password: %v", err)
			}

			// The audit log: begun pending, finished with the outcome, paged
			// newest first by id, filtered by target; text kept as written.
			var ids []int64
			for i := range 7 {
				id, err := s.Begin(ctx, console.AuditEntry{Operator: "alice", Action: "test", Target: []string{"user:1", "user:2"}[i%2], Before: `{"n":1}`, Comment: "why <b>" + string(rune('a'+i)) + "</b> 한글"})
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, id)
			}
			if err := s.Finish(ctx, ids[0], `{"n":2}`, nil); err != nil {
				t.Fatal(err)
			}
			if err := s.Finish(ctx, ids[1], "", errors.New("database down")); err != nil {
				t.Fatal(err)
			}
			page, err := s.Audit(ctx, "", 0, 3)
			if err != nil || len(page) != 3 || page[0].ID != ids[6] || page[2].ID != ids[4] {
				t.Fatalf("first page: %v %+v", err, page)
			}
			page, err = s.Audit(ctx, "", page[2].ID, 10)
			if err != nil || len(page) != 4 || page[3].ID != ids[0] {
				t.Fatalf("second page: %v %+v", err, page)
			}
			if e := page[3]; e.Outcome != console.OutcomeOK || e.After != `{"n":2}` || e.Before != `{"n":1}` || e.Comment != "why <b>a</b> 한글" || e.Operator != "alice" {
				t.Fatalf("finished entry: %+v", e)
			}
			if e := page[2]; e.Outcome != "failed: database down" || e.After != "" {
				t.Fatalf("failed entry: %+v", e)
			}
			if e := page[1]; e.Outcome != console.OutcomePending {
				t.Fatalf("unfinished entry: %+v", e)
			}
			page, err = s.Audit(ctx, "user:2", 0, 10)
			if err != nil || len(page) != 3 {
				t.Fatalf("user:2: %v %+v", err, page)
			}
			ops, err := s.Operators(ctx)
			if err != nil || len(ops) != 2 || ops[0].Name != "Alice" || ops[1].Name != "alice" || ops[1].Role != console.RoleViewer {
				t.Fatalf("operators: %v %+v", err, ops)
			}
		})
	}
}

func TestRunCommand(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, shardtest.SQLite(), sessiontest.NewClock(time.Now()))
	run := func(in string, args ...string) (string, error) {
		var out bytes.Buffer
		err := console.RunCommand(ctx, s, args, strings.NewReader(in), &out)
		return out.String(), err
	}
	if out, err := run("a-good-password\n", "add", "-name", "ari", "-role", "operator"); err != nil || !strings.Contains(out, "ari (operator) created") {
		t.Fatalf("add: %q %v", out, err)
	}
	if _, err := run("short\n", "add", "-name", "bo", "-role", "viewer"); err == nil || !strings.Contains(err.Error(), "password") {
		t.Fatalf("short password: %v", err)
	}
	if _, err := run("", "add", "-name", "bo", "-role", "boss"); err == nil || !strings.Contains(err.Error(), "role") {
		t.Fatalf("bad role: %v", err)
	}
	if _, err := run("", "frobnicate"); err == nil || !strings.Contains(err.Error(), "unknown operator subcommand") {
		t.Fatalf("unknown: %v", err)
	}
	if _, err := run(""); err == nil {
		t.Fatal("no subcommand")
	}
	if out, err := run("", "role", "-name", "ari", "-role", "viewer"); err != nil || !strings.Contains(out, "viewer") {
		t.Fatalf("role: %q %v", out, err)
	}
	if out, err := run("another-password\r\n", "passwd", "-name", "ari"); err != nil || !strings.Contains(out, "changed") {
		t.Fatalf("passwd: %q %v", out, err)
	}
	if _, _, err := s.SignIn(ctx, "ari", "another-password"); err != nil {
		t.Fatalf("sign in with the new password (CRLF trimmed): %v", err)
	}
	if out, err := run("", "list"); err != nil || !strings.HasPrefix(out, "ari\tviewer\t") {
		t.Fatalf("list: %q %v", out, err)
	}
}
