package shard_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/shard"
)

// A transaction whose connection the server kills (as a restart or a
// network cut does) is unavailable (41, retryable) with the driver's error
// still in the chain; a statement the database refuses stays internal
// (40). Before Tx classified fn's errors, the killed one was 40.
func TestTxKilledConnectionIsUnavailable(t *testing.T) {
	ctx := context.Background()
	r, key, db := mariaDBTableC(t)
	err := r.Tx(ctx, key, func(ctx context.Context, tx *sql.Tx) error {
		var id int64
		if err := tx.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
			return err
		}
		if _, err := db.ExecContext(ctx, fmt.Sprintf("KILL %d", id)); err != nil {
			t.Error(err)
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO c VALUES (1, 1)")
		return err
	})
	if c := protocol.CodeOf(err); c != protocol.CodeUnavailable || !errors.Is(err, shard.ErrUnavailable) || !errors.Is(err, mysql.ErrInvalidConn) {
		t.Fatalf("killed connection: %v (%v)", c, err)
	}
	err = r.Tx(ctx, key, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO missing VALUES (1)")
		return err
	})
	if c := protocol.CodeOf(err); c != protocol.CodeInternal {
		t.Fatalf("missing table: %v (%v)", c, err)
	}
	// The public classifier says the same of the raw driver errors.
	if c := protocol.CodeOf(shard.ClassifyError(mysql.ErrInvalidConn)); c != protocol.CodeUnavailable {
		t.Fatalf("ClassifyError(ErrInvalidConn): %v", c)
	}
	if err := errors.New("bug"); shard.ClassifyError(err) != err {
		t.Fatal("ClassifyError changed a bug")
	}
}
