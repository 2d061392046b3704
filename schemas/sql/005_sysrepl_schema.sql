-- 005_sysrepl_schema.sql - sysrepl's own objects move into the schema
-- `sysrepl`; every table and column gets a COMMENT.
--
-- Until version 4 everything sat in the schema the store was created in
-- (normally public), under generic names a DBA could not tell from the
-- registry's: settings, outbox, tombstones. From this version on:
--
--   sysrepl.*   the bookkeeping (schema_version, settings, outbox,
--               tombstones, consumer_offsets, dead_letters, replication_log,
--               producer_state), the version sequence, and the functions
--               the content tables' defaults and triggers call.
--   public      (or wherever the store was created) the content tables
--               assessment_types, vulnerability_assessments, policies. They
--               are the registry's content, read and written by the
--               registry under these names; sysrepl only adds three columns
--               and its triggers to them. docs/store.md gives the reasons.
--
-- The move is in place (ALTER .. SET SCHEMA keeps every row, index,
-- constraint, owned sequence and privilege), in the one transaction of this
-- migration. Names are kept, sysrepl_ prefix included: column defaults and
-- triggers refer to the functions by OID and go on working, and a DBA's
-- script that qualified nothing finds the objects through sysrepl's
-- search_path (docs/store.md, "Sessions").
--
-- Sessions that are not sysrepl's (the registry writing content) do not
-- have `sysrepl` in their search_path, so nothing the content tables' code
-- runs may depend on it: the SQL functions name their objects in full (no
-- SET clause: these are called per row by COPY defaults and trigger WHEN
-- clauses, and a SET would stop them from being inlined and cost a GUC
-- save/restore per call), the PL/pgSQL trigger functions pin their
-- search_path.

CREATE SCHEMA sysrepl;

ALTER TABLE schema_version   SET SCHEMA sysrepl;
ALTER TABLE settings         SET SCHEMA sysrepl;
ALTER TABLE outbox           SET SCHEMA sysrepl;
ALTER TABLE tombstones       SET SCHEMA sysrepl;
ALTER TABLE consumer_offsets SET SCHEMA sysrepl;
ALTER TABLE dead_letters     SET SCHEMA sysrepl;
ALTER TABLE replication_log  SET SCHEMA sysrepl;
ALTER TABLE producer_state   SET SCHEMA sysrepl;
ALTER SEQUENCE sysrepl_version SET SCHEMA sysrepl;

ALTER FUNCTION sysrepl_applying()                SET SCHEMA sysrepl;
ALTER FUNCTION sysrepl_stamped()                 SET SCHEMA sysrepl;
ALTER FUNCTION sysrepl_now_ms()                  SET SCHEMA sysrepl;
ALTER FUNCTION sysrepl_default_version()         SET SCHEMA sysrepl;
ALTER FUNCTION sysrepl_stamp()                   SET SCHEMA sysrepl;
ALTER FUNCTION sysrepl_capture_insert()          SET SCHEMA sysrepl;
ALTER FUNCTION sysrepl_capture_update()          SET SCHEMA sysrepl;
ALTER FUNCTION sysrepl_capture_delete()          SET SCHEMA sysrepl;
ALTER FUNCTION sysrepl_capture_insert_by_name()  SET SCHEMA sysrepl;
ALTER FUNCTION sysrepl_capture_update_by_name()  SET SCHEMA sysrepl;
ALTER FUNCTION sysrepl_capture_delete_by_name()  SET SCHEMA sysrepl;
ALTER FUNCTION sysrepl_refuse_truncate()         SET SCHEMA sysrepl;
ALTER FUNCTION sysrepl_outbox_notify()           SET SCHEMA sysrepl;

-- The one SQL function whose body names other objects (the two settings
-- functions only call pg_catalog). Same text as in 001, qualified.
CREATE OR REPLACE FUNCTION sysrepl.sysrepl_default_version() RETURNS bigint
LANGUAGE sql VOLATILE AS
$$ SELECT CASE WHEN sysrepl.sysrepl_stamped() THEN nextval('sysrepl.sysrepl_version') ELSE 0 END $$;

