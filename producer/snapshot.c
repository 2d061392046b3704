/*
 * snapshot.c - full-state publish and tombstoning of stray keys (see
 * snapshot.h).
 */
#include "snapshot.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outbox.h"
#include "sysrepl/rows.h"
#include "sysrepl/log.h"

/* A growable list of keys. */
typedef struct key_list {
    char **keys;
    bool *tombstone; /* only for topic keys */
    size_t count, cap;
} key_list_t;

static bool key_list_add(key_list_t *l, const char *key, size_t len, bool tombstone)
{
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 1024;
        char **k = realloc(l->keys, cap * sizeof(*k));
        if (!k)
            return false;
        l->keys = k;
        bool *t = realloc(l->tombstone, cap * sizeof(*t));
        if (!t)
            return false;
        l->tombstone = t;
        l->cap = cap;
    }
    char *s = strndup(key, len);
    if (!s)
        return false;
    l->keys[l->count] = s;
    l->tombstone[l->count] = tombstone;
    l->count++;
    return true;
}

static void key_list_free(key_list_t *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->keys[i]);
    free(l->keys);
    free(l->tombstone);
    memset(l, 0, sizeof(*l));
}

typedef struct scan_ctx {
    key_list_t *list;
    bool oom;
} scan_ctx_t;

static void on_topic_key(void *arg, const char *key, size_t len, bool tombstone)
{
    scan_ctx_t *sc = arg;
    if (!key_list_add(sc->list, key, len, tombstone))
        sc->oom = true;
}

