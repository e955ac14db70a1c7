package sqldialect

// SQLiteDSN returns the modernc.org/sqlite DSN madang uses for a database
// file: WAL journal, a busy timeout (PRAGMAs are per connection, so they go
// in the DSN, not in a statement), foreign keys on, and immediate write
// transactions so a read-then-write transaction never fails on lock upgrade.
// Use files, never ":memory:" (one database per connection).
func SQLiteDSN(path string) string {
	return "file:" + path + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"
}
