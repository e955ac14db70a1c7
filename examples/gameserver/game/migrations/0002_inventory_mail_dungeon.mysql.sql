-- Experience, the inventory, the mailbox and dungeon runs (MySQL /
-- MariaDB). Times are Unix milliseconds. Ledger rows of items use the
-- currency "item:<item id>".
ALTER TABLE players ADD COLUMN exp BIGINT NOT NULL DEFAULT 0;
CREATE TABLE inventory (
  user_key BIGINT NOT NULL,
  item_id VARCHAR(64) NOT NULL,
  count BIGINT NOT NULL,
  PRIMARY KEY (user_key, item_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
-- mail_key makes a keyed mail (the welcome mail, an operator's grant) unique
-- per user; NULL for unkeyed mail. claimed_at is 0 until claimed.
CREATE TABLE mails (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  user_key BIGINT NOT NULL,
  mail_key VARCHAR(128) NULL,
  title VARCHAR(255) NOT NULL,
  body TEXT NOT NULL,
  gold BIGINT NOT NULL,
  gems BIGINT NOT NULL,
  items TEXT NOT NULL,
  sent_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  claimed_at BIGINT NOT NULL DEFAULT 0,
  KEY mails_user (user_key, claimed_at, id),
  UNIQUE KEY mails_key (user_key, mail_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
-- One row per dungeon.start; finished_at is 0 until dungeon.finish.
-- result is '', 'win', 'lose' or 'rejected' (an anti-cheat refusal).
CREATE TABLE dungeon_runs (
  run_id VARCHAR(64) NOT NULL PRIMARY KEY,
  user_key BIGINT NOT NULL,
  dungeon_id VARCHAR(64) NOT NULL,
  started_at BIGINT NOT NULL,
  client_started_at BIGINT NOT NULL,
  finished_at BIGINT NOT NULL DEFAULT 0,
  result VARCHAR(16) NOT NULL DEFAULT '',
  damage BIGINT NOT NULL DEFAULT 0,
  play_time_ms BIGINT NOT NULL DEFAULT 0,
  score BIGINT NOT NULL DEFAULT 0,
  gold BIGINT NOT NULL DEFAULT 0,
  exp BIGINT NOT NULL DEFAULT 0,
  KEY dungeon_runs_user (user_key, started_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
