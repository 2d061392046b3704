/*
 * apply.c - one batch of records into the store, version-guarded, in one
 * transaction with its offsets (see apply.h for the rule and the plan).
 */
#include "apply.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sysrepl/log.h"

/* One upsert or tombstone of the batch. Strings live in a->text. */
typedef struct item {
    srl_kind_t kind;
    bool deleted;
    bool superseded; /* a higher version of the same key is in the batch */
    uint8_t lane;    /* the session that applies it (split batches) */
    uint64_t hash;   /* of (kind, key) */
    int64_t version;
    size_t key_off;          /* NUL-terminated key in a->text */
    size_t row_off, row_len; /* COPY row in a->text */
} item_t;

/* One database session applying its share of a batch. Lane 0 uses the
 * caller's connection; the others own theirs. */
typedef struct lane {
    srl_apply_t *a;
    int index;
    srl_store_t *st; /* lanes >= 1: own session (NULL until needed) */
    PGconn *conn;    /* the session this commit runs on */
    srl_buf_t copy;  /* scratch: the COPY data of one staging table */
    srl_buf_t sql;   /* scratch: the statements */
    srl_apply_stats_t stats;
    srl_store_rc_t rc;
    char err[512];
    pthread_t thread;
    bool running; /* thread started for this commit */
} lane_t;

struct srl_apply {
    char *local_origin;
    item_t *items;
    size_t count, cap;
    srl_buf_t text; /* keys and rows */
    /* open-addressing index of (kind, key) -> item + 1; 0 = empty */
    size_t *slots;
    size_t nslots;
    char *dsn;     /* for the extra sessions */
    size_t nlanes; /* 1: no split */
    size_t split_min;
    bool synchronous_commit; /* false: SET LOCAL synchronous_commit = off */
    lane_t lanes[SRL_APPLY_MAX_SESSIONS];
};

srl_apply_t *srl_apply_new(const char *local_origin)
{
    srl_apply_t *a = calloc(1, sizeof(*a));
    if (!a || !(a->local_origin = strdup(local_origin ? local_origin : ""))) {
        free(a);
        return NULL;
    }
    a->nlanes = 1;
    a->synchronous_commit = true;
    for (int i = 0; i < SRL_APPLY_MAX_SESSIONS; i++) {
        a->lanes[i].a = a;
        a->lanes[i].index = i;
    }
    return a;
}

void srl_apply_set_synchronous_commit(srl_apply_t *a, bool on)
{
    a->synchronous_commit = on;
}

bool srl_apply_set_sessions(srl_apply_t *a, const char *dsn, size_t sessions, size_t split_min)
{
    srl_apply_drop_sessions(a);
    free(a->dsn);
    a->dsn = NULL;
    a->nlanes = 1;
    a->split_min = split_min ? split_min : 1;
    if (sessions <= 1 || !dsn)
        return true;
    if (!(a->dsn = strdup(dsn)))
        return false;
    a->nlanes = sessions > SRL_APPLY_MAX_SESSIONS ? SRL_APPLY_MAX_SESSIONS : sessions;
    return true;
}

void srl_apply_drop_sessions(srl_apply_t *a)
{
    for (int i = 1; i < SRL_APPLY_MAX_SESSIONS; i++) {
        srl_store_close(a->lanes[i].st);
        a->lanes[i].st = NULL;
    }
}

void srl_apply_free(srl_apply_t *a)
{
    if (!a)
        return;
    srl_apply_drop_sessions(a);
    free(a->dsn);
    free(a->local_origin);
    free(a->items);
    free(a->slots);
    srl_buf_free(&a->text);
    for (int i = 0; i < SRL_APPLY_MAX_SESSIONS; i++) {
        srl_buf_free(&a->lanes[i].copy);
        srl_buf_free(&a->lanes[i].sql);
    }
    free(a);
}

void srl_apply_reset(srl_apply_t *a)
{
    a->count = 0;
    a->text.len = 0;
    if (a->slots)
        memset(a->slots, 0, a->nslots * sizeof(*a->slots));
}

