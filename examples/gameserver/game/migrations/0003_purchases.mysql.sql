-- In-app purchases granted (MySQL / MariaDB). One row per store transaction,
-- written in the transaction of the grant: the primary key makes a
-- transaction granted once even when its redemption (in the common
-- database) committed and the grant's transaction did not. Amounts are
-- millionths of currency.
CREATE TABLE purchases (
  store VARCHAR(32) NOT NULL,
  transaction_id VARCHAR(128) NOT NULL,
  user_key BIGINT NOT NULL,
  product_id VARCHAR(128) NOT NULL,
  quantity BIGINT NOT NULL,
  amount_micros BIGINT NOT NULL,
  currency VARCHAR(3) NOT NULL,
  environment VARCHAR(32) NOT NULL,
  purchased_at BIGINT NOT NULL,
  request_id VARCHAR(128) NOT NULL,
  at BIGINT NOT NULL,
  PRIMARY KEY (store, transaction_id),
  KEY purchases_user (user_key, at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
