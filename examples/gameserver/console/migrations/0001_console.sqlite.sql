-- The ops console's operators, their sign-in sessions and the audit log
-- (SQLite), in the common database: see the MySQL file. TEXT compares
-- byte for byte (BINARY collation).
CREATE TABLE console_operators (
  name TEXT NOT NULL PRIMARY KEY,
  role TEXT NOT NULL,
  password_hash TEXT NOT NULL,
  failures INTEGER NOT NULL,
  failed_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE console_sessions (
  id_sha256 TEXT NOT NULL PRIMARY KEY,
  operator TEXT NOT NULL,
  csrf TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX console_sessions_operator ON console_sessions (operator);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);
CREATE TABLE console_audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  operator TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  before_json TEXT NOT NULL,
  after_json TEXT NOT NULL,
  comment TEXT NOT NULL,
  outcome TEXT NOT NULL
);
CREATE INDEX console_audit_target ON console_audit (target, id);
