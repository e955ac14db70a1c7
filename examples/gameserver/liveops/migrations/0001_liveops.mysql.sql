-- Live-ops policy of the game server (MySQL/MariaDB). Times are Unix
-- milliseconds. liveops_meta.version is bumped by every change, so servers
-- poll one row.
CREATE TABLE liveops_meta (
  id INT NOT NULL PRIMARY KEY,
  version BIGINT NOT NULL
) ENGINE=InnoDB;
INSERT INTO liveops_meta (id, version) VALUES (1, 1);
CREATE TABLE liveops_platforms (
  platform VARCHAR(32) NOT NULL PRIMARY KEY,
  min_version VARCHAR(64) NOT NULL,
  update_url VARCHAR(512) NOT NULL,
  updated_at BIGINT NOT NULL
) ENGINE=InnoDB;
CREATE TABLE liveops_client_versions (
  platform VARCHAR(32) NOT NULL,
  version VARCHAR(64) NOT NULL,
  review TINYINT NOT NULL,
  review_url VARCHAR(512) NOT NULL,
  data_version VARCHAR(64) NOT NULL,
  asset_version VARCHAR(64) NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (platform, version)
) ENGINE=InnoDB;
CREATE TABLE liveops_maintenance (
  id INT NOT NULL PRIMARY KEY,
  active TINYINT NOT NULL,
  message VARCHAR(1024) NOT NULL,
  ends_at BIGINT NOT NULL,
  allow_users TEXT NOT NULL,
  operator VARCHAR(64) NOT NULL,
  updated_at BIGINT NOT NULL
) ENGINE=InnoDB;
INSERT INTO liveops_maintenance (id, active, message, ends_at, allow_users, operator, updated_at) VALUES (1, 0, '', 0, '', '', 0);
CREATE TABLE liveops_user_maintenance (
  user_key BIGINT NOT NULL PRIMARY KEY,
  operator VARCHAR(64) NOT NULL,
  comment VARCHAR(255) NOT NULL,
  created_at BIGINT NOT NULL
) ENGINE=InnoDB;
CREATE TABLE liveops_logins (
  day INT NOT NULL,
  user_key BIGINT NOT NULL,
  PRIMARY KEY (day, user_key)
) ENGINE=InnoDB;
