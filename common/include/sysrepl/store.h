/*
 * store.h - the sysrepl store: a PostgreSQL database holding the content of
 * one instance (hub or spoke) and the bookkeeping of its replication.
 *
 * The tables (schemas/sql/NNN_*.sql are the authority; 005 moved sysrepl's
 * own objects into the schema `sysrepl`, the content tables stay in the
 * store's first schema, normally public; docs/store.md says why):
 *
 *   sysrepl.*        schema_version, settings, sysrepl_version, outbox,
 *                    tombstones, consumer_offsets, dead_letters,
 *                    replication_log, producer_state and the functions the
 *                    content tables' defaults and triggers call.
 *
 *   schema_version   one row: the number of the last applied migration.
 *                    Migrations (schemas/sql/NNN_*.sql) are compiled into
 *                    every binary; `sysrepl init` applies the missing ones,
 *                    one transaction each. Every program calls
 *                    srl_store_check_version() at start and refuses a store
 *                    at another version.
 *   settings         one row: instance_id, role ('hub' | 'spoke').
 *
 *   assessment_types           key: name (unique case-insensitively)
 *   vulnerability_assessments  key: column "key", generated from the fields
 *                              exactly as keys.h builds it
 *                              ("CVE-2021-44228|global", "PGV-1|feed:nuget")
 *   policies                   key: name
 *       Every field of model.h; enums as their lowercase symbols; times that
 *       replicate (expires_at, assessed_at, changed_at) as bigint ms since
 *       the epoch; a policy's nested rule sets as jsonb. Every row has
 *       origin text, version bigint, changed_at bigint (ms).
 *
 *   sysrepl_version  the one store-wide sequence; every captured change
 *                    takes nextval, so versions are unique across kinds.
 *
 *   Capture (triggers on the three content tables, hub and spoke alike):
 *     BEFORE INSERT/UPDATE per row: origin := settings.instance_id,
 *       version := nextval, changed_at := now (ms). An UPDATE that changes
 *       nothing is skipped (no version, no outbox row).
 *     AFTER INSERT/UPDATE/DELETE per statement (transition tables): one
 *       outbox row per changed row, in the writer's transaction. An upsert
 *       carries the row's new version; a delete takes a fresh nextval; an
 *       UPDATE that renames a key also emits a delete of the old key.
 *     All of this is skipped while `sysrepl.applying` is 'on' (the
 *       consumer's `SET LOCAL sysrepl.applying = on`): applied rows keep the
 *       record's origin/version/changed_at and write no outbox row.
 *     TRUNCATE of a content table is refused unless applying.
 *     Versions are unique and grow per entity (CACHE 1, taken under the row
 *     lock), but transactions commit out of version order: a producer must
 *     drain the outbox table, not "everything above the last version seen".
 *
 *   outbox(version PK, kind smallint = srl_kind_t, key, deleted, created_at)
 *                    the hub's changes waiting for the producer, which
 *                    deletes rows once Kafka acknowledged them. On a spoke,
 *                    rows here are local edits (status warns: the next sync
 *                    overwrites them); local edits carry the spoke's own
 *                    instance id as origin, so the consumer can tell them
 *                    from replicated rows and let the hub's record win.
 *   tombstones(kind, key PK, version, origin, changed_at, deleted_at)
 *                    deletes applied on a spoke with their version, so a
 *                    stale upsert arriving after a delete loses. Written
 *                    and purged by the consumer only.
 *   consumer_offsets(topic, partition PK, next_offset, updated_at,
 *                    caught_up_at)  committed with the rows they produced.
 *   dead_letters(id, topic, partition, record_offset, key bytea, value bytea,
 *                    reason, created_at)
 *   replication_log(id, at, level, component, message, counts jsonb)
 *                    rows older than log.retention are deleted
 *                    (srl_store_purge_replication_log).
 *   producer_state   one row: last_delivered_version, delivered_at, rate,
 *                    last_error, last_error_at, updated_at.
 *
 * Errors: every function returns srl_store_rc_t and writes a message naming
 * what failed into errstr (caller-owned). PostgreSQL errors are classified
 * once, by SQLSTATE, in srl_store_sqlstate_is_retriable().
 *
 * Threads: one srl_store_t per thread.
 */
