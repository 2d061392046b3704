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
                                    || E'\n' || CASE WHEN TG_ARGV[0] = '1' THEN
                                        OLD.vulnerability_id || '|' ||
                                        CASE WHEN OLD.scope_kind = 'global' THEN 'global'
                                             ELSE OLD.scope_kind || ':' || OLD.scope_name END
                                       ELSE to_jsonb(OLD) ->> 'name' END);
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
    EXECUTE FUNCTION sysrepl.sysrepl_wal_rekey(1);
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
    'WAL capture: a versioned delete of the old key of a row whose key an update changed';
