-- The peak CCU of each UTC day (SQLite); see 0004_ccu.mysql.sql.
CREATE TABLE liveops_ccu_daily (
  day INTEGER PRIMARY KEY,
  peak INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
