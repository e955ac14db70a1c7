package sqldialect

import (
	"context"
	"database/sql"
	"fmt"
)

// WriteUnchanged gives tx logged changes to the rows of table matching where
// (with args) without changing them: col is raised by 1, then lowered by 1.
// It returns how many rows both updates changed (the fewer of the two).
//
// It is how a caller makes another transaction's commit durable before it
// acts on it: InnoDB makes a commit visible before its redo log is flushed,
// so a row just read may be lost in a crash; changes logged after that
// commit and committed by tx are flushed with it, and the log is written in
// order. One update that leaves a value as it was is not logged by MySQL or
// MariaDB, hence the pair. col must be an integer column.
func WriteUnchanged(ctx context.Context, tx *sql.Tx, table, col, where string, args ...any) (int64, error) {
	var changed int64 = -1
	for _, op := range []string{"+", "-"} {
		q := fmt.Sprintf("UPDATE %s SET %s = %s %s 1 WHERE %s", table, col, col, op, where)
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return 0, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return 0, err
		}
		if changed < 0 || n < changed {
			changed = n
		}
	}
	return changed, nil
}
