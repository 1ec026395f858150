-- Log chunks in a table partitioned by day, so retention drops a whole
-- day at once instead of deleting its rows one by one (which leaves the
-- table to vacuum and writes every deleted row to the WAL).
--
-- A chunk's key starts with its deployment's id, a ULID whose first six
-- bytes are the deployment's creation time in Unix milliseconds, big
-- endian: a range of keys is a range of creation times, and every chunk
-- of a deployment falls in the partition of the day it was created. The
-- controller running the store's once-per-store work makes each day's
-- partition two days ahead (store/kv/pg/days.rs), never for a day that
-- has begun in the default partition; chunks of the days without one
-- (those before this migration among them) stay in the default
-- partition, where retention deletes them row by row as before.

ALTER TABLE kv_log_chunks RENAME TO kv_log_chunks_unpartitioned;
ALTER TABLE kv_log_chunks_unpartitioned RENAME CONSTRAINT kv_log_chunks_pkey TO kv_log_chunks_unpartitioned_pkey;

CREATE TABLE kv_log_chunks (k bytea NOT NULL, v bytea NOT NULL, PRIMARY KEY (k))
    PARTITION BY RANGE (k);
CREATE TABLE kv_log_chunks_default PARTITION OF kv_log_chunks DEFAULT;

INSERT INTO kv_log_chunks (k, v) SELECT k, v FROM kv_log_chunks_unpartitioned;
DROP TABLE kv_log_chunks_unpartitioned;
