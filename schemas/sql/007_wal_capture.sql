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

-- Quiet: the IF EXISTS below are for a re-run (a store whose version was
-- set back), not news for whoever runs sysrepl init.
SET LOCAL client_min_messages = warning;

DROP PUBLICATION IF EXISTS sysrepl_content;
CREATE PUBLICATION sysrepl_content
    FOR TABLE assessment_types, vulnerability_assessments, policies;

COMMENT ON PUBLICATION sysrepl_content IS
    'sysrepl: the content tables whose committed changes the producer reads from the WAL (docs/producer.md)';

-- A delete's version is taken in the deleting transaction, as the outbox
-- capture took it (under the row lock, ordered with the key's other
-- changes), and travels in the WAL as a transactional logical message
-- 'sysrepl.delete' with "<kind>\n<version>\n<key>" per deleted row: a
-- statement trigger and one small WAL record per deleted row, no table
-- write. The same for the old key of an update that changes a key (a row
-- trigger whose WHEN clause is false, and costs nothing, for every other
-- update). Created disabled: the producer enables them when it disables
-- the outbox triggers (srl_store_wal_engage), in one transaction.

DROP FUNCTION IF EXISTS sysrepl.sysrepl_wal_delete() CASCADE;
DROP FUNCTION IF EXISTS sysrepl.sysrepl_wal_delete_by_name() CASCADE;
DROP FUNCTION IF EXISTS sysrepl.sysrepl_wal_rekey() CASCADE;
DROP FUNCTION IF EXISTS sysrepl.sysrepl_wal_rekey_assessment() CASCADE;

CREATE FUNCTION sysrepl.sysrepl_wal_delete() RETURNS trigger
LANGUAGE plpgsql SET search_path = sysrepl, pg_catalog AS $$
BEGIN
    PERFORM pg_logical_emit_message(true, 'sysrepl.delete',
                                    TG_ARGV[0] || E'\n' || nextval('sysrepl.sysrepl_version')
                                    || E'\n' || o.key)
    FROM sysrepl_old o;
    RETURN NULL;
END $$;

CREATE FUNCTION sysrepl.sysrepl_wal_delete_by_name() RETURNS trigger
LANGUAGE plpgsql SET search_path = sysrepl, pg_catalog AS $$
BEGIN
    PERFORM pg_logical_emit_message(true, 'sysrepl.delete',
                                    TG_ARGV[0] || E'\n' || nextval('sysrepl.sysrepl_version')
                                    || E'\n' || o.name)
    FROM sysrepl_old o;
    RETURN NULL;
END $$;

CREATE FUNCTION sysrepl.sysrepl_wal_rekey() RETURNS trigger
LANGUAGE plpgsql SET search_path = sysrepl, pg_catalog AS $$
BEGIN
    PERFORM pg_logical_emit_message(true, 'sysrepl.delete',
                                    TG_ARGV[0] || E'\n' || nextval('sysrepl.sysrepl_version')
                                    || E'\n' || OLD.name);
    RETURN NULL;
END $$;

CREATE FUNCTION sysrepl.sysrepl_wal_rekey_assessment() RETURNS trigger
LANGUAGE plpgsql SET search_path = sysrepl, pg_catalog AS $$
BEGIN
    PERFORM pg_logical_emit_message(true, 'sysrepl.delete',
                                    '1' || E'\n' || nextval('sysrepl.sysrepl_version') || E'\n' ||
                                    OLD.vulnerability_id || '|' ||
                                    CASE WHEN OLD.scope_kind = 'global' THEN 'global'
                                         ELSE OLD.scope_kind || ':' || OLD.scope_name END);
    RETURN NULL;
END $$;

CREATE TRIGGER sysrepl_wal_delete AFTER DELETE ON assessment_types
    REFERENCING OLD TABLE AS sysrepl_old FOR EACH STATEMENT
    WHEN (NOT sysrepl.sysrepl_applying()) EXECUTE FUNCTION sysrepl.sysrepl_wal_delete_by_name(0);
CREATE TRIGGER sysrepl_wal_delete AFTER DELETE ON vulnerability_assessments
    REFERENCING OLD TABLE AS sysrepl_old FOR EACH STATEMENT
    WHEN (NOT sysrepl.sysrepl_applying()) EXECUTE FUNCTION sysrepl.sysrepl_wal_delete(1);
CREATE TRIGGER sysrepl_wal_delete AFTER DELETE ON policies
    REFERENCING OLD TABLE AS sysrepl_old FOR EACH STATEMENT
    WHEN (NOT sysrepl.sysrepl_applying()) EXECUTE FUNCTION sysrepl.sysrepl_wal_delete_by_name(2);