size_t srl_apply_count(const srl_apply_t *a)
{
    return a->count;
}

static uint64_t key_hash(srl_kind_t kind, const char *key)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)kind;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h;
}

/* Rebuild the index at twice the size. */
static bool grow_index(srl_apply_t *a)
{
    size_t n = a->nslots ? a->nslots * 2 : 1024;
    size_t *s = calloc(n, sizeof(*s));
    if (!s)
        return false;
    for (size_t i = 0; i < a->count; i++) {
        item_t *it = &a->items[i];
        if (it->superseded)
            continue;
        size_t j = it->hash & (n - 1);
        while (s[j])
            j = (j + 1) & (n - 1);
        s[j] = i + 1;
    }
    free(a->slots);
    a->slots = s;
    a->nslots = n;
    return true;
}

/* Append an item; keep only the highest version per (kind, key) live. */
static bool add_item(srl_apply_t *a, srl_kind_t kind, bool deleted, int64_t version,
                     const char *key, size_t row_off, size_t row_len)
{
    if (a->count == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 1024;
        item_t *it = realloc(a->items, cap * sizeof(*it));
        if (!it)
            return false;
        a->items = it;
        a->cap = cap;
    }
    if ((a->count + 1) * 2 > a->nslots && !grow_index(a))
        return false;
    size_t key_off = a->text.len;
    if (!srl_buf_add(&a->text, key, strlen(key) + 1))
        return false;
    item_t *it = &a->items[a->count];
    uint64_t h = key_hash(kind, key);
    *it = (item_t){kind, deleted, false, 0, h, version, key_off, row_off, row_len};
    size_t j = h & (a->nslots - 1);
    while (a->slots[j]) {
        item_t *old = &a->items[a->slots[j] - 1];
        if (old->kind == kind && strcmp(a->text.data + old->key_off, key) == 0) {
            if (old->version >= version) {
                it->superseded = true; /* the batch already has a newer one */
            } else {
                old->superseded = true;
                a->slots[j] = a->count + 1;
            }
            a->count++;
            return true;
        }
        j = (j + 1) & (a->nslots - 1);
    }
    a->slots[j] = a->count + 1;
    a->count++;
    return true;
}

bool srl_apply_add_upsert(srl_apply_t *a, const srl_entity_t *e, const char *key, char *errstr,
                          size_t errstr_size)
{
    size_t row_off = a->text.len;
    if (!srl_rows_format(&a->text, e, e->kind == SRL_KIND_ASSESSMENT, key, errstr, errstr_size))
        return false;
    const srl_meta_t *m = e->kind == SRL_KIND_ASSESSMENT_TYPE ? &e->u.type.meta
                          : e->kind == SRL_KIND_ASSESSMENT    ? &e->u.assessment.meta
                                                              : &e->u.policy.meta;
    if (!add_item(a, e->kind, false, m->version, key, row_off, a->text.len - row_off)) {
        snprintf(errstr, errstr_size, "out of memory");
        return false;
    }
    return true;
}

bool srl_apply_tomb_row(srl_buf_t *b, srl_kind_t kind, const char *key, int64_t version,
                        const char *origin, int64_t changed_at)
{
    char num[32];
    int n = snprintf(num, sizeof(num), "%d", (int)kind);
    bool ok = srl_copy_field(b, num, (size_t)n, '\t') && srl_copy_field(b, key, strlen(key), '\t');
    n = snprintf(num, sizeof(num), "%" PRId64, version);
    ok = ok && srl_copy_field(b, num, (size_t)n, '\t') &&
         srl_copy_field(b, origin ? origin : "", origin ? strlen(origin) : 0, '\t');
    n = snprintf(num, sizeof(num), "%" PRId64, changed_at);
    return ok && srl_copy_field(b, num, (size_t)n, '\n');
}

bool srl_apply_add_tombstone(srl_apply_t *a, srl_kind_t kind, const char *key, int64_t version,
                             const char *origin, int64_t changed_at)
{
    size_t row_off = a->text.len;
    if (!srl_apply_tomb_row(&a->text, kind, key, version, origin, changed_at))
        return false;
    return add_item(a, kind, true, version, key, row_off, a->text.len - row_off);
}

