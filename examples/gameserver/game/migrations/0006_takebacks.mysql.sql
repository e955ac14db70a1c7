-- Operators' take-backs (MySQL / MariaDB): one row per (user, operator
-- request id), written in the take-back's transaction, so a resubmitted
-- request takes nothing twice. request_id is compared byte for byte.
CREATE TABLE takebacks (
  user_key BIGINT NOT NULL,
  request_id VARBINARY(128) NOT NULL,
  operator VARCHAR(64) NOT NULL,
  at BIGINT NOT NULL,
  PRIMARY KEY (user_key, request_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