-- Trigger functions run in the writer's session, whatever its search_path.
ALTER FUNCTION sysrepl.sysrepl_stamp()                  SET search_path = sysrepl, pg_catalog;
ALTER FUNCTION sysrepl.sysrepl_capture_insert()         SET search_path = sysrepl, pg_catalog;
ALTER FUNCTION sysrepl.sysrepl_capture_update()         SET search_path = sysrepl, pg_catalog;
ALTER FUNCTION sysrepl.sysrepl_capture_delete()         SET search_path = sysrepl, pg_catalog;
ALTER FUNCTION sysrepl.sysrepl_capture_insert_by_name() SET search_path = sysrepl, pg_catalog;
ALTER FUNCTION sysrepl.sysrepl_capture_update_by_name() SET search_path = sysrepl, pg_catalog;
ALTER FUNCTION sysrepl.sysrepl_capture_delete_by_name() SET search_path = sysrepl, pg_catalog;
ALTER FUNCTION sysrepl.sysrepl_refuse_truncate()        SET search_path = sysrepl, pg_catalog;
ALTER FUNCTION sysrepl.sysrepl_outbox_notify()          SET search_path = sysrepl, pg_catalog;

-- ---------------------------------------------------------------------------
-- What a DBA reads in \d+ and \dt+.

COMMENT ON SCHEMA sysrepl IS
    'sysrepl''s replication bookkeeping (sysrepl docs/store.md); the replicated content stays in the registry''s own tables';
COMMENT ON SEQUENCE sysrepl.sysrepl_version IS
    'Store-wide change version: every captured change takes the next value (CACHE 1 on purpose: a cached range would let a later change of a row take a smaller version)';

COMMENT ON TABLE sysrepl.schema_version IS
    'One row: the number of the last sysrepl migration applied (schemas/sql/NNN_*.sql); every sysrepl program refuses a store at another version';
COMMENT ON COLUMN sysrepl.schema_version.only_row IS 'Always true: keeps the table at one row';
COMMENT ON COLUMN sysrepl.schema_version.version IS 'Number of the last applied migration';
COMMENT ON COLUMN sysrepl.schema_version.applied_at IS 'When that migration was applied';

COMMENT ON TABLE sysrepl.settings IS
    'One row: who this store is, written by sysrepl init';
COMMENT ON COLUMN sysrepl.settings.only_row IS 'Always true: keeps the table at one row';
COMMENT ON COLUMN sysrepl.settings.instance_id IS
    'This instance''s id: the origin stamped on every change written here';
COMMENT ON COLUMN sysrepl.settings.role IS
    'hub (publishes its changes) or spoke (mirrors a hub)';
COMMENT ON COLUMN sysrepl.settings.updated_at IS 'When sysrepl init last wrote the row';

COMMENT ON TABLE sysrepl.outbox IS
    'Changes captured by the content tables'' triggers, in the writer''s transaction, waiting for the producer; it deletes a row once the change is delivered. On a spoke: local edits the next sync overwrites';
COMMENT ON COLUMN sysrepl.outbox.version IS
    'The change''s version: an upsert''s is the row''s new version, a delete takes a fresh one';
COMMENT ON COLUMN sysrepl.outbox.kind IS
    'Content kind: 0 assessment_types, 1 vulnerability_assessments, 2 policies';
COMMENT ON COLUMN sysrepl.outbox.key IS
    'Key of the changed row (name, or vulnerability_assessments.key)';
COMMENT ON COLUMN sysrepl.outbox.deleted IS 'true: the row was deleted';
COMMENT ON COLUMN sysrepl.outbox.created_at IS 'When the change was captured';

COMMENT ON TABLE sysrepl.tombstones IS
    'Spoke: deletes applied with their version, so a stale upsert arriving later loses. Written and purged by the consumer only';
COMMENT ON COLUMN sysrepl.tombstones.kind IS
    'Content kind: 0 assessment_types, 1 vulnerability_assessments, 2 policies';
COMMENT ON COLUMN sysrepl.tombstones.key IS 'Key of the deleted row';
COMMENT ON COLUMN sysrepl.tombstones.version IS
    'Version of the delete: records of the key at or below it are stale';
COMMENT ON COLUMN sysrepl.tombstones.origin IS 'Instance id that made the delete';
COMMENT ON COLUMN sysrepl.tombstones.changed_at IS
    'When the delete was made at its origin (ms since the Unix epoch)';
COMMENT ON COLUMN sysrepl.tombstones.deleted_at IS 'When the delete was applied here';

COMMENT ON TABLE sysrepl.consumer_offsets IS
    'Spoke: the next offset to read per topic partition, committed in the same transaction as the rows it produced';
COMMENT ON COLUMN sysrepl.consumer_offsets.topic IS 'Kafka topic';
COMMENT ON COLUMN sysrepl.consumer_offsets.partition IS 'Partition of the topic';
COMMENT ON COLUMN sysrepl.consumer_offsets.next_offset IS
    'Offset of the next record to apply (every record below it is applied)';
