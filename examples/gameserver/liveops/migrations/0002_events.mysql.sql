-- Live-ops events (MySQL/MariaDB): one row per event, its definition as
-- JSON (liveops.Event), validated by the Manager before it is written.
CREATE TABLE liveops_events (
  id VARCHAR(64) NOT NULL PRIMARY KEY,
  body TEXT NOT NULL,
  updated_at BIGINT NOT NULL
) ENGINE=InnoDB;
