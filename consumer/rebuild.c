/*
 * rebuild.c - first sync and replay: the store becomes an exact mirror of
 * the topics, atomically (see rebuild.h for the plan and its guarantees).
 */
#include "rebuild.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sysrepl/clock.h"
#include "sysrepl/log.h"
#include "sysrepl/rules.h"

#include "apply.h"
#include "deadletter.h"
#include "decode.h"
#include "offsets.h"
#include "sysrepl/rows.h"

#define WATERMARK_TIMEOUT_MS 10000

#define COPY_FLUSH_BYTES (1u << 20)

/* A set of 32-bit key hashes (a hash of 0 is stored as 1: 0 marks an empty
 * slot), open addressing, at most 3/4 full: 4 bytes a slot keeps a million
 * keys in 8 MB. A collision (about a hundred among a million keys) only
 * sends a record down the guarded path, which is always correct. */
typedef struct hashset {
    uint32_t *slots;
    size_t n, used;
} hashset_t;

static bool hashset_init(hashset_t *s, size_t expected)
{
    size_t n = 1024;
    while (n < expected + expected / 3)
        n *= 2;
    s->slots = calloc(n, sizeof(*s->slots));
    s->n = n;
    s->used = 0;
    return s->slots != NULL;
}

static bool hashset_grow(hashset_t *s)
{
    hashset_t bigger;
    if (!hashset_init(&bigger, s->n * 2))
        return false;
    for (size_t i = 0; i < s->n; i++) {
        uint32_t h = s->slots[i];
        if (!h)
            continue;
        size_t j = (size_t)h & (bigger.n - 1);
        while (bigger.slots[j])
            j = (j + 1) & (bigger.n - 1);
        bigger.slots[j] = h;
        bigger.used++;
    }
    free(s->slots);
    *s = bigger;
    return true;
}

/* Insert h; *seen tells whether it was there. False on out of memory. */
static bool hashset_add(hashset_t *s, uint64_t h64, bool *seen)
{
    uint32_t h = (uint32_t)(h64 ^ (h64 >> 32));
    if (!h)
        h = 1;
    if ((s->used + 1) * 4 > s->n * 3 && !hashset_grow(s))
        return false;
    size_t j = (size_t)h & (s->n - 1);
    while (s->slots[j]) {
        if (s->slots[j] == h) {
            *seen = true;
            return true;
        }
        j = (j + 1) & (s->n - 1);
    }
    s->slots[j] = h;
    s->used++;
    *seen = false;
    return true;
}

static uint64_t hash64(const char *s)
{
    /* FNV-1a, then a final mix so the low bits spread. */
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

static srl_rebuild_rc_t store_fail(PGconn *conn, PGresult *res, const char *what, char *errstr,
                                   size_t errstr_size)
{
    srl_store_rc_t rc = srl_store_classify(conn, res, what, errstr, errstr_size);
    return rc == SRL_STORE_UNREACHABLE || rc == SRL_STORE_RETRY ? SRL_REBUILD_STORE_RETRY
                                                                : SRL_REBUILD_FATAL;
}

static srl_rebuild_rc_t from_store_rc(srl_store_rc_t rc)
{
    return rc == SRL_STORE_OK                                     ? SRL_REBUILD_OK
           : rc == SRL_STORE_UNREACHABLE || rc == SRL_STORE_RETRY ? SRL_REBUILD_STORE_RETRY
                                                                  : SRL_REBUILD_FATAL;
}

static srl_rebuild_rc_t exec_ok(PGconn *conn, const char *sql, const char *what, char *errstr,
                                size_t errstr_size)
{
    return from_store_rc(srl_store_exec(conn, sql, what, errstr, errstr_size));
}

/* COPY the contents of a temporary file into a staging table. */
static srl_rebuild_rc_t copy_file(PGconn *conn, const char *sql, FILE *f, char *errstr,
                                  size_t errstr_size)
{
    char chunk[65536];
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        srl_rebuild_rc_t rc = store_fail(conn, res, sql, errstr, errstr_size);
        PQclear(res);
        return rc;
    }
    PQclear(res);
    rewind(f);
    size_t got;
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (PQputCopyData(conn, chunk, (int)got) != 1)
            break;
    PQputCopyEnd(conn, ferror(f) ? "reading the rebuild's temporary file failed" : NULL);
    srl_rebuild_rc_t rc = SRL_REBUILD_OK;
    while ((res = PQgetResult(conn)) != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK && rc == SRL_REBUILD_OK)
            rc = store_fail(conn, res, sql, errstr, errstr_size);
        PQclear(res);
    }
    return rc;
}