CREATE TRIGGER sysrepl_wal_rekey AFTER UPDATE ON assessment_types FOR EACH ROW
    WHEN (OLD.name IS DISTINCT FROM NEW.name AND NOT sysrepl.sysrepl_applying())
    EXECUTE FUNCTION sysrepl.sysrepl_wal_rekey(0);
CREATE TRIGGER sysrepl_wal_rekey AFTER UPDATE ON vulnerability_assessments FOR EACH ROW
    WHEN ((OLD.vulnerability_id, OLD.scope_kind, OLD.scope_name)
          IS DISTINCT FROM (NEW.vulnerability_id, NEW.scope_kind, NEW.scope_name)
          AND NOT sysrepl.sysrepl_applying())
    EXECUTE FUNCTION sysrepl.sysrepl_wal_rekey_assessment();
CREATE TRIGGER sysrepl_wal_rekey AFTER UPDATE ON policies FOR EACH ROW
    WHEN (OLD.name IS DISTINCT FROM NEW.name AND NOT sysrepl.sysrepl_applying())
    EXECUTE FUNCTION sysrepl.sysrepl_wal_rekey(2);

ALTER TABLE assessment_types DISABLE TRIGGER sysrepl_wal_delete, DISABLE TRIGGER sysrepl_wal_rekey;
ALTER TABLE vulnerability_assessments DISABLE TRIGGER sysrepl_wal_delete,
    DISABLE TRIGGER sysrepl_wal_rekey;
ALTER TABLE policies DISABLE TRIGGER sysrepl_wal_delete, DISABLE TRIGGER sysrepl_wal_rekey;

COMMENT ON FUNCTION sysrepl.sysrepl_wal_delete() IS
    'WAL capture: a versioned delete of each deleted assessment, as a logical message (docs/producer.md)';
COMMENT ON FUNCTION sysrepl.sysrepl_wal_delete_by_name() IS
    'WAL capture: a versioned delete of each deleted type or policy, as a logical message';
COMMENT ON FUNCTION sysrepl.sysrepl_wal_rekey() IS
    'WAL capture: a versioned delete of the old name of a type or policy an update renamed';
COMMENT ON FUNCTION sysrepl.sysrepl_wal_rekey_assessment() IS
    'WAL capture: a versioned delete of the old key of an assessment whose key an update changed';

-- ---------------------------------------------------------------------------
-- The stamp, made cheap for writers. Until version 6 one PL/pgSQL trigger
-- stamped every inserted and updated row (and compared updated rows as
-- jsonb); that per-row call was most of what a bulk statement paid once
-- the outbox is gone. Now:
--   - an insert is stamped by the columns' defaults, evaluated in C: the
--     version from the sequence, changed_at from the transaction's start,
--     origin a constant, this instance's id, which the trigger on
--     sysrepl.settings below keeps equal to the settings row;
--   - an update is stamped by a BEFORE UPDATE row trigger that compares
--     the row's columns directly (an update that changes nothing is still
--     skipped: no new version), with the instance id as its argument.
-- Writers that stamp themselves (sysrepl import, the consumer) are left
-- alone as before (WHEN NOT sysrepl_stamped()).
ALTER TABLE assessment_types ALTER COLUMN version SET DEFAULT nextval('sysrepl.sysrepl_version'),
    ALTER COLUMN changed_at SET DEFAULT sysrepl.sysrepl_now_ms();
ALTER TABLE vulnerability_assessments
    ALTER COLUMN version SET DEFAULT nextval('sysrepl.sysrepl_version'),
    ALTER COLUMN changed_at SET DEFAULT sysrepl.sysrepl_now_ms();
ALTER TABLE policies ALTER COLUMN version SET DEFAULT nextval('sysrepl.sysrepl_version'),
    ALTER COLUMN changed_at SET DEFAULT sysrepl.sysrepl_now_ms();

DROP TRIGGER IF EXISTS sysrepl_stamp ON assessment_types;
DROP TRIGGER IF EXISTS sysrepl_stamp ON vulnerability_assessments;
DROP TRIGGER IF EXISTS sysrepl_stamp ON policies;

-- TG_ARGV[0]: the instance id.
CREATE OR REPLACE FUNCTION sysrepl.sysrepl_stamp_update() RETURNS trigger
LANGUAGE plpgsql SET search_path = sysrepl, pg_catalog AS $$
BEGIN
    IF NEW IS NOT DISTINCT FROM OLD THEN
        RETURN NULL;
    END IF;
    NEW.origin := TG_ARGV[0];
    NEW.version := nextval('sysrepl.sysrepl_version');
    NEW.changed_at := sysrepl.sysrepl_now_ms();
    RETURN NEW;
END $$;

