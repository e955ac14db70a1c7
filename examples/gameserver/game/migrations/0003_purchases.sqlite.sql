-- In-app purchases granted (SQLite). One row per store transaction, written
-- in the transaction of the grant: the primary key makes a transaction
-- granted once even when its redemption (in the common database) committed
-- and the grant's transaction did not. Amounts are millionths of currency.
CREATE TABLE purchases (
  store TEXT NOT NULL,
  transaction_id TEXT NOT NULL,
  user_key INTEGER NOT NULL,
  product_id TEXT NOT NULL,
  quantity INTEGER NOT NULL,
  amount_micros INTEGER NOT NULL,
  currency TEXT NOT NULL,
  environment TEXT NOT NULL,
  purchased_at INTEGER NOT NULL,
  request_id TEXT NOT NULL,
  at INTEGER NOT NULL,
  PRIMARY KEY (store, transaction_id)
);
CREATE INDEX purchases_user ON purchases (user_key, at);
