-- Example game schema.
CREATE TABLE gold (
    user_key BIGINT NOT NULL PRIMARY KEY,
    amount   BIGINT NOT NULL
);
