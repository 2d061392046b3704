-- 007_wal_capture.sql - the hub's changes can be read from its WAL.
--
-- The producer reads committed changes of the content tables through
-- logical decoding (docs/producer.md, "Capture"): the built-in pgoutput
-- plugin streams the rows of the publication below from a replication slot
-- the producer makes (sysrepl_<database oid>). Writers then pay only for
-- the stamp their rows always carried (version, origin, changed_at); the
-- outbox triggers are disabled by the producer once its slot exists, and
-- stay for servers without wal_level = logical (producer.capture).
--
-- vulnerability_assessments' primary key is a generated column, which
-- logical decoding leaves out of the rows it sends: REPLICA IDENTITY FULL
-- makes a delete (and an update) carry the old row's fields, from which the
-- producer derives the key as the generated column does. The cost is the
-- old row's fields in the WAL record of every update and delete of an
-- assessment. The other two tables are keyed by name, a plain column.

CREATE PUBLICATION sysrepl_content
    FOR TABLE assessment_types, vulnerability_assessments, policies;

ALTER TABLE vulnerability_assessments REPLICA IDENTITY FULL;

COMMENT ON PUBLICATION sysrepl_content IS
    'sysrepl: the content tables whose committed changes the producer reads from the WAL (docs/producer.md)';
