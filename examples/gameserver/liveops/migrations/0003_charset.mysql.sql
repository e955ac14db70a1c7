-- Every live-ops table states its character set and collation (MySQL /
-- MariaDB): 0001 and 0002 declared none, so on a server whose default is
-- latin1 with a case-insensitive collation, platforms, client versions and
-- event ids compared case-insensitively and refused characters outside
-- latin1. Converted to utf8mb4 with utf8mb4_bin (the data is transcoded).
-- Converting never merges rows; each statement is idempotent, so a
-- migration left dirty can be repaired by running the statements again.
-- SQLite compares TEXT byte for byte already (0003_charset.sqlite.sql
-- does nothing).
ALTER TABLE liveops_meta CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
ALTER TABLE liveops_platforms CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
ALTER TABLE liveops_client_versions CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
ALTER TABLE liveops_maintenance CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
ALTER TABLE liveops_user_maintenance CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
ALTER TABLE liveops_logins CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
ALTER TABLE liveops_events CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
