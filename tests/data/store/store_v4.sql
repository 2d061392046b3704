-- store_v4.sql - a sysrepl store at schema version 4, exactly as the
-- builds before the move to the schema sysrepl created it: migrations
-- 001..004 as released (git show 654be31:schemas/sql/NNN_*.sql), then the
-- version row. tests/integration/test_store_upgrade.c upgrades it.

-- ==== schemas/sql/001_init.sql
-- 001_init.sql - the first version of the sysrepl store.
--
-- Migrations are embedded into every binary at build time, in file-name
-- order; `sysrepl init` applies the missing ones, each in its own
-- transaction, and records the number in schema_version. A released
-- migration is never edited: change the store with a new NNN_*.sql file.
-- See common/include/sysrepl/store.h for the picture of these tables.
--
-- Conventions:
--   * times replicated with the content (changed_at, expires_at,
--     assessed_at) are bigint milliseconds since the Unix epoch, the unit of
--     the Avro schemas and model.h; local bookkeeping times are timestamptz.
--   * enum values are stored as the lowercase symbols of the schemas and
--     the JSON form, so a person reading a table with psql sees the words.
--   * every content row carries origin (instance id of the writer), version
--     (from the store-wide sequence sysrepl_version) and changed_at, set by
--     the capture triggers below, never by the writer (see sysrepl.stamped
--     for the one exception, the bulk import).

-- ---------------------------------------------------------------------------
-- Store bookkeeping

