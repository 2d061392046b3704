-- 003_consumer_lag.sql - what `sysrepl status` needs to show a spoke's lag.
--
-- The consumer writes these with every offset it commits (same
-- transaction): the partition's high watermark as last seen from the
-- broker, and how far behind the newest record it applied was, in seconds
-- (0 when caught up). Lag in records is high_watermark - next_offset.
ALTER TABLE consumer_offsets
    ADD COLUMN high_watermark bigint,
    ADD COLUMN lag_seconds double precision;
