/*
 * outbox.c - drain the outbox (see outbox.h).
 *
 * One statement reads a batch: the outbox rows above a version, in version
 * order, each LEFT JOINed to the content row of its key, so the batch is
 * one consistent snapshot of outbox and content. Rules per row:
 *   - kind not replicated here: deleted with the batch, not published;
 *   - upsert whose content row is gone or has a higher version: superseded
 *     (the later outbox row publishes the key), deleted with the batch;
 *   - delete whose key exists again: superseded likewise;
 *   - otherwise published: the content row's current values and version,
 *     or a tombstone carrying the outbox row's version.
 * Publishing the current content under the current version is what makes a
 * re-read after a failure or a crash safe: per key, nothing older than what
 * the topic already holds is ever appended after it.
 */
#include "outbox.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sysrepl/rows.h"
#include "sysrepl/clock.h"
#include "sysrepl/log.h"

/* Columns of the batch query: 4 outbox columns, then each kind's content
 * columns (sysrepl/rows.h) in srl_kind_t order. */
#define COL_VERSION 0
#define COL_KIND 1
#define COL_KEY 2
#define COL_DELETED 3
#define COL_TYPE 4
#define COL_ASSESSMENT (COL_TYPE + SRL_ROWS_TYPE_NCOLS)
#define COL_POLICY (COL_ASSESSMENT + SRL_ROWS_ASSESSMENT_NCOLS)

/* LATERAL ... LIMIT 1 keeps each join an index lookup per outbox row: as
 * plain LEFT JOINs the planner hashes the whole content table per batch.
 * WHERE is the outbox range: above a version (the next batch) or below one
 * (rows that committed late, under the batches in flight). */
#define FETCH_SQL(where)                                                                                                 \
    "WITH b AS (SELECT version, kind, key, deleted FROM sysrepl.outbox WHERE " where                                     \
    "           ORDER BY version LIMIT $2)"                                                                              \
    " SELECT b.version, b.kind, b.key, b.deleted, " SRL_ROWS_TYPE_COLS("t") ", " SRL_ROWS_ASSESSMENT_COLS(               \
        "a") ", " SRL_ROWS_POLICY_COLS("p") " FROM b"                                                                    \
                                            " LEFT JOIN LATERAL (SELECT * FROM assessment_types x"                       \
                                            "                    WHERE b.kind = 0 AND x.name = b.key LIMIT 1) t ON true" \
                                            " LEFT JOIN LATERAL (SELECT * FROM vulnerability_assessments x"              \
                                            "                    WHERE b.kind = 1 AND x.key = b.key LIMIT 1) a ON true"  \
                                            " LEFT JOIN LATERAL (SELECT * FROM policies x"                               \
                                            "                    WHERE b.kind = 2 AND x.name = b.key LIMIT 1) p ON true" \
                                            " ORDER BY b.version"

static const char fetch_above_sql[] = FETCH_SQL("version > $1");
static const char fetch_below_sql[] = FETCH_SQL("version < $1");

static const int kind_col0[SRL_KIND_COUNT] = {COL_TYPE, COL_ASSESSMENT, COL_POLICY};

void srl_outbox_batch_clear(srl_outbox_batch_t *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->sink.count; i++) {
        free((void *)b->sink.records[i].key);
        free((void *)b->sink.records[i].value);
    }
    free(b->sink.records);
    free(b->versions);
    memset(b, 0, sizeof(*b));
}

bool srl_outbox_batch_add(srl_outbox_batch_t *b, srl_kind_t kind, const char *key, uint8_t *value,
                          size_t value_len, int64_t version, const char *origin)
{
    size_t n = b->sink.count;
    if (n == b->capacity) {
        size_t cap = n ? n * 2 : 64;
        srl_record_t *r = realloc(b->sink.records, cap * sizeof(*r));
        if (!r) {
            free(value);
            return false;
        }
        b->sink.records = r;
        b->capacity = cap;
    }
    char *k = strdup(key);
    if (!k) {
        free(value);
        return false;
    }
    b->sink.records[n] = (srl_record_t){
        .kind = kind,
        .partition = -1,
        .offset = -1,
        .key = k,
        .key_len = strlen(k),
        .value = value,
        .value_len = value ? value_len : 0,
        .version = version,
        .origin = origin,
    };
    b->sink.count = n + 1;
    if (!value)
        b->tombstones++;
    if (version > b->max_published)
        b->max_published = version;
    return true;
}

static bool parse_int64(const char *s, int64_t *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end)
        return false;
    *out = v;
    return true;
}