CREATE TABLE schema_version (
    only_row   boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    version    integer NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- Who this store is. One row, written by `sysrepl init`.
CREATE TABLE settings (
    only_row    boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    instance_id text NOT NULL CHECK (instance_id <> ''),
    role        text NOT NULL CHECK (role IN ('hub', 'spoke')),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- One sequence for the whole store: every captured change takes the next
-- value, so versions are unique across kinds and grow per entity. CACHE 1
-- on purpose: a cached range would let a later change of the same row (in
-- another session) take a smaller version.
CREATE SEQUENCE sysrepl_version AS bigint START 1 CACHE 1;

-- ---------------------------------------------------------------------------
-- Session settings and stamps, used by the defaults and triggers below.

-- True while the replication consumer applies records in this transaction.
CREATE FUNCTION sysrepl_applying() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT coalesce(current_setting('sysrepl.applying', true), '') = 'on' $$;

-- True when the writer stamps rows itself (or applies them): `sysrepl
-- import` sets `SET LOCAL sysrepl.stamped = 'on'` and writes origin,
-- version and changed_at set-based, in its statements: in its COPY (the
-- version from the column default below) and in INSERT .. SELECT .. ON
-- CONFLICT (nextval in DO UPDATE SET, so it is taken under the row lock).
-- A per-row trigger call costs more than the rest of a bulk insert. The
-- outbox capture still runs. Like sysrepl.applying this is a contract
-- between sysrepl programs, not a permission.
CREATE FUNCTION sysrepl_stamped() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT coalesce(current_setting('sysrepl.stamped', true), '') = 'on'
          OR coalesce(current_setting('sysrepl.applying', true), '') = 'on' $$;

-- changed_at of a change made now: ms since the epoch of the transaction's
-- start, so every row of one transaction carries the same time.
CREATE FUNCTION sysrepl_now_ms() RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT (date_part('epoch', now()) * 1000)::bigint $$;

-- The default of every content table's version column: 0 (the stamping
-- trigger sets it), except for a writer that stamps rows itself, whose bulk
-- COPY leaves the column out and takes the next value here.
CREATE FUNCTION sysrepl_default_version() RETURNS bigint
LANGUAGE sql VOLATILE AS
$$ SELECT CASE WHEN sysrepl_stamped() THEN nextval('sysrepl_version') ELSE 0 END $$;

-- ---------------------------------------------------------------------------
-- Content: one table per kind, every field of model.h.

CREATE TABLE assessment_types (
    name                text PRIMARY KEY CHECK (name <> ''),
    description         text,
    color               text CHECK (color ~ '^#[0-9a-fA-F]{6}$'),
    severity_class      text NOT NULL
                        CHECK (severity_class IN ('ignore', 'warn', 'severe', 'custom')),
    emitted_severity    text
                        CHECK (emitted_severity IN ('none', 'low', 'medium', 'high', 'critical')),
    auto_rule           text NOT NULL DEFAULT 'none'
                        CHECK (auto_rule IN ('none', 'cvss', 'pvrs')),
    cvss_min            double precision CHECK (cvss_min BETWEEN 0 AND 10),
    cvss_max            double precision CHECK (cvss_max BETWEEN 0 AND 10),
    pvrs_categories     integer[],
    default_expiry_days integer CHECK (default_expiry_days > 0),
    inactive            boolean NOT NULL DEFAULT false,
    built_in            boolean NOT NULL DEFAULT false,
    origin              text NOT NULL DEFAULT '',
    version             bigint NOT NULL DEFAULT sysrepl_default_version(),
    changed_at          bigint NOT NULL DEFAULT 0
);
-- Names are compared case-insensitively: "Blocked" and "blocked" are one type.
CREATE UNIQUE INDEX assessment_types_lower_name ON assessment_types (lower(name));

CREATE TABLE vulnerability_assessments (
    -- The record key of keys.h, derived so it can never disagree with the
    -- fields: "<vulnerability_id>|global" or "<vulnerability_id>|<kind>:<name>".
    key                   text GENERATED ALWAYS AS (
                              vulnerability_id || '|' ||
                              CASE WHEN scope_kind = 'global' THEN 'global'
                                   ELSE scope_kind || ':' || scope_name END) STORED
                          PRIMARY KEY,
    vulnerability_id      text NOT NULL CHECK (vulnerability_id <> ''),
    -- No foreign key to assessment_types: a spoke applies topics that are
    -- consumed independently, and a type may be deleted while assessments
    -- still name it. The CLI validates the name on the hub.
    assessment_type       text NOT NULL,
    comment               text,
    scope_kind            text NOT NULL
                          CHECK (scope_kind IN ('global', 'policy', 'feed', 'project')),
    scope_name            text,
    package_name          text,    -- NULL: no package filter
    package_version_range text,
    expires_at            bigint,  -- ms; NULL: never expires
    automatic             boolean NOT NULL DEFAULT false,
    assessed_by           text,
    assessed_at           bigint NOT NULL,
    origin                text NOT NULL DEFAULT '',
    version               bigint NOT NULL DEFAULT sysrepl_default_version(),
    changed_at            bigint NOT NULL DEFAULT 0,
    CHECK ((scope_kind = 'global') = (scope_name IS NULL)),
    CHECK (package_version_range IS NULL OR package_name IS NOT NULL)
);
-- The CLI's filters: --type (case-insensitive), --scope, --expired.
CREATE INDEX vulnerability_assessments_type
    ON vulnerability_assessments (lower(assessment_type));
CREATE INDEX vulnerability_assessments_scope
    ON vulnerability_assessments (scope_kind, scope_name);
CREATE INDEX vulnerability_assessments_expires_at
    ON vulnerability_assessments (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE policies (
    name               text PRIMARY KEY CHECK (name <> ''),
    description        text,
    feeds              text[] NOT NULL DEFAULT '{}',
    unassessed         text NOT NULL DEFAULT 'unspecified',
    -- Nested rule sets, in the JSON form of json.h:
    --   by_assessment_type, by_license: {"<name>": "<outcome>", ...}
    --   exceptions: [{"package": .., "version_range": .., "rule_groups": [..],
    --                 "expires_at": ..}, ...]
    --   risk_profile: {"network_exposure": "<level>", ...} or NULL
    by_assessment_type jsonb NOT NULL DEFAULT '{}',
    license_undetected text NOT NULL DEFAULT 'unspecified',
    license_other      text NOT NULL DEFAULT 'unspecified',
    by_license         jsonb NOT NULL DEFAULT '{}',
    deprecated         text NOT NULL DEFAULT 'unspecified',
    unlisted           text NOT NULL DEFAULT 'unspecified',
    exceptions         jsonb NOT NULL DEFAULT '[]',
    risk_profile       jsonb,
    origin             text NOT NULL DEFAULT '',
    version            bigint NOT NULL DEFAULT sysrepl_default_version(),
    changed_at         bigint NOT NULL DEFAULT 0,
    CHECK (unassessed IN ('unspecified', 'compliant', 'warn', 'noncompliant')),
    CHECK (license_undetected IN ('unspecified', 'compliant', 'warn', 'noncompliant')),
    CHECK (license_other IN ('unspecified', 'compliant', 'warn', 'noncompliant')),
    CHECK (deprecated IN ('unspecified', 'compliant', 'warn', 'noncompliant')),
    CHECK (unlisted IN ('unspecified', 'compliant', 'warn', 'noncompliant'))
);

-- ---------------------------------------------------------------------------
-- Capture: every change written by a person or the CLI becomes one outbox
-- row, in the writer's own transaction. The replication consumer applies
-- records with `SET LOCAL sysrepl.applying = 'on'`: its rows keep the
-- record's origin/version/changed_at and write no outbox row.

-- kind: 0 assessment types, 1 vulnerability assessments, 2 policies
-- (srl_kind_t). version: the change's version (for an upsert, the version
-- now in the row; for a delete, a fresh one). The producer drains it in
-- version order and deletes rows once delivered.
CREATE TABLE outbox (
    version    bigint PRIMARY KEY,
    kind       smallint NOT NULL CHECK (kind BETWEEN 0 AND 2),
    key        text NOT NULL,
    deleted    boolean NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Deletions applied on a spoke, so "the higher version wins" also holds
-- against a delete: a record for (kind, key) with version <= the
-- tombstone's is stale. Written by the consumer (with the version from the
-- record header), removed by it when a newer upsert of the key is applied
-- or when tombstones older than the topic's retention are purged.
CREATE TABLE tombstones (
    kind       smallint NOT NULL CHECK (kind BETWEEN 0 AND 2),
    key        text NOT NULL,
    version    bigint NOT NULL,
    origin     text NOT NULL DEFAULT '',
    changed_at bigint NOT NULL DEFAULT 0,
    deleted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, key)
);

