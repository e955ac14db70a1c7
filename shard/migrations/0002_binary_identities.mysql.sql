-- Every column states its character set and collation instead of taking
-- the server's (MySQL / MariaDB). On a server whose default is latin1 or a
-- case-insensitive collation, 0001's tables compared login identities
-- case-insensitively and ignoring trailing spaces ("Device-1", "device-1"
-- and "device-1   " were one account) and refused characters outside
-- latin1 (an emoji device id). This migration:
--
--   1. converts both tables to utf8mb4 with utf8mb4_bin (the data is
--      transcoded: a latin1 'é' becomes the UTF-8 bytes c3 a9);
--   2. stores the identity columns as VARBINARY: compared byte for byte.
--      utf8mb4_bin alone is not enough: it is a PAD SPACE collation, so
--      'a' = 'a   ' still holds; MariaDB's utf8mb4_nopad_bin and MySQL
--      8's utf8mb4_0900_bin fix that but neither exists on the other
--      server, and VARBINARY means the same on both (and on Vitess).
--
-- Converting never merges rows (the new comparison only tells apart
-- values the old one took as equal). It rebuilds the tables (a copying
-- ALTER): on a large shard_accounts run it at a quiet time. Each
-- statement is idempotent, so a migration left dirty can be repaired by
-- running the statements again. SQLite compares TEXT byte for byte
-- already (0002_binary_identities.sqlite.sql does nothing).
ALTER TABLE shard_databases CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
ALTER TABLE shard_accounts CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
ALTER TABLE shard_accounts
    MODIFY platform    VARBINARY(32)  NOT NULL,
    MODIFY external_id VARBINARY(191) NOT NULL;