/* Publish b and wait for every record's result. */
static srl_store_rc_t publish_wait(srl_sink_t *sink, srl_outbox_batch_t *b,
                                   const volatile sig_atomic_t *stop, char *errstr,
                                   size_t errstr_size)
{
    if (b->sink.count == 0)
        return SRL_STORE_OK;
    if (!sink->ops->publish(sink, &b->sink, errstr, errstr_size))
        return SRL_STORE_FATAL;
    while (b->sink.pending > 0) {
        sink->ops->poll(sink, 100);
        /* cppcheck-suppress knownConditionTrueFalse ; poll() above runs delivery callbacks */
        if (*stop && b->sink.pending > 0) {
            /* Wait for what is in flight (records point into b). */
            sink->ops->poll(sink, 1000);
        }
    }
    if (b->sink.failed) {
        snprintf(errstr, errstr_size, "snapshot: %zu records not delivered: %s", b->sink.failed,
                 b->sink.error);
        return SRL_STORE_FATAL;
    }
    return SRL_STORE_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Topic entries sorted by key, the later record of a key first among
 * equals is not needed: we sort indices and keep the highest index. */
typedef struct topic_entry {
    const char *key;
    size_t index;
} topic_entry_t;

static int cmp_entry(const void *a, const void *b)
{
    const topic_entry_t *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    if (c)
        return c;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Append s to buf as an element of a PostgreSQL array literal. */
static bool array_append(char **buf, size_t *len, size_t *cap, const char *s)
{
    size_t need = *len + 2 * strlen(s) + 4;
    if (need > *cap) {
        size_t nc = need * 2;
        char *nb = realloc(*buf, nc);
        if (!nb)
            return false;
        *buf = nb;
        *cap = nc;
    }
    char *p = *buf + *len;
    if (*len > 1)
        *p++ = ',';
    *p++ = '"';
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            *p++ = '\\';
        *p++ = *s;
    }
    *p++ = '"';
    *len = (size_t)(p - *buf);
    return true;
}

/* Step 1: publish every row of kind; fills store_keys (sorted). */
static srl_store_rc_t publish_state(PGconn *conn, srl_sink_t *sink, srl_registry_t *reg,
                                    srl_kind_t kind, const char *origin, int batch_size,
                                    volatile sig_atomic_t *stop, key_list_t *store_keys,
                                    int64_t *published, char *errstr, size_t errstr_size)
{
    char sql[2048], fetch[64];
    const char *table = srl_kind_table(kind), *keycol = srl_kind_key_column(kind);
    const char *cols = kind == SRL_KIND_ASSESSMENT_TYPE ? SRL_ROWS_TYPE_COLS("x")
                       : kind == SRL_KIND_ASSESSMENT    ? SRL_ROWS_ASSESSMENT_COLS("x")
                                                        : SRL_ROWS_POLICY_COLS("x");
    srl_store_rc_t rc = srl_store_exec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
                                       NULL, errstr, errstr_size);
    if (rc)
        return rc;
    snprintf(sql, sizeof(sql),
             "DECLARE srl_snapshot NO SCROLL CURSOR FOR SELECT x.%s, %s FROM %s x"
             " ORDER BY x.%s COLLATE \"C\"",
             keycol, cols, table, keycol);
    rc = srl_store_exec(conn, sql, NULL, errstr, errstr_size);
    snprintf(fetch, sizeof(fetch), "FETCH %d FROM srl_snapshot", batch_size);
    while (rc == SRL_STORE_OK) {
        if (*stop) {
            rc = SRL_STORE_RETRY;
            snprintf(errstr, errstr_size, "snapshot interrupted by a signal");
            break;
        }
        PGresult *res = PQexec(conn, fetch);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            rc = srl_store_classify(conn, res, "reading content for the snapshot", errstr,
                                    errstr_size);
            PQclear(res);
            break;
        }
        int n = PQntuples(res);
        srl_outbox_batch_t b = {0};
        for (int i = 0; i < n && rc == SRL_STORE_OK; i++) {
            const char *key = PQgetvalue(res, i, 0);
            srl_entity_t e;
            uint8_t *value = NULL;
            size_t len = 0;
            char why[256];
            if (!key_list_add(store_keys, key, strlen(key), false)) {
                snprintf(errstr, errstr_size, "out of memory");
                rc = SRL_STORE_FATAL;
                break;
            }
            bool ok = srl_rows_parse(res, i, 1, kind, &e, why, sizeof(why)) &&
                      srl_codec_encode(reg, &e, &value, &len, why, sizeof(why));
            int64_t version = e.kind == SRL_KIND_ASSESSMENT_TYPE ? e.u.type.meta.version
                              : e.kind == SRL_KIND_ASSESSMENT    ? e.u.assessment.meta.version
                                                                 : e.u.policy.meta.version;
            srl_entity_clear(&e);
            if (!ok) {
                srl_log(SRL_LOG_ERROR, "producer", "row cannot be published in the snapshot",
                        "kind=%s key=%s reason=%s", srl_kind_name(kind), srl_log_q(key),
                        srl_log_q(why));
                continue;
            }
            if (!srl_outbox_batch_add(&b, kind, key, value, len, version, origin)) {
                snprintf(errstr, errstr_size, "out of memory");
                rc = SRL_STORE_FATAL;
            }
        }
        PQclear(res);
        if (rc == SRL_STORE_OK)
            rc = publish_wait(sink, &b, stop, errstr, errstr_size);
        *published += (int64_t)b.sink.count;
        srl_outbox_batch_clear(&b);
        if (n < batch_size)
            break;
    }
    if (rc == SRL_STORE_OK)
        rc = srl_store_exec(conn, "COMMIT", NULL, errstr, errstr_size);
    else
        PQclear(PQexec(conn, "ROLLBACK"));
    /* Keys came in "C" collation order, which is strcmp's; sort anyway
     * so bsearch never depends on the server's collation. */
    if (store_keys->count > 1) /* keys is NULL when the kind is empty */
        qsort(store_keys->keys, store_keys->count, sizeof(char *), cmp_str);
    return rc;
}

