/*
 * apply.h - private to sysrepl-consumer: apply a batch of upserts and
 * tombstones to the store, version-guarded, in one transaction together
 * with the offsets that produced it and the batch's dead letters.
 *
 * The rule: an upsert or a tombstone whose version is higher than what the
 * store holds for its key (the row's version, or the tombstones table's)
 * wins; anything else is a no-op, so duplicates and replays are harmless.
 * A row that carries this spoke's own instance id as origin (a local edit)
 * always loses to the hub's record.
 *
 * How: within the batch only the highest version per key is kept; the
 * winners are streamed with COPY into temporary staging tables, then a few
 * set-based statements per kind (deletes first, then upserts, types before
 * assessments) apply them against the content and tombstones tables, the
 * offsets are upserted, and the transaction commits.
 *
 * Side by side (srl_apply_set_sessions): a large batch's assessments are
 * split by key hash over several sessions, each applying its share in its
 * own transaction (one thread each), and the offsets, dead letters and
 * log lines follow in one more transaction once every share committed. A
 * failure in between leaves the offsets behind rows already applied: the
 * batch is read again, and the version rule makes what was applied a
 * no-op, so the effect is still exactly once. Every statement runs
 * with `SET LOCAL sysrepl.applying = 'on'`, so the capture triggers keep
 * the record's origin/version/changed_at and write no outbox row.
 */
#ifndef SRL_CONSUMER_APPLY_H
#define SRL_CONSUMER_APPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "sysrepl/model.h"
#include "sysrepl/store.h"

#include "deadletter.h"
#include "offsets.h"
#include "sysrepl/rows.h"

/* What a commit did, per kind. */
typedef struct srl_apply_stats {
    int64_t records;                  /* upserts + tombstones added */
    int64_t upserted[SRL_KIND_COUNT]; /* rows inserted or replaced */
    int64_t deleted[SRL_KIND_COUNT];  /* rows removed by tombstones */
    int64_t stale;                    /* records that changed nothing */
    int sessions;                     /* sessions the batch was applied on */
} srl_apply_stats_t;

typedef struct srl_apply srl_apply_t;

/* local_origin: this spoke's instance id (its local edits lose). */
srl_apply_t *srl_apply_new(const char *local_origin);
void srl_apply_free(srl_apply_t *a); /* NULL accepted */

#define SRL_APPLY_MAX_SESSIONS 8

/* Apply large batches on `sessions` database sessions (the caller's and
 * sessions - 1 more, opened on dsn when first needed), when each share
 * would hold at least split_min records; 1: always one transaction.
 * False on out of memory. */
/* Durable commits (the default, on): every apply transaction waits for its
 * WAL to reach disk, so a crash of the spoke's PostgreSQL never takes back
 * a version a reader has seen. off: SET LOCAL synchronous_commit = off,
 * faster, and a server crash may roll back the last ~600 ms of applies
 * (re-read from the topics afterwards; readers may see versions go back). */
void srl_apply_set_synchronous_commit(srl_apply_t *a, bool on);

bool srl_apply_set_sessions(srl_apply_t *a, const char *dsn, size_t sessions, size_t split_min);
/* Close the extra sessions (they reopen when needed): after the store was
 * away. */
void srl_apply_drop_sessions(srl_apply_t *a);

/* Forget the items added so far. */
void srl_apply_reset(srl_apply_t *a);
size_t srl_apply_count(const srl_apply_t *a);

/* Add an upsert of e (key: its record key). The entity is formatted at
 * once; the caller keeps e. False on out of memory or an unformattable
 * entity (errstr). */
bool srl_apply_add_upsert(srl_apply_t *a, const srl_entity_t *e, const char *key, char *errstr,
                          size_t errstr_size);
/* Add a delete of (kind, key) at version. origin may be NULL. */
bool srl_apply_add_tombstone(srl_apply_t *a, srl_kind_t kind, const char *key, int64_t version,
                             const char *origin, int64_t changed_at);

/* Apply the items, write dl (may be NULL) and the offsets, run extra_sql
 * (may be NULL: statements ending in ';', e.g. replication_log inserts),
 * and commit, all in one transaction on conn. On failure the transaction
 * is rolled back and nothing is applied; the items stay for a retry.
 * lag_columns: consumer_offsets has high_watermark and lag_seconds.
 * conn must have been through srl_apply_prepare (once per session). */
srl_store_rc_t srl_apply_commit(srl_apply_t *a, PGconn *conn, const srl_offset_update_t *offs,
                                size_t noffs, bool lag_columns, srl_deadletters_t *dl,
                                const char *extra_sql, srl_apply_stats_t *stats, char *errstr,
                                size_t errstr_size);

/* ---- shared with rebuild.c ---- */

/* Create the staging tables on conn if this session lacks them
 * (temporary, ON COMMIT DELETE ROWS). */
srl_store_rc_t srl_apply_prepare(PGconn *conn, char *errstr, size_t errstr_size);

/* Staging table of a kind's upserts, and of tombstones (all kinds), with
 * the COPY statements that fill them. */
const char *srl_apply_stage_copy_sql(srl_kind_t kind);
extern const char srl_apply_tomb_copy_sql[];

/* Append a tombstone as a COPY row of the tombstone staging table. */
bool srl_apply_tomb_row(srl_buf_t *b, srl_kind_t kind, const char *key, int64_t version,
                        const char *origin, int64_t changed_at);

/* Append the statements that apply the staged rows of kind to sql
 * (deletes, then upserts; each ends in ';'). local_origin_literal: the
 * instance id as an SQL literal (PQescapeLiteral). */
bool srl_apply_kind_sql(srl_buf_t *sql, srl_kind_t kind, bool upserts, bool tombstones,
                        const char *local_origin_literal);
/* The same rule in fewer statements and index probes, for staging tables
 * that hold at most one record per (kind, key) and no key in both (what
 * srl_apply_commit stages): the tombstone statement (a WITH .. SELECT
 * whose one row is the number of rows deleted), then a MERGE of the
 * upserts (command tag: rows inserted or replaced). */
bool srl_apply_kind_sql_unique(srl_buf_t *sql, srl_kind_t kind, bool upserts, bool tombstones,
                               const char *local_origin_literal);

#endif