#ifndef SRL_STORE_H
#define SRL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <libpq-fe.h>

#include "sysrepl/model.h"

typedef enum srl_store_rc {
    SRL_STORE_OK = 0,
    SRL_STORE_DONE,        /* a cursor has no more rows (not an error) */
    SRL_STORE_NOT_FOUND,   /* no entity with that key */
    SRL_STORE_INVALID,     /* the content was refused; errstr names the field */
    SRL_STORE_UNREACHABLE, /* cannot connect / connection lost (retriable) */
    SRL_STORE_RETRY,       /* transient server error: serialization, deadlock,
                            * shutdown, out of resources (retriable) */
    SRL_STORE_VERSION,     /* schema missing, older or newer than this build */
    SRL_STORE_FATAL        /* anything else: a bug, permissions, disk */
} srl_store_rc_t;

/* Short name of a result ("unreachable", ...), for logs. */
const char *srl_store_rc_name(srl_store_rc_t rc);

/* Whether a SQLSTATE is worth retrying: classes 08 (connection), 53
 * (insufficient resources), 57P (operator intervention: shutdown), and
 * 40001 (serialization failure), 40P01 (deadlock). NULL (no SQLSTATE:
 * the connection broke) is retriable. */
bool srl_store_sqlstate_is_retriable(const char *sqlstate);

/* The result class of a failed PGresult (or NULL result) on conn:
 * UNREACHABLE when the connection is bad, RETRY for a retriable SQLSTATE,
 * INVALID for data errors raised by the store's constraints (class 22, 23),
 * else FATAL. Writes "<what>: <server message>" into errstr. */
srl_store_rc_t srl_store_classify(PGconn *conn, const PGresult *res, const char *what, char *errstr,
                                  size_t errstr_size);

/* Run sql on conn (one or more statements; rows, if any, are dropped).
 * On failure, the class as srl_store_classify, errstr naming what (NULL:
 * the sql itself). */
srl_store_rc_t srl_store_exec(PGconn *conn, const char *sql, const char *what, char *errstr,
                              size_t errstr_size);

/* Run sql (a "COPY <table> (...) FROM STDIN") on conn and send data[0..len)
 * as its rows, in slices; end the COPY and read its result. On failure the
 * class as srl_store_classify, errstr naming "COPY <table>". */
srl_store_rc_t srl_store_copy_in(PGconn *conn, const char *sql, const char *data, size_t len,
                                 char *errstr, size_t errstr_size);

typedef struct srl_store srl_store_t;

/* Connect to dsn (a libpq conninfo or URI). On failure returns NULL, *rc
 * UNREACHABLE (server down, refused, timeout) or FATAL (bad DSN,
 * authentication, missing database) and errstr names host and port:
 *   cannot connect to PostgreSQL at 127.0.0.1:55432: Connection refused
 * The session's search_path gets the schema sysrepl in front of what the
 * DSN, role or database set, so sysrepl's tables resolve unqualified
 * (docs/store.md, "Sessions"); application_name: see
 * srl_store_set_application_name.
 * Does not check the schema version (see srl_store_check_version). */
srl_store_t *srl_store_connect(const char *dsn, srl_store_rc_t *rc, char *errstr,
                               size_t errstr_size);
void srl_store_close(srl_store_t *st); /* NULL accepted */

/* Name this process's sessions in pg_stat_activity: application_name
 * "<program>/<instance_id>" ("<program>" when instance_id is NULL or
 * empty), e.g. "sysrepl-consumer/spoke-1". Applies to every later
 * srl_store_connect of the process; a DSN that sets application_name (or
 * PGAPPNAME) wins. Until it is called: the executable's name. Call it at
 * start, before threads connect (not thread-safe). */
void srl_store_set_application_name(const char *program, const char *instance_id);

/* The connection, for modules that run their own SQL (producer, consumer).
 * Owned by st. Leave it idle (no open transaction) when you are done. */
PGconn *srl_store_conn(srl_store_t *st);
/* "host:port" of the connection, for messages. Owned by st. */
const char *srl_store_where(const srl_store_t *st);

/* ---- schema ---- */

/* The schema version this build expects: the number of embedded migrations. */
int srl_store_expected_version(void);

