-- The ops console's operators, their sign-in sessions and the audit log
-- (MySQL / MariaDB), in the common database. Times are Unix milliseconds.
-- Operator names compare byte for byte (utf8mb4_bin). A session is kept
-- by the SHA-256 of its cookie, so reading this table signs nobody in.
CREATE TABLE console_operators (
  name VARCHAR(64) NOT NULL PRIMARY KEY,
  role VARCHAR(16) NOT NULL,
  password_hash VARCHAR(128) NOT NULL,
  failures INT NOT NULL,
  failed_at BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE console_sessions (
  id_sha256 VARCHAR(64) NOT NULL PRIMARY KEY,
  operator VARCHAR(64) NOT NULL,
  csrf VARCHAR(64) NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  KEY console_sessions_operator (operator),
  KEY console_sessions_expires (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE console_audit (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  at BIGINT NOT NULL,
  operator VARCHAR(64) NOT NULL,
  action VARCHAR(64) NOT NULL,
  target VARCHAR(255) NOT NULL,
  before_json MEDIUMTEXT NOT NULL,
  after_json MEDIUMTEXT NOT NULL,
  comment VARCHAR(1024) NOT NULL,
  outcome VARCHAR(1024) NOT NULL,
  KEY console_audit_target (target, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