-- BEFORE INSERT OR UPDATE, per row: stamp the change. An UPDATE that
-- changes nothing is skipped (no new version, no outbox row), so re-running
-- an import is a no-op.
CREATE FUNCTION sysrepl_stamp() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    origin_id text;
BEGIN
    -- TG_ARGV[0] names a generated column: it is still NULL in NEW here,
    -- so the comparison leaves it out.
    IF TG_OP = 'UPDATE' THEN
        IF TG_NARGS = 0 THEN
            IF NEW IS NOT DISTINCT FROM OLD THEN
                RETURN NULL;
            END IF;
        ELSIF to_jsonb(NEW) - TG_ARGV[0] = to_jsonb(OLD) - TG_ARGV[0] THEN
            RETURN NULL;
        END IF;
    END IF;
    -- The instance id is read once per transaction and cached in a
    -- transaction-local setting: one table read per row costs more than
    -- the rest of the trigger.
    origin_id := current_setting('sysrepl.origin_cache', true);
    IF origin_id IS NULL OR origin_id = '' THEN
        SELECT instance_id INTO origin_id FROM settings;
        IF origin_id IS NULL THEN
            RAISE EXCEPTION 'sysrepl store has no instance id (run sysrepl init)';
        END IF;
        PERFORM set_config('sysrepl.origin_cache', origin_id, true);
    END IF;
    NEW.origin := origin_id;
    NEW.version := nextval('sysrepl_version');
    NEW.changed_at := sysrepl_now_ms();
    RETURN NEW;
END $$;

-- AFTER INSERT / UPDATE / DELETE, per statement, over the transition
-- tables: one INSERT .. SELECT per statement instead of one per row.
-- A row whose key changed (an UPDATE of the name) gives a delete of the old
-- key as well as an upsert of the new one.
CREATE FUNCTION sysrepl_capture_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbox (version, kind, key, deleted)
    SELECT n.version, TG_ARGV[0]::smallint, n.key, false FROM sysrepl_new n;
    RETURN NULL;
END $$;