COMMENT ON COLUMN sysrepl.consumer_offsets.updated_at IS 'When the offset was last committed';
COMMENT ON COLUMN sysrepl.consumer_offsets.caught_up_at IS
    'When the consumer last reached the end of the partition; NULL: never';
COMMENT ON COLUMN sysrepl.consumer_offsets.high_watermark IS
    'The partition''s end as last seen from the broker; lag in records is high_watermark - next_offset';
COMMENT ON COLUMN sysrepl.consumer_offsets.lag_seconds IS
    'How far behind its record''s time the newest applied record was, in seconds (0 when caught up)';

COMMENT ON TABLE sysrepl.dead_letters IS
    'Spoke: records that could not be applied, kept with the reason; never dropped by sysrepl';
COMMENT ON COLUMN sysrepl.dead_letters.id IS 'Row id, in the order the records were refused';
COMMENT ON COLUMN sysrepl.dead_letters.topic IS 'Topic of the record';
COMMENT ON COLUMN sysrepl.dead_letters.partition IS 'Partition of the record';
COMMENT ON COLUMN sysrepl.dead_letters.record_offset IS 'Offset of the record in its partition';
COMMENT ON COLUMN sysrepl.dead_letters.key IS 'The record''s key, as received';
COMMENT ON COLUMN sysrepl.dead_letters.value IS 'The record''s value, as received (NULL: a tombstone)';
COMMENT ON COLUMN sysrepl.dead_letters.reason IS 'Why it was refused';
COMMENT ON COLUMN sysrepl.dead_letters.created_at IS 'When it was refused';

COMMENT ON TABLE sysrepl.replication_log IS
    'Replication events shown by sysrepl status (stats, errors, rebuilds); rows older than log.retention are deleted by the programs';
COMMENT ON COLUMN sysrepl.replication_log.id IS 'Row id, in the order of the events';
COMMENT ON COLUMN sysrepl.replication_log.at IS 'When the event was written';
COMMENT ON COLUMN sysrepl.replication_log.level IS 'debug, info, warn or error';
COMMENT ON COLUMN sysrepl.replication_log.component IS 'producer, consumer or bridge';
COMMENT ON COLUMN sysrepl.replication_log.message IS 'The log line''s message and key=value pairs';
COMMENT ON COLUMN sysrepl.replication_log.counts IS 'Optional numbers of the event, e.g. {"applied": 10}';

COMMENT ON TABLE sysrepl.producer_state IS
    'Hub: one row, where the producer is; updated by it, read by sysrepl status';
COMMENT ON COLUMN sysrepl.producer_state.only_row IS 'Always true: keeps the table at one row';
COMMENT ON COLUMN sysrepl.producer_state.last_delivered_version IS
    'Highest version the producer has delivered';
COMMENT ON COLUMN sysrepl.producer_state.delivered_at IS 'When it last delivered';
COMMENT ON COLUMN sysrepl.producer_state.rate IS 'Records per second over the last interval';
COMMENT ON COLUMN sysrepl.producer_state.last_error IS 'The last delivery or store error';
COMMENT ON COLUMN sysrepl.producer_state.last_error_at IS 'When it happened';
COMMENT ON COLUMN sysrepl.producer_state.updated_at IS 'When the row was last written';

-- Content tables: the registry's, replicated by sysrepl.
COMMENT ON TABLE assessment_types IS
    'Assessment types (replicated by sysrepl, kind 0); key: name, unique case-insensitively';
COMMENT ON COLUMN assessment_types.name IS 'The type''s name; its key';
COMMENT ON COLUMN assessment_types.description IS 'Free text';
COMMENT ON COLUMN assessment_types.color IS 'Display color, #rrggbb';
COMMENT ON COLUMN assessment_types.severity_class IS 'ignore, warn, severe or custom';
COMMENT ON COLUMN assessment_types.emitted_severity IS
    'Severity a custom type emits: none, low, medium, high or critical';
COMMENT ON COLUMN assessment_types.auto_rule IS
    'Automatic assignment rule: none, cvss or pvrs';
COMMENT ON COLUMN assessment_types.cvss_min IS 'Lowest CVSS score of the cvss rule (0..10)';
COMMENT ON COLUMN assessment_types.cvss_max IS 'Highest CVSS score of the cvss rule (0..10)';
COMMENT ON COLUMN assessment_types.pvrs_categories IS 'Categories of the pvrs rule';
COMMENT ON COLUMN assessment_types.default_expiry_days IS
    'Days until an assessment of this type expires by default; NULL: never';
