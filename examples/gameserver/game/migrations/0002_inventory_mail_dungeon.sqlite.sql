-- Experience, the inventory, the mailbox and dungeon runs (SQLite).
-- Times are Unix milliseconds. Ledger rows of items use the currency
-- "item:<item id>".
ALTER TABLE players ADD COLUMN exp INTEGER NOT NULL DEFAULT 0;
CREATE TABLE inventory (
  user_key INTEGER NOT NULL,
  item_id TEXT NOT NULL,
  count INTEGER NOT NULL,
  PRIMARY KEY (user_key, item_id)
);
-- mail_key makes a keyed mail (the welcome mail, an operator's grant) unique
-- per user; NULL for unkeyed mail. claimed_at is 0 until claimed.
CREATE TABLE mails (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  user_key INTEGER NOT NULL,
  mail_key TEXT,
  title TEXT NOT NULL,
  body TEXT NOT NULL,
  gold INTEGER NOT NULL,
  gems INTEGER NOT NULL,
  items TEXT NOT NULL,
  sent_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  claimed_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX mails_user ON mails (user_key, claimed_at, id);
CREATE UNIQUE INDEX mails_key ON mails (user_key, mail_key);
-- One row per dungeon.start; finished_at is 0 until dungeon.finish.
-- result is "", "win", "lose" or "rejected" (an anti-cheat refusal).
CREATE TABLE dungeon_runs (
  run_id TEXT PRIMARY KEY,
  user_key INTEGER NOT NULL,
  dungeon_id TEXT NOT NULL,
  started_at INTEGER NOT NULL,
  client_started_at INTEGER NOT NULL,
  finished_at INTEGER NOT NULL DEFAULT 0,
  result TEXT NOT NULL DEFAULT '',
  damage INTEGER NOT NULL DEFAULT 0,
  play_time_ms INTEGER NOT NULL DEFAULT 0,
  score INTEGER NOT NULL DEFAULT 0,
  gold INTEGER NOT NULL DEFAULT 0,
  exp INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX dungeon_runs_user ON dungeon_runs (user_key, started_at);