/* ---- SQL ---- */

static const char *const stage_table[SRL_KIND_COUNT] = {"srl_stage_types", "srl_stage_assessments",
                                                        "srl_stage_policies"};

const char *srl_apply_stage_copy_sql(srl_kind_t kind)
{
    switch (kind) {
    case SRL_KIND_ASSESSMENT_TYPE:
        return "COPY srl_stage_types (name, description, color, severity_class, "
               "emitted_severity, auto_rule, cvss_min, cvss_max, pvrs_categories, "
               "default_expiry_days, inactive, built_in, origin, version, changed_at) FROM STDIN";
    case SRL_KIND_ASSESSMENT:
        return "COPY srl_stage_assessments (key, vulnerability_id, assessment_type, comment, "
               "scope_kind, scope_name, package_name, package_version_range, expires_at, "
               "automatic, assessed_by, assessed_at, origin, version, changed_at) FROM STDIN";
    case SRL_KIND_POLICY:
        return "COPY srl_stage_policies (name, description, feeds, unassessed, "
               "by_assessment_type, license_undetected, license_other, by_license, deprecated, "
               "unlisted, exceptions, risk_profile, origin, version, changed_at) FROM STDIN";
    default:
        return NULL;
    }
}

const char srl_apply_tomb_copy_sql[] =
    "COPY srl_stage_tombstones (kind, key, version, origin, changed_at) FROM STDIN";

srl_store_rc_t srl_apply_prepare(PGconn *conn, char *errstr, size_t errstr_size)
{
    /* LIKE copies columns and types but no constraints, defaults or
     * generation expressions: the staging copy of vulnerability_assessments
     * has "key" as a plain column, filled from the record key. */
    static const char sql[] =
        "SET client_min_messages = warning;"
        "CREATE TEMP TABLE IF NOT EXISTS srl_stage_types (LIKE assessment_types)"
        " ON COMMIT DELETE ROWS;"
        "CREATE TEMP TABLE IF NOT EXISTS srl_stage_assessments"
        " (LIKE vulnerability_assessments) ON COMMIT DELETE ROWS;"
        "CREATE TEMP TABLE IF NOT EXISTS srl_stage_policies (LIKE policies)"
        " ON COMMIT DELETE ROWS;"
        "CREATE TEMP TABLE IF NOT EXISTS srl_stage_tombstones (kind smallint, key text,"
        " version bigint, origin text, changed_at bigint) ON COMMIT DELETE ROWS;"
        "RESET client_min_messages;";
    return srl_store_exec(conn, sql, "creating the staging tables", errstr, errstr_size);
}

/* A list over every column of cols, each as "a = <src>.a" (assign) or
 * "<src>.a": src "EXCLUDED" for ON CONFLICT, "s" for the staged row. */
static bool col_list(srl_buf_t *sql, const char *cols, const char *src, bool assign)
{
    bool ok = true, first = true;
    const char *p = cols;
    while (ok && *p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *start = p;
        while (*p && *p != ',')
            p++;
        int n = (int)(p - start);
        if (n == 0)
            break;
        ok = assign
                 ? srl_buf_addf(sql, "%s%.*s = %s.%.*s", first ? "" : ", ", n, start, src, n, start)
                 : srl_buf_addf(sql, "%s%s.%.*s", first ? "" : ", ", src, n, start);
        first = false;
    }
    return ok;
}