/* Steps 2-4: tombstone the topic's keys the store does not hold. */
static srl_store_rc_t tombstone_strays(PGconn *conn, srl_sink_t *sink, srl_kind_t kind,
                                       const char *origin, volatile sig_atomic_t *stop,
                                       const key_list_t *store_keys, int64_t *tombstoned,
                                       char *errstr, size_t errstr_size)
{
    key_list_t topic = {0};
    scan_ctx_t sc = {&topic, false};
    topic_entry_t *entries = NULL;
    char *arr = NULL;
    size_t len = 1, cap = 0;
    srl_store_rc_t rc = SRL_STORE_OK;
    srl_outbox_batch_t b = {0};
    PGresult *res = NULL;

    if (!sink->ops->scan_keys(sink, kind, on_topic_key, &sc, errstr, errstr_size)) {
        rc = SRL_STORE_FATAL;
        goto cleanup;
    }
    if (sc.oom || !(entries = calloc(topic.count + 1, sizeof(*entries))) ||
        !(arr = malloc(cap = 64))) {
        snprintf(errstr, errstr_size, "out of memory");
        rc = SRL_STORE_FATAL;
        goto cleanup;
    }
    for (size_t i = 0; i < topic.count; i++)
        entries[i] = (topic_entry_t){topic.keys[i], i};
    qsort(entries, topic.count, sizeof(*entries), cmp_entry);
    arr[0] = '{';
    size_t strays = 0;
    for (size_t i = 0; i < topic.count; i++) {
        if (i + 1 < topic.count && strcmp(entries[i].key, entries[i + 1].key) == 0)
            continue; /* not the key's last record */
        if (topic.tombstone[entries[i].index])
            continue;
        const char *k = entries[i].key;
        if (store_keys->count > 0 &&
            bsearch(&k, store_keys->keys, store_keys->count, sizeof(char *), cmp_str))
            continue;
        if (!array_append(&arr, &len, &cap, k)) {
            rc = SRL_STORE_FATAL;
            goto cleanup;
        }
        strays++;
    }
    if (!strays)
        goto cleanup;
    arr[len++] = '}';
    arr[len] = '\0';

    /* Lock out writers of the table while the strays are re-checked and
     * their versions taken: an insert of one of these keys either commits
     * before (the key is no longer stray) or after (its version is higher
     * than the tombstone's). */
    char sql[512];
    const char *table = srl_kind_table(kind), *keycol = srl_kind_key_column(kind);
    rc = srl_store_exec(conn, "BEGIN", NULL, errstr, errstr_size);
    if (rc)
        goto cleanup;
    snprintf(sql, sizeof(sql), "LOCK TABLE %s IN SHARE MODE", table);
    rc = srl_store_exec(conn, sql, NULL, errstr, errstr_size);
    if (rc)
        goto rollback;
    snprintf(sql, sizeof(sql),
             "SELECT k, nextval('sysrepl.sysrepl_version') FROM unnest($1::text[]) k"
             " WHERE NOT EXISTS (SELECT 1 FROM %s x WHERE x.%s = k)",
             table, keycol);
    const char *params[1] = {arr};
    res = PQexecParams(conn, sql, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = srl_store_classify(conn, res, "taking tombstone versions", errstr, errstr_size);
        goto rollback;
    }
    rc = srl_store_exec(conn, "COMMIT", NULL, errstr, errstr_size);
    if (rc)
        goto cleanup;
    for (int i = 0; i < PQntuples(res); i++) {
        int64_t version = strtoll(PQgetvalue(res, i, 1), NULL, 10);
        if (!srl_outbox_batch_add(&b, kind, PQgetvalue(res, i, 0), NULL, 0, version, origin)) {
            rc = SRL_STORE_FATAL;
            goto cleanup;
        }
    }
    rc = publish_wait(sink, &b, stop, errstr, errstr_size);
    if (rc == SRL_STORE_OK)
        *tombstoned += (int64_t)b.sink.count;
    goto cleanup;
rollback:
    PQclear(PQexec(conn, "ROLLBACK"));
cleanup:
    PQclear(res);
    srl_outbox_batch_clear(&b);
    free(arr);
    free(entries);
    key_list_free(&topic);
    return rc;
}

srl_store_rc_t srl_snapshot_run(srl_store_t *st, srl_sink_t *sink, srl_registry_t *reg,
                                unsigned kind_mask, const char *origin, int batch_size,
                                bool topics_empty, volatile sig_atomic_t *stop,
                                srl_snapshot_stats_t *stats, char *errstr, size_t errstr_size)
{
    PGconn *conn = srl_store_conn(st);
    memset(stats, 0, sizeof(*stats));
    /* Empty topics hold no key to tombstone, so a transport that cannot
     * read topics back (http: a push instance) can still seed them. */
    if (!topics_empty && !sink->ops->scan_keys) {
        snprintf(errstr, errstr_size, "transport %s cannot read topics back for a snapshot",
                 sink->ops->name);
        return SRL_STORE_FATAL;
    }
    for (int k = 0; k < SRL_KIND_COUNT; k++) {
        if (!(kind_mask & (1u << k)))
            continue;
        key_list_t store_keys = {0};
        srl_store_rc_t rc = publish_state(conn, sink, reg, (srl_kind_t)k, origin, batch_size, stop,
                                          &store_keys, &stats->published[k], errstr, errstr_size);
        if (rc == SRL_STORE_OK && !topics_empty)
            rc = tombstone_strays(conn, sink, (srl_kind_t)k, origin, stop, &store_keys,
                                  &stats->tombstoned[k], errstr, errstr_size);
        key_list_free(&store_keys);
        if (rc != SRL_STORE_OK)
            return rc;
        srl_log(SRL_LOG_INFO, "producer", "snapshot of kind done",
                "kind=%s published=%" PRId64 " tombstoned=%" PRId64, srl_kind_name((srl_kind_t)k),
                stats->published[k], stats->tombstoned[k]);
    }
    return SRL_STORE_OK;
}
