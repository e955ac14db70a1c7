-- The example game's player table and currency ledger (MySQL/MariaDB).
-- Times are Unix milliseconds.
CREATE TABLE players (
  user_key BIGINT NOT NULL PRIMARY KEY,
  name VARCHAR(64) NOT NULL,
  gold BIGINT NOT NULL,
  gems BIGINT NOT NULL,
  stamina BIGINT NOT NULL,
  stamina_at BIGINT NOT NULL,
  created_at BIGINT NOT NULL
) ENGINE=InnoDB;
CREATE TABLE ledger (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  user_key BIGINT NOT NULL,
  currency VARCHAR(16) NOT NULL,
  delta BIGINT NOT NULL,
  balance_after BIGINT NOT NULL,
  reason VARCHAR(64) NOT NULL,
  request_id VARCHAR(128) NOT NULL,
  at BIGINT NOT NULL,
  KEY ledger_user (user_key, id)
) ENGINE=InnoDB;