bool srl_apply_kind_sql_unique(srl_buf_t *sql, srl_kind_t kind, bool upserts, bool tombstones,
                               const char *local)
{
    const char *table = srl_kind_table(kind);
    const char *kc = srl_kind_key_column(kind);
    const char *cols = srl_rows_columns(kind);
    const char *stage = stage_table[kind];
    bool ok = true;

    if (tombstones) {
        /* One statement: delete what each tombstone beats, and keep the
         * tombstone unless a row at least as new (not a local edit)
         * stays; both decided on the same snapshot, where a deleted row
         * needs no second look. Its one row is the number of rows
         * deleted. */
        ok = ok &&
             srl_buf_addf(
                 sql,
                 "WITH s AS MATERIALIZED (SELECT key, version, origin, changed_at"
                 " FROM srl_stage_tombstones WHERE kind = %d),"
                 " d AS (DELETE FROM %s c USING s WHERE c.%s = s.key"
                 " AND (c.version < s.version OR c.origin = %s) RETURNING c.%s AS key),"
                 " i AS (INSERT INTO sysrepl.tombstones (kind, key, version, origin, changed_at)"
                 " SELECT %d, s.key, s.version, s.origin, s.changed_at FROM s"
                 " WHERE s.key IN (SELECT key FROM d)"
                 " OR NOT EXISTS (SELECT 1 FROM %s c WHERE c.%s = s.key"
                 " AND c.version >= s.version AND c.origin <> %s)"
                 " ON CONFLICT (kind, key) DO UPDATE SET version = EXCLUDED.version,"
                 " origin = EXCLUDED.origin, changed_at = EXCLUDED.changed_at,"
                 " deleted_at = now() WHERE tombstones.version < EXCLUDED.version)"
                 " SELECT count(*) FROM d;",
                 (int)kind, table, kc, local, kc, (int)kind, table, kc, local);
    }
    if (upserts) {
        /* One probe of the tombstones per staged row (tk: the few keys
         * that have one; LATERAL .. LIMIT 1 keeps the staged rows the
         * driving side whatever the tombstones' statistics say), the
         * beaten tombstones deleted by their row id (only this consumer
         * writes them), then MERGE: no speculative insertion. Type names
         * are unique case-insensitively, so types match on lower(name)
         * and keep one record per case-folded name. */
        bool types = kind == SRL_KIND_ASSESSMENT_TYPE;
        ok = ok &&
             srl_buf_addf(sql,
                          "WITH tk AS MATERIALIZED (SELECT s.%s AS key, s.version AS sv,"
                          " t.version AS tv, t.ctid AS tid FROM %s s CROSS JOIN LATERAL"
                          " (SELECT t.version, t.ctid FROM sysrepl.tombstones t WHERE t.kind = %d"
                          " AND t.key = s.%s LIMIT 1) t),"
                          " d AS (DELETE FROM sysrepl.tombstones t"
                          " WHERE t.ctid = ANY (ARRAY(SELECT tid FROM tk WHERE tv < sv)))"
                          " MERGE INTO %s c USING (SELECT %s s.* FROM %s s"
                          " WHERE (s.%s, s.version) NOT IN (SELECT key, sv FROM tk WHERE tv >= sv)"
                          "%s) s ON %s",
                          kc, stage, (int)kind, kc, table,
                          types ? "DISTINCT ON (lower(s.name))" : "", stage, kc,
                          types ? " ORDER BY lower(s.name), s.version DESC" : "",
                          types                         ? "lower(c.name) = lower(s.name)"
                          : kind == SRL_KIND_ASSESSMENT ? "c.key = s.key"
                                                        : "c.name = s.name");
        ok = ok && srl_buf_addf(sql,
                                " WHEN MATCHED AND (c.version < s.version OR c.origin = %s)"
                                " THEN UPDATE SET ",
                                local);
        ok = ok && col_list(sql, cols, "s", true);
        ok = ok && srl_buf_addf(sql, " WHEN NOT MATCHED THEN INSERT (%s) VALUES (", cols);
        ok = ok && col_list(sql, cols, "s", false);
        ok = ok && srl_buf_addf(sql, ");");
    }
    return ok;
}