COMMENT ON COLUMN assessment_types.inactive IS 'true: no longer offered for new assessments';
COMMENT ON COLUMN assessment_types.built_in IS 'true: shipped with the registry';
COMMENT ON COLUMN assessment_types.origin IS
    'sysrepl: instance id of the writer (set by its trigger)';
COMMENT ON COLUMN assessment_types.version IS
    'sysrepl: version of the last change (from sysrepl.sysrepl_version; set by its trigger)';
COMMENT ON COLUMN assessment_types.changed_at IS
    'sysrepl: time of the last change, ms since the Unix epoch (set by its trigger)';

COMMENT ON TABLE vulnerability_assessments IS
    'Vulnerability assessments (replicated by sysrepl, kind 1); key: the generated column key';
COMMENT ON COLUMN vulnerability_assessments.key IS
    'The record key, generated from the fields: "<vulnerability_id>|global" or "<vulnerability_id>|<scope_kind>:<scope_name>"';
COMMENT ON COLUMN vulnerability_assessments.vulnerability_id IS 'e.g. CVE-2021-44228';
COMMENT ON COLUMN vulnerability_assessments.assessment_type IS
    'Name of an assessment type (no foreign key: kinds replicate independently)';
COMMENT ON COLUMN vulnerability_assessments.comment IS 'Free text';
COMMENT ON COLUMN vulnerability_assessments.scope_kind IS 'global, policy, feed or project';
COMMENT ON COLUMN vulnerability_assessments.scope_name IS
    'Name of the policy, feed or project; NULL for global';
COMMENT ON COLUMN vulnerability_assessments.package_name IS
    'Package the assessment is limited to; NULL: any package';
COMMENT ON COLUMN vulnerability_assessments.package_version_range IS
    'Versions of that package it is limited to; NULL: all';
COMMENT ON COLUMN vulnerability_assessments.expires_at IS
    'When it expires, ms since the Unix epoch; NULL: never';
COMMENT ON COLUMN vulnerability_assessments.automatic IS 'true: assigned by a type''s rule';
COMMENT ON COLUMN vulnerability_assessments.assessed_by IS 'Who assessed it';
COMMENT ON COLUMN vulnerability_assessments.assessed_at IS
    'When it was assessed, ms since the Unix epoch';
COMMENT ON COLUMN vulnerability_assessments.origin IS
    'sysrepl: instance id of the writer (set by its trigger)';
COMMENT ON COLUMN vulnerability_assessments.version IS
    'sysrepl: version of the last change (from sysrepl.sysrepl_version; set by its trigger)';
COMMENT ON COLUMN vulnerability_assessments.changed_at IS
    'sysrepl: time of the last change, ms since the Unix epoch (set by its trigger)';

COMMENT ON TABLE policies IS
    'Policies (replicated by sysrepl, kind 2); key: name';
COMMENT ON COLUMN policies.name IS 'The policy''s name; its key';
COMMENT ON COLUMN policies.description IS 'Free text';
COMMENT ON COLUMN policies.feeds IS 'Feeds the policy applies to';
COMMENT ON COLUMN policies.unassessed IS
    'Outcome for an unassessed vulnerability: unspecified, compliant, warn or noncompliant';
COMMENT ON COLUMN policies.by_assessment_type IS
    'Outcome per assessment type name: {"<name>": "<outcome>", ...}';
COMMENT ON COLUMN policies.license_undetected IS 'Outcome when no license is detected';
COMMENT ON COLUMN policies.license_other IS 'Outcome for a license not in by_license';
COMMENT ON COLUMN policies.by_license IS 'Outcome per license: {"<license>": "<outcome>", ...}';
COMMENT ON COLUMN policies.deprecated IS 'Outcome for a deprecated package';
COMMENT ON COLUMN policies.unlisted IS 'Outcome for an unlisted package';
COMMENT ON COLUMN policies.exceptions IS
    'Exceptions: [{"package", "version_range", "rule_groups", "expires_at"}, ...]';
COMMENT ON COLUMN policies.risk_profile IS
    'Risk profile {"network_exposure": "<level>", ...}; NULL: none';
COMMENT ON COLUMN policies.origin IS
    'sysrepl: instance id of the writer (set by its trigger)';
COMMENT ON COLUMN policies.version IS
    'sysrepl: version of the last change (from sysrepl.sysrepl_version; set by its trigger)';
COMMENT ON COLUMN policies.changed_at IS
    'sysrepl: time of the last change, ms since the Unix epoch (set by its trigger)';
