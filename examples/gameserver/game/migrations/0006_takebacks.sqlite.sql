-- Operators' take-backs (SQLite): one row per (user, operator request id),
-- written in the take-back's transaction, so a resubmitted request takes
-- nothing twice.
CREATE TABLE takebacks (
  user_key INTEGER NOT NULL,
  request_id TEXT NOT NULL,
  operator TEXT NOT NULL,
  at INTEGER NOT NULL,
  PRIMARY KEY (user_key, request_id)
);
