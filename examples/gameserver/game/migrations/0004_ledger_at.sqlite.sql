-- The ledger by time (SQLite): the operators' revenue per day.
CREATE INDEX ledger_at ON ledger (at);