CREATE FUNCTION sysrepl_capture_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbox (version, kind, key, deleted)
    SELECT n.version, TG_ARGV[0]::smallint, n.key, false FROM sysrepl_new n;
    INSERT INTO outbox (version, kind, key, deleted)
    SELECT nextval('sysrepl_version'), TG_ARGV[0]::smallint, o.key, true
    FROM sysrepl_old o
    WHERE NOT EXISTS (SELECT 1 FROM sysrepl_new n WHERE n.key = o.key);
    RETURN NULL;
END $$;

CREATE FUNCTION sysrepl_capture_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbox (version, kind, key, deleted)
    SELECT nextval('sysrepl_version'), TG_ARGV[0]::smallint, o.key, true
    FROM sysrepl_old o;
    RETURN NULL;
END $$;

-- TRUNCATE would bypass capture; only the consumer (rebuilding a spoke)
-- may use it.
CREATE FUNCTION sysrepl_refuse_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT sysrepl_applying() THEN
        RAISE EXCEPTION 'TRUNCATE of % is not replicated; use DELETE', TG_TABLE_NAME;
    END IF;
    RETURN NULL;
END $$;

-- The key column of types and policies is "name"; a view-free way to give
-- the statement triggers one column name: they read "key" from the
-- transition tables, so types and policies get their own small functions.
CREATE FUNCTION sysrepl_capture_insert_by_name() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbox (version, kind, key, deleted)
    SELECT n.version, TG_ARGV[0]::smallint, n.name, false FROM sysrepl_new n;
    RETURN NULL;
END $$;

CREATE FUNCTION sysrepl_capture_update_by_name() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbox (version, kind, key, deleted)
    SELECT n.version, TG_ARGV[0]::smallint, n.name, false FROM sysrepl_new n;
    INSERT INTO outbox (version, kind, key, deleted)
    SELECT nextval('sysrepl_version'), TG_ARGV[0]::smallint, o.name, true
    FROM sysrepl_old o
    WHERE NOT EXISTS (SELECT 1 FROM sysrepl_new n WHERE n.name = o.name);
    RETURN NULL;
END $$;

CREATE FUNCTION sysrepl_capture_delete_by_name() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbox (version, kind, key, deleted)
    SELECT nextval('sysrepl_version'), TG_ARGV[0]::smallint, o.name, true
    FROM sysrepl_old o;
    RETURN NULL;
END $$;

