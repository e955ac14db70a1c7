-- Live-ops policy of the game server (SQLite). Times are Unix milliseconds.
-- liveops_meta.version is bumped by every change, so servers poll one row.
CREATE TABLE liveops_meta (
  id INTEGER PRIMARY KEY,
  version INTEGER NOT NULL
);
INSERT INTO liveops_meta (id, version) VALUES (1, 1);
CREATE TABLE liveops_platforms (
  platform TEXT PRIMARY KEY,
  min_version TEXT NOT NULL,
  update_url TEXT NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE liveops_client_versions (
  platform TEXT NOT NULL,
  version TEXT NOT NULL,
  review INTEGER NOT NULL,
  review_url TEXT NOT NULL,
  data_version TEXT NOT NULL,
  asset_version TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (platform, version)
);
CREATE TABLE liveops_maintenance (
  id INTEGER PRIMARY KEY,
  active INTEGER NOT NULL,
  message TEXT NOT NULL,
  ends_at INTEGER NOT NULL,
  allow_users TEXT NOT NULL,
  operator TEXT NOT NULL,
  updated_at INTEGER NOT NULL
);
INSERT INTO liveops_maintenance (id, active, message, ends_at, allow_users, operator, updated_at) VALUES (1, 0, '', 0, '', '', 0);
CREATE TABLE liveops_user_maintenance (
  user_key INTEGER PRIMARY KEY,
  operator TEXT NOT NULL,
  comment TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE liveops_logins (
  day INTEGER NOT NULL,
  user_key INTEGER NOT NULL,
  PRIMARY KEY (day, user_key)
);
