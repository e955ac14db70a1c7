-- Every table states its character set and collation (MySQL / MariaDB):
-- utf8mb4 with utf8mb4_bin, so no text compares case-insensitively, and the
-- keys that come from outside the server — a keyed mail's mail_key, a
-- dungeon run_id sent back by the client, a purchase's store and store
-- transaction id — are VARBINARY, compared byte for byte (utf8mb4_bin is
-- a PAD SPACE collation: 'k' = 'k   ' would still hold; VARBINARY means
-- the same on MariaDB, MySQL and Vitess). 0001-0004 declared only
-- DEFAULT CHARSET=utf8mb4, whose default collation is case-insensitive.
--
-- Converting never merges rows. It rebuilds each table (a copying ALTER,
-- the ledger included): on large game databases run the migration at a
-- quiet time. Every statement is idempotent, so a migration left dirty can
-- be repaired by running the statements again. SQLite compares TEXT byte
-- for byte already (0005_charset.sqlite.sql does nothing).
ALTER TABLE players CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
ALTER TABLE ledger CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
ALTER TABLE inventory CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
ALTER TABLE mails CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
ALTER TABLE mails MODIFY mail_key VARBINARY(128) NULL;
ALTER TABLE dungeon_runs CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
ALTER TABLE dungeon_runs MODIFY run_id VARBINARY(64) NOT NULL;
ALTER TABLE purchases CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
ALTER TABLE purchases
  MODIFY store VARBINARY(32) NOT NULL,
  MODIFY transaction_id VARBINARY(128) NOT NULL;