/* The store's schema version; 0 for a database without sysrepl tables. */
srl_store_rc_t srl_store_schema_version(srl_store_t *st, int *version, char *errstr,
                                        size_t errstr_size);

/* OK iff the store is at srl_store_expected_version(); else VERSION with
 *   store has no sysrepl schema (run sysrepl init)
 *   store is at schema version 1, this build expects 2 (run sysrepl init)
 *   store is at schema version 3, this build expects 1 (upgrade sysrepl) */
srl_store_rc_t srl_store_check_version(srl_store_t *st, char *errstr, size_t errstr_size);

/* Apply the missing migrations in order, one transaction each, under an
 * advisory lock (two concurrent inits are safe). *applied (may be NULL)
 * receives how many ran; 0 when the store was current. A newer store is
 * refused like srl_store_check_version. */
srl_store_rc_t srl_store_migrate(srl_store_t *st, int *applied, char *errstr, size_t errstr_size);

/* ---- settings ---- */

typedef struct srl_store_settings {
    char instance_id[128]; /* "" when the store was never initialised */
    char role[8];          /* "hub" | "spoke" | "" */
} srl_store_settings_t;

srl_store_rc_t srl_store_get_settings(srl_store_t *st, srl_store_settings_t *out, char *errstr,
                                      size_t errstr_size);
/* Set instance id and role (role "hub" or "spoke"). */
srl_store_rc_t srl_store_set_settings(srl_store_t *st, const char *instance_id, const char *role,
                                      char *errstr, size_t errstr_size);

/* ---- content ---- */

/* assessed_at of an assessment written without one: the store keeps the
 * stored value, or takes the current time for a new assessment, so writing
 * the same content twice changes nothing. */
#define SRL_STORE_ASSESSED_AT_KEEP INT64_MIN

/* Insert or replace the entity with e's key. The store stamps origin,
 * version and changed_at (e->...meta is ignored). An assessment naming a
 * type the store does not have is INVALID ("assessment_type: no assessment
 * type named \"X\""). *changed (may be NULL) is false when the stored
 * entity was already identical (nothing captured). Own transaction. */
srl_store_rc_t srl_store_put(srl_store_t *st, const srl_entity_t *e, bool *changed, char *errstr,
                             size_t errstr_size);

/* Read one entity by key into *out (cleared first; the caller clears it
 * after use). Assessment type names match case-insensitively. */
srl_store_rc_t srl_store_get(srl_store_t *st, srl_kind_t kind, const char *key, srl_entity_t *out,
                             char *errstr, size_t errstr_size);

/* Delete one entity by key; NOT_FOUND when there is none. */
srl_store_rc_t srl_store_delete(srl_store_t *st, srl_kind_t kind, const char *key, char *errstr,
                                size_t errstr_size);

/* Filters of a listing; zero-initialise for "everything". type and scope
 * apply to assessments only: type matches case-insensitively; scope is
 * "global" or "<kind>:<name>" as in the key. */
typedef struct srl_store_filter {
    const char *type;
    const char *scope;
    bool expired;   /* only assessments whose expires_at <= now_ms */
    int64_t now_ms; /* 0: the current time */
    long limit;     /* 0: no limit */
    bool any_order; /* skip the ORDER BY key (export: faster, physical order) */
} srl_store_filter_t;

/* A streaming cursor over one kind, in key order. Rows come from the
 * server in batches, so memory stays bounded whatever the table size.
 * While a cursor is open the connection belongs to it. */
typedef struct srl_store_cursor srl_store_cursor_t;

srl_store_cursor_t *srl_store_cursor_new(srl_store_t *st, srl_kind_t kind,
                                         const srl_store_filter_t *filter, srl_store_rc_t *rc,
                                         char *errstr, size_t errstr_size);
/* Next entity into *out (cleared first): OK, DONE at the end, or an error. */
srl_store_rc_t srl_store_cursor_next(srl_store_cursor_t *cur, srl_entity_t *out, char *errstr,
                                     size_t errstr_size);
/* The same without copying: *view is owned by the cursor and valid until
 * the next call or close (an export formats it and moves on). */