srl_store_rc_t srl_outbox_read_send(PGconn *conn, int64_t after, int64_t below, int limit,
                                    char *errstr, size_t errstr_size)
{
    char bound_s[32], limit_s[32];
    const char *params[2] = {bound_s, limit_s};
    snprintf(bound_s, sizeof(bound_s), "%" PRId64, below > 0 ? below : after);
    snprintf(limit_s, sizeof(limit_s), "%d", limit);
    if (!PQsendQueryParams(conn, below > 0 ? fetch_below_sql : fetch_above_sql, 2, NULL, params,
                           NULL, NULL, 0))
        return srl_store_classify(conn, NULL, "reading the outbox", errstr, errstr_size);
    return SRL_STORE_OK;
}

srl_store_rc_t srl_outbox_read_take(PGconn *conn, bool wait, PGresult **res_out, char *errstr,
                                    size_t errstr_size)
{
    srl_store_rc_t rc = SRL_STORE_OK;
    PGresult *res, *tuples = NULL;
    *res_out = NULL;
    if (!PQconsumeInput(conn))
        return srl_store_classify(conn, NULL, "reading the outbox", errstr, errstr_size);
    if (!wait && PQisBusy(conn))
        return SRL_STORE_OK;
    while ((res = PQgetResult(conn)) != NULL) {
        if (PQresultStatus(res) == PGRES_TUPLES_OK && !tuples && rc == SRL_STORE_OK) {
            tuples = res;
            continue;
        }
        if (rc == SRL_STORE_OK)
            rc = srl_store_classify(conn, res, "reading the outbox", errstr, errstr_size);
        PQclear(res);
    }
    if (rc != SRL_STORE_OK) {
        PQclear(tuples);
        return rc;
    }
    if (!tuples) {
        snprintf(errstr, errstr_size, "reading the outbox: no result");
        return SRL_STORE_FATAL;
    }
    *res_out = tuples;
    return SRL_STORE_OK;
}

void srl_outbox_result_range(const PGresult *res, int64_t *min_version, int64_t *max_version)
{
    int n = PQntuples(res);
    *min_version = *max_version = 0;
    if (n > 0) {
        parse_int64(PQgetvalue(res, 0, COL_VERSION), min_version);
        parse_int64(PQgetvalue(res, n - 1, COL_VERSION), max_version);
    }
}

/* Row i of an outbox result into b: published (a record), superseded or
 * not replicated (only its version kept, for the DELETE), or left in the
 * outbox when the codec refuses it (errstr says why, rc stays OK).
 * FATAL on a malformed row or out of memory. */
static srl_store_rc_t add_row(PGresult *res, int i, srl_registry_t *reg, unsigned kind_mask,
                              const char *origin, srl_outbox_batch_t *b, int64_t *encode_us,
                              char *errstr, size_t errstr_size)
{
    int64_t version, kind_i;
    if (!parse_int64(PQgetvalue(res, i, COL_VERSION), &version) ||
        !parse_int64(PQgetvalue(res, i, COL_KIND), &kind_i) || kind_i < 0 ||
        kind_i >= SRL_KIND_COUNT) {
        snprintf(errstr, errstr_size, "outbox row %d: bad version or kind", i);
        return SRL_STORE_FATAL;
    }
    srl_kind_t kind = (srl_kind_t)kind_i;
    const char *key = PQgetvalue(res, i, COL_KEY);
    bool deleted = PQgetvalue(res, i, COL_DELETED)[0] == 't';
    int col0 = kind_col0[kind];
    bool present = srl_rows_present(res, i, col0);
    if (version > b->max_version)
        b->max_version = version;
    if (b->min_version == 0 || version < b->min_version)
        b->min_version = version;

    int64_t row_version = 0;
    if (present && !deleted)
        parse_int64(PQgetvalue(res, i, col0), &row_version);
    if (!(kind_mask & (1u << kind))) {
        b->not_replicated++;
    } else if (deleted && present) {
        b->superseded++; /* the key exists again */
    } else if (deleted) {
        if (!srl_outbox_batch_add(b, kind, key, NULL, 0, version, origin))
            goto oom;
    } else if (!present || row_version > version) {
        b->superseded++; /* a later outbox row publishes the key */
    } else {
        int64_t te = srl_clock_mono_us();
        srl_entity_t e;
        uint8_t *value = NULL;
        size_t value_len = 0;
        char why[256];
        bool ok = srl_rows_parse(res, i, col0, kind, &e, why, sizeof(why)) &&
                  srl_codec_encode(reg, &e, &value, &value_len, why, sizeof(why));
        srl_entity_clear(&e);
        *encode_us += srl_clock_mono_us() - te;
        if (!ok) {
            /* Left in the outbox: dropping it would lose the change
             * silently; the log and producer_state say why. */
            b->unpublishable++;
            srl_log(SRL_LOG_ERROR, "producer", "outbox row cannot be published",
                    "kind=%s key=%s version=%" PRId64 " reason=%s", srl_kind_name(kind),
                    srl_log_q(key), version, srl_log_q(why));
            snprintf(errstr, errstr_size, "%s %s version %" PRId64 ": %s", srl_kind_name(kind), key,
                     version, why);
            return SRL_STORE_OK;
        }
        if (!srl_outbox_batch_add(b, kind, key, value, value_len, row_version, origin))
            goto oom;
    }
    b->versions[b->version_count++] = version;
    return SRL_STORE_OK;
oom:
    snprintf(errstr, errstr_size, "out of memory building a batch");
    return SRL_STORE_FATAL;
}

