-- In-app purchases whose grant may not have committed yet (MySQL /
-- MariaDB), in the common database beside the receipt redemptions. A row
-- is written before the receipt is redeemed and deleted once the grant's
-- transaction on the game database committed (or the receipt was refused
-- for good): a row that stays marks a purchase to grant at the player's
-- next login or by the server's sweep. The receipt's SHA-256 keys it per
-- player; identities compare byte for byte.
CREATE TABLE iap_pending (
  user_key BIGINT NOT NULL,
  receipt_sha256 VARBINARY(64) NOT NULL,
  platform VARCHAR(16) NOT NULL,
  product_id VARCHAR(128) NOT NULL,
  client_version VARCHAR(256) NOT NULL,
  request_id VARBINARY(128) NOT NULL,
  receipt MEDIUMTEXT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (user_key, receipt_sha256),
  KEY iap_pending_created (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