srl_store_rc_t srl_store_cursor_next_view(srl_store_cursor_t *cur, const srl_entity_t **view,
                                          char *errstr, size_t errstr_size);
void srl_store_cursor_free(srl_store_cursor_t *cur); /* NULL accepted */

/* Row counts per kind (indexed by srl_kind_t). */
srl_store_rc_t srl_store_count(srl_store_t *st, int64_t counts[SRL_KIND_COUNT], char *errstr,
                               size_t errstr_size);

/* ---- import ---- */

/* A bulk import in one transaction (store_import.c tells how). The
 * assessments table is locked against other writers until it ends
 * (readers go on). Assessments stream to the server as they are added
 * (COPY; memory stays bounded), types and policies are kept in memory
 * (they are few) and upserted at finish, which then checks that every
 * type an assessment names exists and commits. Every write is captured
 * into the outbox. The same key twice: the last line wins and each earlier
 * line is reported (srl_store_import_stats_t.duplicates). */
typedef struct srl_store_import srl_store_import_t;

typedef struct srl_store_import_stats {
    int64_t read[SRL_KIND_COUNT];    /* entities added */
    int64_t changed[SRL_KIND_COUNT]; /* rows written (inserted or changed; a key
                                      * given twice may be written twice) */
    int64_t duplicates;              /* lines superseded by a later line */
} srl_store_import_stats_t;

/* Called for each superseded line (key, its line, the line that won). */
typedef void (*srl_store_duplicate_cb)(void *arg, srl_kind_t kind, const char *key, long line,
                                       long winning_line);

srl_store_import_t *srl_store_import_begin(srl_store_t *st, srl_store_rc_t *rc, char *errstr,
                                           size_t errstr_size);
/* Add one entity read at line (for messages). The entity is copied as
 * needed; the caller keeps ownership of e. */
srl_store_rc_t srl_store_import_add(srl_store_import_t *imp, const srl_entity_t *e, long line,
                                    char *errstr, size_t errstr_size);
/* Validate, write, commit, free imp. INVALID names the line and field:
 *   line 17: assessment_type: no assessment type named "Blockd" */
srl_store_rc_t srl_store_import_finish(srl_store_import_t *imp, srl_store_duplicate_cb on_duplicate,
                                       void *arg, srl_store_import_stats_t *stats, char *errstr,
                                       size_t errstr_size);
/* Roll back and free; NULL accepted. */
void srl_store_import_abort(srl_store_import_t *imp);

/* ---- JSON lines: the form of `sysrepl export` and `import` ---- */

/* The JSON form of e (json.h), compact, as malloc'd NUL-terminated text
 * (*len, may be NULL, gets its length). Assessments are formatted
 * directly (an export writes millions), byte for byte as json.c would. */
char *srl_store_entity_json(const srl_entity_t *e, size_t *len, char *errstr, size_t errstr_size);

/* Write e as one line: {"kind":"<srl_kind_name>","value":{...}}\n.
 * Write errors show on the stream (ferror). */
bool srl_store_jsonl_write(FILE *out, const srl_entity_t *e, char *errstr, size_t errstr_size);

/* ---- validation (no store access) ---- */

/* What a person may write: srl_entity_validate() (json.h: form, ids,
 * colors, enum ranges) and, for an assessment, an expiry not already past
 * (now_ms; a policy exception's too). false with errstr naming the field.
 * Replicated records are not held to the expiry rule (they may expire in
 * transit). */
bool srl_store_validate(const srl_entity_t *e, int64_t now_ms, char *errstr, size_t errstr_size);

/* ---- status ---- */