bool srl_apply_kind_sql(srl_buf_t *sql, srl_kind_t kind, bool upserts, bool tombstones,
                        const char *local)
{
    const char *table = srl_kind_table(kind);
    const char *kc = srl_kind_key_column(kind);
    const char *cols = srl_rows_columns(kind);
    const char *stage = stage_table[kind];
    bool ok = true;

    if (tombstones) {
        /* The newest tombstone per key removes an older row (or a local
         * edit); a tombstone is kept unless a row at least as new stays. */
        ok = ok && srl_buf_addf(sql,
                                "DELETE FROM %s c USING (SELECT key, max(version) AS version"
                                " FROM srl_stage_tombstones WHERE kind = %d GROUP BY key) s"
                                " WHERE c.%s = s.key AND (c.version < s.version OR c.origin = %s);",
                                table, (int)kind, kc, local);
        ok = ok &&
             srl_buf_addf(sql,
                          "INSERT INTO sysrepl.tombstones (kind, key, version, origin, changed_at)"
                          " SELECT DISTINCT ON (s.key) %d, s.key, s.version, s.origin, s.changed_at"
                          " FROM srl_stage_tombstones s WHERE s.kind = %d"
                          " AND NOT EXISTS (SELECT 1 FROM %s c WHERE c.%s = s.key)"
                          " ORDER BY s.key, s.version DESC"
                          " ON CONFLICT (kind, key) DO UPDATE SET version = EXCLUDED.version,"
                          " origin = EXCLUDED.origin, changed_at = EXCLUDED.changed_at,"
                          " deleted_at = now() WHERE tombstones.version < EXCLUDED.version;",
                          (int)kind, (int)kind, table, kc);
    }
    if (upserts) {
        /* Type names are unique case-insensitively: a record of another
         * spelling is the same type (the hub renames it the same way). */
        const char *dedup = kind == SRL_KIND_ASSESSMENT_TYPE ? "lower(s.name)" : NULL;
        const char *target = kind == SRL_KIND_ASSESSMENT_TYPE ? "((lower(name)))"
                             : kind == SRL_KIND_ASSESSMENT    ? "(key)"
                                                              : "(name)";
        char dedup_buf[32];
        if (!dedup) {
            snprintf(dedup_buf, sizeof(dedup_buf), "s.%s", kc);
            dedup = dedup_buf;
        }
        ok = ok &&
             srl_buf_addf(sql,
                          "INSERT INTO %s (%s) SELECT DISTINCT ON (%s) %s FROM %s s"
                          " WHERE NOT EXISTS (SELECT 1 FROM sysrepl.tombstones t WHERE t.kind = %d"
                          " AND t.key = s.%s AND t.version >= s.version)"
                          " ORDER BY %s, s.version DESC ON CONFLICT %s DO UPDATE SET ",
                          table, cols, dedup, cols, stage, (int)kind, kc, dedup, target);
        ok = ok && col_list(sql, cols, "EXCLUDED", true);
        ok = ok && srl_buf_addf(sql, " WHERE %s.version < EXCLUDED.version OR %s.origin = %s;",
                                table, table, local);
        ok = ok &&
             srl_buf_addf(
                 sql,
                 "DELETE FROM sysrepl.tombstones t USING %s s WHERE t.kind = %d AND t.key = s.%s"
                 " AND t.version < s.version;",
                 stage, (int)kind, kc);
    }
    return ok;
}

/* What each statement of the batch counts towards. */
typedef enum { COUNT_NONE, COUNT_DELETED, COUNT_UPSERTED } count_t;

/* Items of the commit: all of them, those of one lane, or none. */
#define ITEMS_ALL (-1)
#define ITEMS_NONE (-2)

/* One transaction on conn: stage the chosen items, apply them, write dl
 * and the offsets and extra_sql (each may be NULL/0), commit. Per-kind
 * counts go to *stats. On failure rolls back. */