-- Assessments: "key" is generated, still NULL in NEW here, so the
-- comparison lists the other columns.
CREATE OR REPLACE FUNCTION sysrepl.sysrepl_stamp_update_assessment() RETURNS trigger
LANGUAGE plpgsql SET search_path = sysrepl, pg_catalog AS $$
BEGIN
    IF (NEW.vulnerability_id, NEW.assessment_type, NEW.comment, NEW.scope_kind, NEW.scope_name,
        NEW.package_name, NEW.package_version_range, NEW.expires_at, NEW.automatic,
        NEW.assessed_by, NEW.assessed_at, NEW.origin, NEW.version, NEW.changed_at)
       IS NOT DISTINCT FROM
       (OLD.vulnerability_id, OLD.assessment_type, OLD.comment, OLD.scope_kind, OLD.scope_name,
        OLD.package_name, OLD.package_version_range, OLD.expires_at, OLD.automatic,
        OLD.assessed_by, OLD.assessed_at, OLD.origin, OLD.version, OLD.changed_at) THEN
        RETURN NULL;
    END IF;
    NEW.origin := TG_ARGV[0];
    NEW.version := nextval('sysrepl.sysrepl_version');
    NEW.changed_at := sysrepl.sysrepl_now_ms();
    RETURN NEW;
END $$;

-- Keeps each content table's origin default and stamp trigger equal to the
-- instance id (at the migration, and whenever sysrepl init changes it).
-- No SET search_path: the content tables are found where the caller's
-- search_path (sysrepl's sessions: the store's schema) finds them.
CREATE OR REPLACE FUNCTION sysrepl.sysrepl_restamp(id text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT * FROM (VALUES ('assessment_types', 'sysrepl_stamp_update'),
                                   ('vulnerability_assessments', 'sysrepl_stamp_update_assessment'),
                                   ('policies', 'sysrepl_stamp_update')) AS v(tab, fn)
    LOOP
        EXECUTE format('ALTER TABLE %I.%I ALTER COLUMN origin SET DEFAULT %L',
                       (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                        WHERE c.oid = to_regclass(t.tab)), t.tab, id);
        EXECUTE format('DROP TRIGGER IF EXISTS sysrepl_stamp ON %s', to_regclass(t.tab));
        EXECUTE format('CREATE TRIGGER sysrepl_stamp BEFORE UPDATE ON %s FOR EACH ROW'
                       ' WHEN (NOT sysrepl.sysrepl_stamped())'
                       ' EXECUTE FUNCTION sysrepl.%I(%L)', to_regclass(t.tab), t.fn, id);
    END LOOP;
END $$;

CREATE OR REPLACE FUNCTION sysrepl.sysrepl_settings_restamp() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM sysrepl.sysrepl_restamp(NEW.instance_id);
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS sysrepl_settings_restamp ON sysrepl.settings;
CREATE TRIGGER sysrepl_settings_restamp AFTER INSERT OR UPDATE OF instance_id ON sysrepl.settings
    FOR EACH ROW EXECUTE FUNCTION sysrepl.sysrepl_settings_restamp();

SELECT sysrepl.sysrepl_restamp(coalesce((SELECT instance_id FROM sysrepl.settings), ''));

COMMENT ON FUNCTION sysrepl.sysrepl_stamp_update() IS
    'Stamps an updated type or policy (origin, version, changed_at); skips an update that changes nothing';
COMMENT ON FUNCTION sysrepl.sysrepl_stamp_update_assessment() IS
    'Stamps an updated assessment (origin, version, changed_at); skips an update that changes nothing';
COMMENT ON FUNCTION sysrepl.sysrepl_restamp(text) IS
    'Sets the content tables'' origin default and stamp trigger to an instance id (called when sysrepl.settings changes)';

-- Whether the producer has delivered what was committed before a point of
-- the WAL (a caller takes pg_current_wal_lsn() after its writes, then asks
-- until 0): the outbox rows waiting, plus 1 while the store's slot has not
-- confirmed that point. Scripts and tests wait on it; an idle producer
-- confirms the end of the WAL within about a second.
CREATE OR REPLACE FUNCTION sysrepl.undelivered(since pg_lsn) RETURNS bigint
LANGUAGE sql STABLE AS
$$ SELECT (SELECT count(*) FROM sysrepl.outbox)
        + (SELECT count(*) FROM pg_catalog.pg_replication_slots
           WHERE database = current_database() AND slot_name LIKE 'sysrepl\_%'
             AND coalesce(confirmed_flush_lsn < since, true)) $$;

COMMENT ON FUNCTION sysrepl.undelivered(pg_lsn) IS
    'Outbox rows waiting plus 1 while the store''s replication slot has not confirmed the given WAL position: 0 once everything committed before it is delivered';
