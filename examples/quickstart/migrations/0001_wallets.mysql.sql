-- One row per player on the player's game database: gold and the last day
-- (days since 1970-01-01, UTC) the daily reward was claimed.
CREATE TABLE wallets (
  user_key BIGINT NOT NULL PRIMARY KEY,
  gold BIGINT NOT NULL DEFAULT 0,
  daily_day BIGINT NOT NULL DEFAULT 0
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