/* Where one partition's read stands. */
typedef struct part {
    int64_t high; /* watermark at the start: read up to here */
    int64_t next; /* next offset to read */
} part_t;

/* Rebuild one kind inside the open transaction. */
static srl_rebuild_rc_t rebuild_kind(srl_source_t *src, PGconn *conn, srl_registry_t *reg,
                                     srl_schemas_loader_t *loader, const srl_rebuild_topic_t *t,
                                     part_t *parts, const char *local_literal, size_t batch_size,
                                     volatile sig_atomic_t *stop, srl_deadletters_t *dl,
                                     srl_rebuild_stats_t *st, char *errstr, size_t errstr_size)
{
    srl_rebuild_rc_t rc = SRL_REBUILD_OK;
    srl_source_pos_t *pos = calloc((size_t)t->partitions, sizeof(*pos));
    int *pidx = calloc((size_t)t->partitions, sizeof(*pidx));
    srl_source_batch_t batch = {0};
    srl_buf_t rows = {0}, side = {0};
    FILE *div_ups = tmpfile(), *div_tombs = tmpfile();
    hashset_t seen = {0};
    bool copying = false, any_ups = false, any_tombs = false;
    char sql[512], key[SRL_KEY_MAX + 1], reason[1024];
    /* Types are few, and their names are unique case-insensitively: they
     * all take the guarded path. The bulk kinds are copied straight in. */
    bool direct = t->kind != SRL_KIND_ASSESSMENT_TYPE;
    int64_t expected = 0;

    if (!pos || !pidx || !div_ups || !div_tombs) {
        snprintf(errstr, errstr_size, "out of memory or no temporary file");
        rc = SRL_REBUILD_FATAL;
        goto cleanup;
    }
    size_t npos = 0;
    for (int p = 0; p < t->partitions; p++) {
        expected += parts[p].high - parts[p].next;
        if (parts[p].next < parts[p].high) {
            pos[npos] = (srl_source_pos_t){t->topic, t->kind, p, parts[p].next};
            pidx[npos++] = p;
        }
    }
    if (!hashset_init(&seen, direct ? (size_t)(expected > 0 ? expected : 1) : 1)) {
        snprintf(errstr, errstr_size, "out of memory");
        rc = SRL_REBUILD_FATAL;
        goto cleanup;
    }

    snprintf(sql, sizeof(sql), "DELETE FROM %s; DELETE FROM sysrepl.tombstones WHERE kind = %d",
             srl_kind_table(t->kind), (int)t->kind);
    if ((rc = exec_ok(conn, sql, "emptying the content table", errstr, errstr_size)))
        goto cleanup;
    if (direct) {
        snprintf(sql, sizeof(sql), "COPY %s (%s) FROM STDIN", srl_kind_table(t->kind),
                 srl_rows_columns(t->kind));
        PGresult *res = PQexec(conn, sql);
        if (PQresultStatus(res) != PGRES_COPY_IN) {
            rc = store_fail(conn, res, sql, errstr, errstr_size);
            PQclear(res);
            goto cleanup;
        }
        PQclear(res);
        copying = true;
    }

    while (npos > 0) {
        if (*stop) {
            rc = SRL_REBUILD_STOPPED;
            goto cleanup;
        }
        int64_t t0 = srl_clock_mono_ms();
        srl_source_rc_t src_rc = src->ops->fetch(src, pos, npos, batch_size, 500, &batch, errstr,
                                                 errstr_size);
        st->fetch_ms += srl_clock_mono_ms() - t0;
        if (src_rc != SRL_SOURCE_OK) {
            rc = src_rc == SRL_SOURCE_RETRY ? SRL_REBUILD_SOURCE_RETRY : SRL_REBUILD_FATAL;
            goto cleanup;
        }
        for (size_t i = 0; i < batch.count; i++) {
            const srl_record_t *r = &batch.records[i];
            srl_entity_t e;
            st->records++;
            for (size_t k = 0; k < npos; k++)
                if (pos[k].partition == r->partition && r->offset >= pos[k].offset)
                    pos[k].offset = r->offset + 1;
            srl_decoded_t d = srl_decode_record(reg, loader, r, &e, key, sizeof(key), reason,
                                                sizeof(reason));
            bool ok = true, seen_before = false;
            if (d == SRL_DECODED_DEAD) {
                ok = srl_deadletter_add(dl, t->topic, r, reason);
                st->dead_letters++;
            } else if (d == SRL_DECODED_TOMBSTONE) {
                st->tombstones++;
                side.len = 0;
                ok = (!direct || hashset_add(&seen, hash64(key), &seen_before)) &&
                     srl_apply_tomb_row(&side, t->kind, key, r->version, r->origin,
                                        r->timestamp_ms) &&
                     fwrite(side.data, 1, side.len, div_tombs) == side.len;
                any_tombs = true;
            } else {
                /* Format first: a record the store could not take (bad
                 * UTF-8) is dead-lettered, not streamed. */
                side.len = 0;
                if (!srl_rows_format(&side, &e, false, NULL, reason, sizeof(reason))) {
                    ok = srl_deadletter_add(dl, t->topic, r, reason);
                    st->dead_letters++;
                    srl_entity_clear(&e);
                    goto next;
                }
                ok = !direct || hashset_add(&seen, hash64(key), &seen_before);
                if (ok && direct && !seen_before) {
                    ok = srl_buf_add(&rows, side.data, side.len);
                } else if (ok) {
                    side.len = 0;
                    ok = srl_rows_format(&side, &e, t->kind == SRL_KIND_ASSESSMENT, key, reason,
                                         sizeof(reason)) &&
                         fwrite(side.data, 1, side.len, div_ups) == side.len;
                    any_ups = true;
                    st->diverted++;
                }
                srl_entity_clear(&e);
            }
        next:
            if (!ok) {
                snprintf(errstr, errstr_size, "%s [%d] offset %" PRId64 ": out of memory or disk",
                         t->topic, (int)r->partition, r->offset);
                rc = SRL_REBUILD_FATAL;
                goto cleanup;
            }
        }
        if (rows.len >= COPY_FLUSH_BYTES) {
            int64_t t1 = srl_clock_mono_ms();
            if (PQputCopyData(conn, rows.data, (int)rows.len) != 1) {
                rc = store_fail(conn, NULL, "streaming rows", errstr, errstr_size);
                goto cleanup;
            }
            st->store_ms += srl_clock_mono_ms() - t1;
            rows.len = 0;
        }
        /* A partition is done at the watermark of the start, or when the
         * read reached its end (the last records may be gone). */
        size_t keep = 0;
        for (size_t k = 0; k < npos; k++) {
            int p = pidx[k];
            parts[p].next = pos[k].offset;
            if (!(pos[k].offset >= parts[p].high || batch.eof[k])) {
                pos[keep] = pos[k];
                pidx[keep++] = p;
            }
        }
        npos = keep;
        src->ops->release(src, &batch);
    }
    if (copying) {
        if (rows.len && PQputCopyData(conn, rows.data, (int)rows.len) != 1) {
            rc = store_fail(conn, NULL, "streaming rows", errstr, errstr_size);
            goto cleanup;
        }
        copying = false;
        PQputCopyEnd(conn, NULL);
        PGresult *res;
        while ((res = PQgetResult(conn)) != NULL) {
            if (PQresultStatus(res) != PGRES_COMMAND_OK && rc == SRL_REBUILD_OK)
                rc = store_fail(conn, res, "copying rows", errstr, errstr_size);
            PQclear(res);
        }
        if (rc)
            goto cleanup;
    }
    /* The keys seen twice and the tombstones: through the guarded apply. */
    if (any_ups || any_tombs) {
        if (any_ups &&
            (fflush(div_ups) != 0 || (rc = copy_file(conn, srl_apply_stage_copy_sql(t->kind),
                                                     div_ups, errstr, errstr_size))))
            goto cleanup;
        if (any_tombs &&
            (fflush(div_tombs) != 0 ||
             (rc = copy_file(conn, srl_apply_tomb_copy_sql, div_tombs, errstr, errstr_size))))
            goto cleanup;
        srl_buf_t stmts = {0};
        if (!srl_apply_kind_sql(&stmts, t->kind, any_ups, any_tombs, local_literal) ||
            !srl_buf_add(&stmts, "", 1)) {
            srl_buf_free(&stmts);
            snprintf(errstr, errstr_size, "out of memory");
            rc = SRL_REBUILD_FATAL;
            goto cleanup;
        }
        rc = exec_ok(conn, stmts.data, "applying repeated keys and tombstones", errstr,
                     errstr_size);
        srl_buf_free(&stmts);
        if (rc)
            goto cleanup;
    }
cleanup:
    if (copying) {
        PQputCopyEnd(conn, "rebuild aborted");
        PGresult *res;
        while ((res = PQgetResult(conn)) != NULL)
            PQclear(res);
    }
    src->ops->release(src, &batch);
    srl_source_batch_free(&batch);
    srl_buf_free(&rows);
    srl_buf_free(&side);
    free(seen.slots);
    if (div_ups)
        fclose(div_ups);
    if (div_tombs)
        fclose(div_tombs);
    free(pos);
    free(pidx);
    return rc;
}

