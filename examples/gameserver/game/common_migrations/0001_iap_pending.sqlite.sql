-- In-app purchases whose grant may not have committed yet (SQLite), in the
-- common database beside the receipt redemptions: see the MySQL file.
CREATE TABLE iap_pending (
  user_key INTEGER NOT NULL,
  receipt_sha256 TEXT NOT NULL,
  platform TEXT NOT NULL,
  product_id TEXT NOT NULL,
  client_version TEXT NOT NULL,
  request_id TEXT NOT NULL,
  receipt TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (user_key, receipt_sha256)
);
CREATE INDEX iap_pending_created ON iap_pending (created_at);
