-- The game-database directory and the account table of the common database.
-- One file for both dialects: only types and constraints both accept.
CREATE TABLE shard_databases (
    db_id       INT          NOT NULL PRIMARY KEY,
    server_id   INT          NOT NULL DEFAULT 0,
    world_id    INT          NOT NULL DEFAULT 0,
    db_name     VARCHAR(255) NOT NULL DEFAULT '',
    host        VARCHAR(255) NOT NULL DEFAULT '',
    port        INT          NOT NULL DEFAULT 0,
    driver      VARCHAR(32)  NOT NULL,
    dsn         VARCHAR(2048) NOT NULL DEFAULT '',
    replicas    VARCHAR(4096) NOT NULL DEFAULT '',
    first_key   BIGINT       NOT NULL,
    last_key    BIGINT       NOT NULL,
    next_key    BIGINT       NOT NULL,
    user_count  BIGINT       NOT NULL DEFAULT 0,
    weight      INT          NOT NULL DEFAULT 1,
    state       VARCHAR(16)  NOT NULL DEFAULT 'open',
    description VARCHAR(255) NOT NULL DEFAULT '',
    updated_at  BIGINT       NOT NULL DEFAULT 0,
    UNIQUE (first_key)
);

CREATE TABLE shard_accounts (
    platform    VARCHAR(32)  NOT NULL,
    external_id VARCHAR(191) NOT NULL,
    user_key    BIGINT       NOT NULL,
    created_at  BIGINT       NOT NULL,
    PRIMARY KEY (platform, external_id),
    UNIQUE (user_key)
);
