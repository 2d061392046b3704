-- bench/pgbench/assessment_upsert.sql - one transaction: one single-row
-- INSERT .. ON CONFLICT (key) DO UPDATE into vulnerability_assessments, the
-- hub write of issue 15 (driven by bench/bench_hub_write.sh).
--
-- The key is random over :keys ids (pgbench -D keys=N; the runner passes
-- 1,000,000): 'CVE-2025-' and 7 digits (1000001 .. 1000000 + N, N <= 8,999,999),
-- a valid CVE id (^CVE-[0-9]{4}-[0-9]{4,}$, common/rules.c), global scope,
-- the type 'Blocked' (the runner creates it). Every statement changes the
-- row (assessed_at and comment), so an update is never skipped as a no-op.
--
-- comment carries the hub's clock_timestamp() as epoch seconds with
-- microseconds: the latency run's spoke trigger subtracts it from its own
-- clock at apply time. It is taken during the statement, so the hub's own
-- commit (WAL flush) is counted in the latency, not left out.
\set id random(1, :keys)
INSERT INTO vulnerability_assessments
    (vulnerability_id, assessment_type, scope_kind, assessed_at, comment)
VALUES ('CVE-2025-' || (1000000 + :id), 'Blocked', 'global',
        (extract(epoch FROM clock_timestamp()) * 1000)::bigint,
        extract(epoch FROM clock_timestamp())::text)
ON CONFLICT (key) DO UPDATE
    SET assessed_at = EXCLUDED.assessed_at, comment = EXCLUDED.comment;