static srl_store_rc_t apply_txn(lane_t *ln, PGconn *conn, int items,
                                const srl_offset_update_t *offs, size_t noffs, bool lag_columns,
                                srl_deadletters_t *dl, const char *extra_sql,
                                srl_apply_stats_t *stats, char *errstr, size_t errstr_size)
{
    srl_apply_t *a = ln->a;
    srl_store_rc_t rc;
    bool ups[SRL_KIND_COUNT] = {false}, tombs[SRL_KIND_COUNT] = {false};
    char *local = NULL;
    srl_apply_stats_t st = {0};

    rc =
        srl_store_exec(conn,
                       a->synchronous_commit
                           ? "BEGIN; SET LOCAL sysrepl.applying = 'on';" SRL_STORE_APPLYING_MARK
                             " SET LOCAL enable_hashjoin = off;"
                             " SET LOCAL enable_mergejoin = off; SET LOCAL enable_material = off"
                           : "BEGIN; SET LOCAL sysrepl.applying = 'on';" SRL_STORE_APPLYING_MARK
                             " SET LOCAL synchronous_commit = off; SET LOCAL enable_hashjoin = off;"
                             " SET LOCAL enable_mergejoin = off; SET LOCAL enable_material = off",
                       "BEGIN", errstr, errstr_size);
    if (rc != SRL_STORE_OK)
        goto fail;

    /* Stage the winners, one COPY per table that has any. */
    for (int k = 0; items != ITEMS_NONE && k <= SRL_KIND_COUNT; k++) {
        bool tomb_pass = k == SRL_KIND_COUNT;
        ln->copy.len = 0;
        for (size_t i = 0; i < a->count; i++) {
            const item_t *it = &a->items[i];
            if (it->superseded || it->deleted != tomb_pass || (!tomb_pass && (int)it->kind != k) ||
                (items >= 0 && it->lane != items))
                continue;
            if (!srl_buf_add(&ln->copy, a->text.data + it->row_off, it->row_len)) {
                snprintf(errstr, errstr_size, "out of memory");
                rc = SRL_STORE_FATAL;
                goto fail;
            }
            if (tomb_pass)
                tombs[it->kind] = true;
            else
                ups[k] = true;
        }
        if (ln->copy.len == 0)
            continue;
        rc = srl_store_copy_in(conn,
                               tomb_pass ? srl_apply_tomb_copy_sql
                                         : srl_apply_stage_copy_sql((srl_kind_t)k),
                               ln->copy.data, ln->copy.len, errstr, errstr_size);
        if (rc != SRL_STORE_OK)
            goto fail;
    }
    if (dl && (rc = srl_deadletter_write(dl, conn, errstr, errstr_size)) != SRL_STORE_OK)
        goto fail;

    /* One round trip for the statements and the commit. */
    local = PQescapeLiteral(conn, a->local_origin, strlen(a->local_origin));
    if (!local) {
        rc = srl_store_classify(conn, NULL, "escaping the instance id", errstr, errstr_size);
        goto fail;
    }
    count_t counts[64];
    srl_kind_t count_kind[64];
    size_t nstmt = 0;
    ln->sql.len = 0;
    bool ok = true;
    for (int k = 0; k < SRL_KIND_COUNT && ok; k++) {
        if (!ups[k] && !tombs[k])
            continue;
        ok = srl_apply_kind_sql_unique(&ln->sql, (srl_kind_t)k, ups[k], tombs[k], local);
        if (tombs[k])
            counts[nstmt] = COUNT_DELETED, count_kind[nstmt++] = (srl_kind_t)k;
        if (ups[k])
            counts[nstmt] = COUNT_UPSERTED, count_kind[nstmt++] = (srl_kind_t)k;
    }
    ok = ok && srl_offsets_upsert_sql(&ln->sql, conn, offs, noffs, lag_columns);
    if (ok && extra_sql)
        ok = srl_buf_add(&ln->sql, extra_sql, strlen(extra_sql));
    ok = ok && srl_buf_addf(&ln->sql, "COMMIT;");
    if (!ok) {
        snprintf(errstr, errstr_size, "out of memory building the apply statements");
        rc = SRL_STORE_FATAL;
        goto fail;
    }
    if (!PQsendQuery(conn, ln->sql.data)) {
        rc = srl_store_classify(conn, NULL, "sending the apply statements", errstr, errstr_size);
        goto fail;
    }
    PGresult *res;
    size_t n = 0;
    bool committed = false;
    while ((res = PQgetResult(conn)) != NULL) {
        ExecStatusType es = PQresultStatus(res);
        if (es == PGRES_TUPLES_OK && PQntuples(res) == 1 && n < nstmt) {
            /* the tombstone statement: the number of rows it deleted */
            if (counts[n] == COUNT_DELETED)
                st.deleted[count_kind[n]] += strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        } else if (es != PGRES_COMMAND_OK) {
            if (rc == SRL_STORE_OK) {
                rc = srl_store_classify(conn, res, "applying the batch", errstr, errstr_size);
                /* A unique violation here is a local write of the same
                 * key racing the MERGE (staged keys are distinct): the
                 * batch is retried, and then finds the row. */
                const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
                if (rc == SRL_STORE_INVALID && state && strcmp(state, "23505") == 0)
                    rc = SRL_STORE_RETRY;
            }
        } else {
            const char *status = PQcmdStatus(res);
            if (strcmp(status, "COMMIT") == 0)
                committed = true;
            else if (strcmp(status, "ROLLBACK") == 0 && rc == SRL_STORE_OK) {
                snprintf(errstr, errstr_size, "applying the batch: transaction rolled back");
                rc = SRL_STORE_RETRY;
            }
            if (n < nstmt && counts[n] == COUNT_UPSERTED)
                st.upserted[count_kind[n]] += strtoll(PQcmdTuples(res), NULL, 10);
        }
        n++;
        PQclear(res);
    }
    if (rc == SRL_STORE_OK && !committed) {
        rc = srl_store_classify(conn, NULL, "committing the batch", errstr, errstr_size);
        if (rc == SRL_STORE_OK)
            rc = SRL_STORE_RETRY;
    }
    if (rc != SRL_STORE_OK)
        goto fail;
    *stats = st;
    PQfreemem(local);
    return SRL_STORE_OK;
fail:
    if (local)
        PQfreemem(local);
    if (PQstatus(conn) == CONNECTION_OK) {
        PGresult *r = PQexec(conn, "ROLLBACK");
        PQclear(r);
    }
    return rc;
}

