-- Live-ops events (SQLite): one row per event, its definition as JSON
-- (liveops.Event), validated by the Manager before it is written.
CREATE TABLE liveops_events (
  id TEXT PRIMARY KEY,
  body TEXT NOT NULL,
  updated_at INTEGER NOT NULL
);
