-- The peak CCU of each UTC day (MySQL/MariaDB), for the ops console's
-- chart over days: every server samples the CCU (Manager.RecordCCU) and
-- keeps the larger figure.
CREATE TABLE liveops_ccu_daily (
  day BIGINT NOT NULL PRIMARY KEY,
  peak BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