static void *lane_main(void *arg)
{
    lane_t *ln = arg;
    ln->rc = apply_txn(ln, ln->conn, ln->index, NULL, 0, false, NULL, NULL, &ln->stats, ln->err,
                       sizeof(ln->err));
    return NULL;
}

/* Connect lane i's session if it has none. */
static srl_store_rc_t lane_connect(lane_t *ln, char *errstr, size_t errstr_size)
{
    if (ln->st && PQstatus(srl_store_conn(ln->st)) == CONNECTION_OK)
        return SRL_STORE_OK;
    srl_store_close(ln->st);
    ln->st = NULL;
    char err[400];
    srl_store_rc_t rc;
    srl_store_t *st = srl_store_connect(ln->a->dsn, &rc, err, sizeof(err));
    if (st) {
        rc = srl_apply_prepare(srl_store_conn(st), err, sizeof(err));
        if (rc != SRL_STORE_OK) {
            srl_store_close(st);
            st = NULL;
        }
    }
    if (!st) {
        snprintf(errstr, errstr_size, "apply session %d: %s", ln->index + 1, err);
        return rc;
    }
    ln->st = st;
    return SRL_STORE_OK;
}

/* Worse results win when lanes disagree: a refused row (the caller
 * bisects) over a lost session over a retriable error. */
static int rc_rank(srl_store_rc_t rc)
{
    switch (rc) {
    case SRL_STORE_OK:
        return 0;
    case SRL_STORE_RETRY:
        return 1;
    case SRL_STORE_UNREACHABLE:
        return 2;
    case SRL_STORE_INVALID:
        return 3;
    default:
        return 4;
    }
}