srl_rebuild_rc_t srl_rebuild(srl_source_t *src, PGconn *conn, srl_registry_t *reg,
                             srl_schemas_loader_t *loader, const srl_rebuild_topic_t *topics,
                             size_t n, const char *local_origin, bool lag_columns,
                             size_t batch_size, volatile sig_atomic_t *stop,
                             srl_rebuild_stats_t *stats, char *errstr, size_t errstr_size)
{
    srl_rebuild_rc_t rc = SRL_REBUILD_OK;
    part_t **parts = calloc(n ? n : 1, sizeof(*parts));
    srl_deadletters_t dl = {0};
    srl_rebuild_stats_t st = {0};
    char *local = NULL;
    bool in_tx = false;
    srl_buf_t sql = {0};

    if (!parts) {
        snprintf(errstr, errstr_size, "out of memory");
        rc = SRL_REBUILD_FATAL;
        goto cleanup;
    }
    /* The watermarks of the start: what the rebuild promises to include. */
    int64_t evidence_ms = srl_clock_wall_ms();
    for (size_t i = 0; i < n; i++) {
        parts[i] = calloc((size_t)topics[i].partitions, sizeof(part_t));
        if (!parts[i]) {
            snprintf(errstr, errstr_size, "out of memory");
            rc = SRL_REBUILD_FATAL;
            goto cleanup;
        }
        for (int p = 0; p < topics[i].partitions; p++) {
            int64_t low, high;
            srl_source_rc_t s = src->ops->watermarks(src, topics[i].topic, p, &low, &high,
                                                     WATERMARK_TIMEOUT_MS, errstr, errstr_size);
            if (s != SRL_SOURCE_OK) {
                rc = s == SRL_SOURCE_RETRY ? SRL_REBUILD_SOURCE_RETRY : SRL_REBUILD_FATAL;
                goto cleanup;
            }
            parts[i][p].high = high;
            parts[i][p].next = low;
        }
    }
    local = PQescapeLiteral(conn, local_origin, strlen(local_origin));
    if (!local) {
        rc = store_fail(conn, NULL, "escaping the instance id", errstr, errstr_size);
        goto cleanup;
    }
    if ((rc = exec_ok(conn, "BEGIN; SET LOCAL sysrepl.applying = 'on';" SRL_STORE_APPLYING_MARK,
                      "BEGIN", errstr, errstr_size)))
        goto cleanup;
    in_tx = true;
    for (size_t i = 0; i < n; i++) {
        rc = rebuild_kind(src, conn, reg, loader, &topics[i], parts[i], local, batch_size, stop,
                          &dl, &st, errstr, errstr_size);
        if (rc)
            goto cleanup;
    }
    if ((rc = from_store_rc(srl_deadletter_write(&dl, conn, errstr, errstr_size))))
        goto cleanup;

    /* The offsets: where each read ended (at least the start's watermark),
     * replacing whatever the store held for these topics. Caught up as of
     * the moment the watermarks were asked for (evidence, offsets.h). */
    bool ok = true;
    for (size_t i = 0; ok && i < n; i++) {
        ok = srl_offsets_forget_topic_sql(&sql, conn, topics[i].topic);
        for (int p = 0; ok && p < topics[i].partitions; p++) {
            part_t *pt = &parts[i][p];
            int64_t next = pt->next > pt->high ? pt->next : pt->high;
            srl_offset_update_t u = {topics[i].topic, p, next, evidence_ms, next, 0.0};
            ok = srl_offsets_upsert_sql(&sql, conn, &u, 1, lag_columns);
        }
    }
    ok = ok && srl_buf_add(&sql, "COMMIT", 7);
    if (!ok) {
        snprintf(errstr, errstr_size, "out of memory");
        rc = SRL_REBUILD_FATAL;
        goto cleanup;
    }
    if ((rc = exec_ok(conn, sql.data, "committing the rebuild", errstr, errstr_size)))
        goto cleanup;
    in_tx = false;
    for (size_t i = 0; i < n; i++) {
        char q[256];
        snprintf(q, sizeof(q), "SELECT count(*) FROM %s", srl_kind_table(topics[i].kind));
        PGresult *res = PQexec(conn, q);
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
            st.rows += strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
    }
cleanup:
    if (in_tx && PQstatus(conn) == CONNECTION_OK) {
        PGresult *res = PQexec(conn, "ROLLBACK");
        PQclear(res);
    }
    if (parts) {
        for (size_t i = 0; i < n; i++)
            free(parts[i]);
        free(parts);
    }
    if (local)
        PQfreemem(local);
    srl_buf_free(&sql);
    srl_deadletter_free(&dl);
    if (stats)
        *stats = st;
    return rc;
}
