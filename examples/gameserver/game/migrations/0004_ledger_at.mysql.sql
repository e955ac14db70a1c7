-- The ledger by time (MySQL / MariaDB): the operators' revenue per day.
CREATE INDEX ledger_at ON ledger (at);