-- Attach the triggers to each content table.
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT * FROM (VALUES ('assessment_types', 0, '_by_name', ''),
                                   ('vulnerability_assessments', 1, '', '''key'''),
                                   ('policies', 2, '_by_name', '')) AS v(tab, kind, sfx, gen)
    LOOP
        EXECUTE format('CREATE TRIGGER sysrepl_stamp BEFORE INSERT OR UPDATE ON %I
                        FOR EACH ROW WHEN (NOT sysrepl_stamped())
                        EXECUTE FUNCTION sysrepl_stamp(%s)', t.tab, t.gen);
        EXECUTE format('CREATE TRIGGER sysrepl_capture_insert AFTER INSERT ON %I
                        REFERENCING NEW TABLE AS sysrepl_new
                        FOR EACH STATEMENT WHEN (NOT sysrepl_applying())
                        EXECUTE FUNCTION sysrepl_capture_insert%s(%s)', t.tab, t.sfx, t.kind);
        EXECUTE format('CREATE TRIGGER sysrepl_capture_update AFTER UPDATE ON %I
                        REFERENCING OLD TABLE AS sysrepl_old NEW TABLE AS sysrepl_new
                        FOR EACH STATEMENT WHEN (NOT sysrepl_applying())
                        EXECUTE FUNCTION sysrepl_capture_update%s(%s)', t.tab, t.sfx, t.kind);
        EXECUTE format('CREATE TRIGGER sysrepl_capture_delete AFTER DELETE ON %I
                        REFERENCING OLD TABLE AS sysrepl_old
                        FOR EACH STATEMENT WHEN (NOT sysrepl_applying())
                        EXECUTE FUNCTION sysrepl_capture_delete%s(%s)', t.tab, t.sfx, t.kind);
        EXECUTE format('CREATE TRIGGER sysrepl_refuse_truncate BEFORE TRUNCATE ON %I
                        FOR EACH STATEMENT EXECUTE FUNCTION sysrepl_refuse_truncate()', t.tab);
    END LOOP;
END $$;

-- ---------------------------------------------------------------------------
-- Replication bookkeeping

-- Spoke: the next offset to read per topic partition, committed in the same
-- transaction as the rows it produced. caught_up_at: when the consumer last
-- reached the partition's end (status shows the lag behind it).
CREATE TABLE consumer_offsets (
    topic        text NOT NULL,
    partition    integer NOT NULL,
    next_offset  bigint NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    caught_up_at timestamptz,
    PRIMARY KEY (topic, partition)
);

-- Records that could not be applied, kept with the reason; never dropped.
CREATE TABLE dead_letters (
    id            bigserial PRIMARY KEY,
    topic         text NOT NULL,
    partition     integer NOT NULL,
    record_offset bigint NOT NULL,
    key           bytea,
    value         bytea,
    reason        text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dead_letters_created_at ON dead_letters (created_at);

-- One row per replication event worth showing in `sysrepl status` (a sync
-- finished, a replay, an error): level is a log.h level name, component
-- "producer" | "consumer" | "bridge"; counts e.g. {"applied": 10, "stale": 2}.
CREATE TABLE replication_log (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    level     text NOT NULL,
    component text NOT NULL,
    message   text NOT NULL,
    counts    jsonb
);
CREATE INDEX replication_log_at ON replication_log (at);

-- Hub: where the producer is, for status. One row, updated by the producer.
CREATE TABLE producer_state (
    only_row               boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    last_delivered_version bigint NOT NULL DEFAULT 0,
    delivered_at           timestamptz,
    rate                   double precision,  -- records/s over the last interval
    last_error             text,
    last_error_at          timestamptz,
    updated_at             timestamptz NOT NULL DEFAULT now()
);
INSERT INTO producer_state DEFAULT VALUES;

-- ==== schemas/sql/002_outbox_notify.sql
-- 002_outbox_notify.sql - wake the producer when changes are captured.
--
-- One notification per statement that adds outbox rows (not per row): the
-- producer drains the outbox in batches anyway, and PostgreSQL folds equal
-- notifications of one transaction into one. The payload is empty; the
-- producer reads the outbox itself and still polls
-- (producer.poll_interval_ms) in case a notification was missed while it
-- was disconnected.
CREATE FUNCTION sysrepl_outbox_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('sysrepl_outbox', '');
    RETURN NULL;
END $$;

CREATE TRIGGER sysrepl_outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION sysrepl_outbox_notify();

-- ==== schemas/sql/003_consumer_lag.sql
-- 003_consumer_lag.sql - what `sysrepl status` needs to show a spoke's lag.
--
-- The consumer writes these with every offset it commits (same
-- transaction): the partition's high watermark as last seen from the
-- broker, and how far behind the newest record it applied was, in seconds
-- (0 when caught up). Lag in records is high_watermark - next_offset.
ALTER TABLE consumer_offsets
    ADD COLUMN high_watermark bigint,
    ADD COLUMN lag_seconds double precision;

-- ==== schemas/sql/004_assessments_fillfactor.sql
-- 004_assessments_fillfactor.sql - room on every page of
-- vulnerability_assessments for the replacements a spoke applies.
--
-- The consumer replaces rows in place (INSERT .. ON CONFLICT DO UPDATE):
-- a new version of each row, usually with the same key, type, scope and
-- expiry. With full pages (the default fillfactor 100, and a first sync
-- COPYs full pages) that new version lands on another page, and every one
-- of the table's four indexes gets a new entry for it. With 15% of each
-- page kept free the new version mostly stays on its page as a HOT update:
-- no index entry at all, far fewer pages dirtied and written to the WAL.
-- Measured on the bench (bench/README.md, bench_consumer steady state).
--
-- Only pages written from now on keep the room: a spoke's next rebuild
-- (first sync, --replay) writes every row anew, with the room; an existing
-- store can also be rewritten off-line with VACUUM FULL
-- vulnerability_assessments.
-- The hub's table gets the same setting; it costs 15% more pages there.
ALTER TABLE vulnerability_assessments SET (fillfactor = 85);

INSERT INTO schema_version (version) VALUES (4);