srl_store_rc_t srl_outbox_batch_build(PGresult *res, srl_registry_t *reg, unsigned kind_mask,
                                      const char *origin, srl_outbox_batch_t *b,
                                      srl_outbox_timing_t *timing, char *errstr, size_t errstr_size)
{
    srl_store_rc_t rc = SRL_STORE_OK;
    int64_t t0 = srl_clock_mono_us(), encode_us = 0;

    memset(b, 0, sizeof(*b));
    int nrows = PQntuples(res);
    b->rows = (size_t)nrows;
    b->versions = malloc((nrows ? (size_t)nrows : 1) * sizeof(int64_t));
    if (!b->versions) {
        snprintf(errstr, errstr_size, "out of memory reading the outbox");
        rc = SRL_STORE_FATAL;
        goto cleanup;
    }
    for (int i = 0; i < nrows && rc == SRL_STORE_OK; i++)
        rc = add_row(res, i, reg, kind_mask, origin, b, &encode_us, errstr, errstr_size);
cleanup:
    PQclear(res);
    if (rc != SRL_STORE_OK)
        srl_outbox_batch_clear(b);
    if (timing) {
        timing->encode_us += encode_us;
        timing->read_us += srl_clock_mono_us() - t0 - encode_us;
    }
    return rc;
}

/* "{v1,v2,...}" of versions; malloc'd, NULL when out of memory. */
static char *version_array(const int64_t *versions, size_t n)
{
    size_t cap = n * 21 + 3, len = 0; /* at most 20 digits and a comma each */
    char *arr = malloc(cap);
    if (!arr)
        return NULL;
    arr[len++] = '{';
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(arr + len, cap - len, "%s%" PRId64, i ? "," : "", versions[i]);
    arr[len++] = '}';
    arr[len] = '\0';
    return arr;
}

static const char delete_sql[] = "DELETE FROM sysrepl.outbox WHERE version = ANY($1::bigint[])";

srl_store_rc_t srl_outbox_delete_send(PGconn *conn, const int64_t *versions, size_t n, char *errstr,
                                      size_t errstr_size)
{
    char *arr = version_array(versions, n);
    if (!arr) {
        snprintf(errstr, errstr_size, "out of memory deleting outbox rows");
        return SRL_STORE_FATAL;
    }
    const char *params[1] = {arr};
    int sent = PQsendQueryParams(conn, delete_sql, 1, NULL, params, NULL, NULL, 0);
    free(arr);
    if (!sent)
        return srl_store_classify(conn, NULL, "deleting delivered outbox rows", errstr,
                                  errstr_size);
    return SRL_STORE_OK;
}

srl_store_rc_t srl_outbox_delete_poll(PGconn *conn, bool *done, char *errstr, size_t errstr_size)
{
    srl_store_rc_t rc = SRL_STORE_OK;
    *done = false;
    if (!PQconsumeInput(conn)) {
        *done = true;
        return srl_store_classify(conn, NULL, "deleting delivered outbox rows", errstr,
                                  errstr_size);
    }
    if (PQisBusy(conn))
        return SRL_STORE_OK;
    PGresult *res;
    while ((res = PQgetResult(conn)) != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK && rc == SRL_STORE_OK)
            rc = srl_store_classify(conn, res, "deleting delivered outbox rows", errstr,
                                    errstr_size);
        PQclear(res);
    }
    *done = true;
    return rc;
}