srl_store_rc_t srl_apply_commit(srl_apply_t *a, PGconn *conn, const srl_offset_update_t *offs,
                                size_t noffs, bool lag_columns, srl_deadletters_t *dl,
                                const char *extra_sql, srl_apply_stats_t *stats, char *errstr,
                                size_t errstr_size)
{
    srl_apply_stats_t st = {0};
    srl_store_rc_t rc = SRL_STORE_OK;

    /* Split only the bulk kind, assessments, by key hash: every version of
     * a key lands on the same session, and types and policies (few, and
     * unique case-insensitively) stay on the first. */
    size_t per_lane[SRL_APPLY_MAX_SESSIONS] = {0};
    size_t nlanes = a->nlanes;
    if (nlanes > 1) {
        for (size_t i = 0; i < a->count; i++) {
            item_t *it = &a->items[i];
            it->lane = it->kind == SRL_KIND_ASSESSMENT ? (uint8_t)((it->hash >> 32) % nlanes) : 0;
            if (!it->superseded)
                per_lane[it->lane]++;
        }
        for (size_t l = 0; l < nlanes; l++)
            if (per_lane[l] < a->split_min)
                nlanes = 1;
    }
    if (nlanes <= 1) {
        rc = apply_txn(&a->lanes[0], conn, ITEMS_ALL, offs, noffs, lag_columns, dl, extra_sql, &st,
                       errstr, errstr_size);
    } else {
        /* Each session commits its share; the offsets follow in their own
         * transaction once all have. A failure in between leaves the
         * offsets behind the applied rows: the batch is read and applied
         * again, which the version rule makes a no-op for what was done. */
        for (size_t l = 1; l < nlanes && rc == SRL_STORE_OK; l++) {
            rc = lane_connect(&a->lanes[l], errstr, errstr_size);
            if (rc == SRL_STORE_OK)
                a->lanes[l].conn = srl_store_conn(a->lanes[l].st);
        }
        if (rc != SRL_STORE_OK)
            return rc;
        for (size_t l = 1; l < nlanes; l++) {
            lane_t *ln = &a->lanes[l];
            ln->rc = SRL_STORE_OK;
            ln->err[0] = '\0';
            memset(&ln->stats, 0, sizeof(ln->stats));
            /* no thread: this share is applied here, after the first */
            ln->running = pthread_create(&ln->thread, NULL, lane_main, ln) == 0;
        }
        lane_t *l0 = &a->lanes[0];
        l0->rc = apply_txn(l0, conn, 0, NULL, 0, false, NULL, NULL, &l0->stats, l0->err,
                           sizeof(l0->err));
        for (size_t l = 1; l < nlanes; l++) {
            lane_t *ln = &a->lanes[l];
            if (ln->running)
                pthread_join(ln->thread, NULL);
            else
                lane_main(ln);
            ln->running = false;
        }
        int worst = 0;
        for (size_t l = 0; l < nlanes; l++) {
            lane_t *ln = &a->lanes[l];
            for (int k = 0; k < SRL_KIND_COUNT; k++) {
                st.upserted[k] += ln->stats.upserted[k];
                st.deleted[k] += ln->stats.deleted[k];
            }
            if (rc_rank(ln->rc) > worst) {
                worst = rc_rank(ln->rc);
                rc = ln->rc;
                if (l == 0)
                    snprintf(errstr, errstr_size, "%s", ln->err);
                else
                    snprintf(errstr, errstr_size, "apply session %zu: %s", l + 1, ln->err);
            }
            if (l > 0 && PQstatus(ln->conn) != CONNECTION_OK) {
                srl_store_close(ln->st);
                ln->st = NULL;
            }
        }
        if (rc == SRL_STORE_OK) {
            srl_apply_stats_t fin = {0};
            rc = apply_txn(l0, conn, ITEMS_NONE, offs, noffs, lag_columns, dl, extra_sql, &fin,
                           errstr, errstr_size);
        }
    }
    if (rc != SRL_STORE_OK)
        return rc;
    st.records = (int64_t)a->count;
    st.sessions = (int)nlanes;
    int64_t effective = 0;
    for (int k = 0; k < SRL_KIND_COUNT; k++)
        effective += st.upserted[k] + st.deleted[k];
    st.stale = st.records > effective ? st.records - effective : 0;
    if (stats)
        *stats = st;
    return SRL_STORE_OK;
}