typedef struct srl_store_status {
    int schema_version;
    srl_store_settings_t settings;
    int64_t counts[SRL_KIND_COUNT];
    int64_t outbox_depth;
    int64_t outbox_oldest_age_ms; /* -1 when empty */
    /* WAL capture: the store's replication slot ("" when none) */
    char capture_slot[64];
    bool capture_slot_active;
    char capture_wal_status[16]; /* reserved, extended, unreserved, lost */
    int64_t capture_lag_bytes;   /* WAL not confirmed by the producer; -1: no slot */
    int64_t last_version;        /* sysrepl_version's last value, 0 if none */
    /* producer (hub) */
    int64_t producer_last_delivered_version;
    int64_t producer_delivered_at_ms; /* 0: never */
    double producer_rate;
    char producer_last_error[256];
    /* last replication_log row (at_ms 0: none) */
    int64_t last_log_at_ms;
    char last_log_level[16];
    char last_log_component[32];
    char last_log_message[256];
    /* consumer (spoke) */
    int64_t consumer_partitions;
    int64_t consumer_oldest_caught_up_ms; /* min caught_up_at; 0: never caught up */
    /* dead letters */
    int64_t dead_letters;
    int64_t newest_dead_letter_at_ms;
    char newest_dead_letter_reason[256];
    /* consumer lag (migration 003): records behind the high watermarks,
     * and the largest lag in seconds the consumer reported */
    int64_t consumer_lag_records;
    double consumer_lag_seconds;
} srl_store_status_t;

srl_store_rc_t srl_store_get_status(srl_store_t *st, srl_store_status_t *out, char *errstr,
                                    size_t errstr_size);

/* ---- retention ---- */

/* Delete replication_log rows older than retention_ms (log.retention),
 * oldest first, at most max_rows in this call, in DELETEs of a few
 * thousand rows, each its own transaction (call it with no transaction
 * open). *deleted (may be NULL) gets the count; equal to max_rows: there
 * may be more, call again later. retention_ms <= 0 deletes nothing.
 * Cheap when there is nothing to delete: one probe of the index on at. */
srl_store_rc_t srl_store_purge_replication_log(srl_store_t *st, int64_t retention_ms,
                                               int64_t max_rows, int64_t *deleted, char *errstr,
                                               size_t errstr_size);

/* First statement of every transaction that applies replicated records
 * (after `SET LOCAL sysrepl.applying = 'on'`): a transactional logical
 * message the producer's WAL capture sees first in the transaction and
 * skips the transaction for, so rows a consumer applies are not captured
 * (the outbox triggers skip them by the setting). One small WAL record. */
#define SRL_STORE_APPLYING_MARK \
    " SELECT pg_catalog.pg_logical_emit_message(true, 'sysrepl.applying', '');"

/* ---- WAL capture (store_wal.c; docs/producer.md, "Capture") ---- */

/* Whether the server can decode its WAL (wal_level = logical). */
srl_store_rc_t srl_store_wal_available(PGconn *conn, bool *available, char *errstr,
                                       size_t errstr_size);

/* Back to outbox capture (a store that becomes a spoke: local edits are
 * counted from the outbox): the outbox triggers enabled, the WAL ones
 * disabled, the slot dropped (*dropped: there was one). Changes the slot
 * held and no producer delivered are not published. */
srl_store_rc_t srl_store_wal_disengage(PGconn *conn, bool *dropped, char *errstr,
                                       size_t errstr_size);

srl_store_rc_t srl_store_wal_engage(PGconn *conn, char *slot, size_t slot_size, bool *created,
                                    bool *lost, char *errstr, size_t errstr_size);

/* ---- digest and pause (store_digest.c; docs/store.md, "Digest") ---- */

/* A kind's content as kept by the store, without a table scan: rows, an
 * order-independent digest of its (key, version) pairs, and its position
 * (the newest hub version the content reflects). Kept in the transaction
 * of every change (hub writes, spoke applies and rebuilds, local edits). */
typedef struct srl_store_digest {
    int64_t rows;
    uint64_t digest;
    int64_t position;
} srl_store_digest_t;

srl_store_rc_t srl_store_digests(srl_store_t *st, srl_store_digest_t out[SRL_KIND_COUNT],
                                 char *errstr, size_t errstr_size);
/* The same recomputed from the tables (a scan: `sysrepl verify`). */
srl_store_rc_t srl_store_digests_recompute(srl_store_t *st, srl_store_digest_t out[SRL_KIND_COUNT],
                                           char *errstr, size_t errstr_size);

/* A spoke's pause flag (`sysrepl pause` / `resume`), obeyed by its consumer
 * within one batch. */
srl_store_rc_t srl_store_get_paused(srl_store_t *st, bool *paused, char *errstr,
                                    size_t errstr_size);
srl_store_rc_t srl_store_set_paused(srl_store_t *st, bool paused, char *errstr, size_t errstr_size);

#endif
