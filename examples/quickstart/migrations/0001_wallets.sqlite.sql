-- One row per player on the player's game database: gold and the last day
-- (days since 1970-01-01, UTC) the daily reward was claimed.
CREATE TABLE wallets (
  user_key INTEGER NOT NULL PRIMARY KEY,
  gold INTEGER NOT NULL DEFAULT 0,
  daily_day INTEGER NOT NULL DEFAULT 0
);
