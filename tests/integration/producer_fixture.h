/*
 * producer_fixture.h - helpers of the test_producer_*.c integration tests
 * (static functions, included by each): a fresh hub store, the producer
 * binary run as a child process, the topics read back to the last record
 * of each key, and the check that the topics mirror the store.
 *
 * Include <cmocka.h> (with its prelude) and support/support.h first.
 */
#ifndef SRL_TEST_PRODUCER_FIXTURE_H
#define SRL_TEST_PRODUCER_FIXTURE_H

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <pthread.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "sysrepl/codec.h"
#include "sysrepl/json.h"
#include "sysrepl/kafka.h"
#include "sysrepl/keys.h"
#include "sysrepl/store.h"

/* Not every test uses every helper. */
#define PF_FN static __attribute__((unused))

typedef struct pf {
    char dsn[512];
    char *prefix;
    char instance[64];
    char topics[SRL_KIND_COUNT][256];
    char schemas_topic[256];
    char log_path[256];
    char kafka[128];
    srl_store_t *st;
    srl_registry_t *reg;
} pf_t;

/* A fresh hub store (instance id given) and a unique topic prefix. */
PF_FN void pf_init(pf_t *pf, const char *name, const char *instance, const char *prefix)
{
    char err[512];
    srl_store_rc_t rc;
    memset(pf, 0, sizeof(*pf));
    snprintf(pf->kafka, sizeof(pf->kafka), "%s", srl_test_kafka());
    srl_test_create_db(pf->dsn, sizeof(pf->dsn));
    pf->st = srl_store_connect(pf->dsn, &rc, err, sizeof(err));
    if (!pf->st)
        fail_msg("connect: %s", err);
    if (srl_store_migrate(pf->st, NULL, err, sizeof(err)) != SRL_STORE_OK)
        fail_msg("migrate: %s", err);
    if (srl_store_set_settings(pf->st, instance, "hub", err, sizeof(err)) != SRL_STORE_OK)
        fail_msg("settings: %s", err);
    snprintf(pf->instance, sizeof(pf->instance), "%s", instance);
    pf->prefix = prefix ? strdup(prefix) : srl_test_unique_name(name);
    for (int k = 0; k < SRL_KIND_COUNT; k++)
        assert_true(srl_topic_name(pf->prefix, (srl_kind_t)k, pf->topics[k], 256));
    assert_true(srl_topic_name_schemas(pf->prefix, pf->schemas_topic, 256));
    snprintf(pf->log_path, sizeof(pf->log_path), "/tmp/%s-%s.log", pf->prefix, instance);
    pf->reg = srl_registry_new(err, sizeof(err));
    assert_non_null(pf->reg);
}

PF_FN void pf_free(pf_t *pf)
{
    srl_store_close(pf->st);
    srl_test_drop_db(pf->dsn);
    srl_registry_free(pf->reg);
    free(pf->prefix);
    memset(pf, 0, sizeof(*pf));
}

PF_FN const char *pf_binary(void)
{
    static char path[1024];
    const char *dir = getenv("SRL_BUILD_DIR");
    snprintf(path, sizeof(path), "%s/producer/sysrepl-producer", dir ? dir : ".");
    return path;
}

/* Start the producer on pf's store and prefix, stderr appended to
 * pf->log_path; extra: NULL-terminated further arguments. */
/* Producers started by this process: killed at exit, so a failing test
 * (cmocka jumps out of it) leaves no producer behind. */
static pid_t pf_children[64];
static size_t pf_child_count;

static void pf_kill_children(void)
{
    for (size_t i = 0; i < pf_child_count; i++)
        if (pf_children[i] > 0 && kill(pf_children[i], 0) == 0) {
            kill(pf_children[i], SIGKILL);
            waitpid(pf_children[i], NULL, 0);
        }
}

PF_FN pid_t pf_start(pf_t *pf, const char *const *extra)
{
    char a_dsn[600], a_inst[128], a_prefix[300], a_kafka[200];
    snprintf(a_dsn, sizeof(a_dsn), "store.dsn=%s", pf->dsn);
    snprintf(a_inst, sizeof(a_inst), "instance.id=%s", pf->instance);
    snprintf(a_prefix, sizeof(a_prefix), "topic.prefix=%s", pf->prefix);
    snprintf(a_kafka, sizeof(a_kafka), "kafka.bootstrap.servers=%s", pf->kafka);
    const char *argv[40] = {pf_binary(),
                            "-X",
                            a_dsn,
                            "-X",
                            a_inst,
                            "-X",
                            a_prefix,
                            "-X",
                            a_kafka,
                            "-X",
                            "topic.partitions=3",
                            "-X",
                            "stats.interval_ms=2000",
                            "-X",
                            "producer.poll_interval_ms=200"};
    int n = 15;
    for (size_t i = 0; extra && extra[i] && n < 38; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(pf->log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 2);
            dup2(fd, 1);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    if (pf_child_count == 0)
        atexit(pf_kill_children);
    if (pf_child_count < sizeof(pf_children) / sizeof(pf_children[0]))
        pf_children[pf_child_count++] = pid;
    return pid;
}

/* Wait for a child; returns its exit code (128+signal when killed), or -1
 * when it is still running after timeout_ms. */
PF_FN int pf_wait_exit(pid_t pid, int timeout_ms)
{
    long long deadline = srl_test_now_ms() + timeout_ms;
    int status;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (srl_test_now_ms() > deadline)
            return -1;
        usleep(20000);
    }
}

/* SIGTERM and wait: the producer's exit code. */
PF_FN int pf_stop(pid_t pid)
{
    kill(pid, SIGTERM);
    int rc = pf_wait_exit(pid, 60000);
    if (rc < 0) {
        kill(pid, SIGKILL);
        pf_wait_exit(pid, 10000);
    }
    return rc;
}

PF_FN long long pf_scalar(pf_t *pf, const char *sql)
{
    PGresult *res = PQexec(srl_store_conn(pf->st), sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(srl_store_conn(pf->st)));
    long long v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return v;
}

PF_FN void pf_exec(pf_t *pf, const char *sql)
{
    PGresult *res = PQexec(srl_store_conn(pf->st), sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(srl_store_conn(pf->st)));
    PQclear(res);
}

typedef struct pf_drain_wait {
    pf_t *pf;
    char sql[512];
} pf_drain_wait_t;

PF_FN bool pf_outbox_empty_ready(void *arg)
{
    pf_drain_wait_t *w = arg;
    return pf_scalar(w->pf, w->sql) == 0;
}

/* What waits for the producer: outbox rows plus, on a store that
 * captures through its WAL, the bytes of WAL its slot has not confirmed. */
PF_FN long long pf_undelivered(pf_t *pf)
{
    return pf_scalar(pf, "SELECT (SELECT count(*) FROM sysrepl.outbox) + coalesce((SELECT"
                         " max(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn))::bigint"
                         " FROM pg_replication_slots WHERE database = current_database()), 0)");
}

/* Nothing waits for the producer: the outbox is empty and, on a store
 * that captures through its WAL, the slot has confirmed everything
 * committed before this call. */
PF_FN bool pf_wait_outbox_empty(pf_t *pf, int timeout_ms)
{
    pf_drain_wait_t w = {.pf = pf};
    PGresult *res = PQexec(srl_store_conn(pf->st), "SELECT pg_current_wal_lsn()::text");
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        fail_msg("pg_current_wal_lsn: %s", PQerrorMessage(srl_store_conn(pf->st)));
    snprintf(w.sql, sizeof(w.sql), "SELECT sysrepl.undelivered('%s')", PQgetvalue(res, 0, 0));
    PQclear(res);
    return srl_test_wait_until(pf_outbox_empty_ready, &w, timeout_ms);
}

/* ---- reading topics back ---- */

typedef struct pf_rec {
    char *key;
    uint8_t *value; /* NULL: tombstone */
    size_t value_len;
    int64_t version; /* header; -1 when missing */
    char origin[64];
    int32_t partition;
    int64_t offset;
} pf_rec_t;

typedef struct pf_recs {
    pf_rec_t *items;
    size_t count, cap;
} pf_recs_t;

PF_FN void pf_recs_free(pf_recs_t *r)
{
    for (size_t i = 0; i < r->count; i++) {
        free(r->items[i].key);
        free(r->items[i].value);
    }
    free(r->items);
    memset(r, 0, sizeof(*r));
}

/* Every record of a topic, partition by partition in offset order. */
PF_FN void pf_read_topic(pf_t *pf, const char *topic, pf_recs_t *out)
{
    char eb[512];
    memset(out, 0, sizeof(*out));
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", pf->kafka, eb, sizeof(eb));
    rd_kafka_conf_set(conf, "group.id", "producer-test-reader", eb, sizeof(eb));
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", eb, sizeof(eb));
    rd_kafka_conf_set(conf, "enable.partition.eof", "true", eb, sizeof(eb));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, eb, sizeof(eb));
    assert_non_null(rk);
    int n = srl_kafka_partition_count(rk, topic, 10000, eb, sizeof(eb));
    if (n < 0)
        fail_msg("%s", eb);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(n);
    int64_t highs[64] = {0};
    int remaining = 0;
    for (int p = 0; p < n; p++) {
        int64_t lo, hi;
        assert_int_equal(rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 10000), 0);
        highs[p] = hi;
        if (hi > lo) {
            rd_kafka_topic_partition_list_add(parts, topic, p)->offset = lo;
            remaining++;
        }
    }
    assert_int_equal(rd_kafka_assign(rk, parts), 0);
    long long deadline = srl_test_now_ms() + 120000;
    while (remaining > 0 && srl_test_now_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        if (!m)
            continue;
        if (!m->err && m->offset < highs[m->partition]) {
            if (out->count == out->cap) {
                out->cap = out->cap ? out->cap * 2 : 1024;
                out->items = realloc(out->items, out->cap * sizeof(pf_rec_t));
                assert_non_null(out->items);
            }
            pf_rec_t *r = &out->items[out->count++];
            memset(r, 0, sizeof(*r));
            r->key = strndup(m->key ? m->key : "", m->key_len);
            if (m->payload) {
                r->value = malloc(m->len ? m->len : 1);
                memcpy(r->value, m->payload, m->len);
                r->value_len = m->len;
            }
            r->version = srl_kafka_header_version(m);
            srl_kafka_header_str(m, SRL_HDR_ORIGIN, r->origin, sizeof(r->origin));
            r->partition = m->partition;
            r->offset = m->offset;
            if (m->offset == highs[m->partition] - 1)
                remaining--;
        }
        rd_kafka_message_destroy(m);
    }
    assert_int_equal(remaining, 0);
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

PF_FN int pf_cmp_rec(const void *a, const void *b)
{
    const pf_rec_t *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    if (c)
        return c;
    if (x->partition != y->partition)
        return x->partition < y->partition ? -1 : 1;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Sort by key, then offset; keep only the last record of each key. Checks
 * on the way that every key lives in one partition. */
PF_FN void pf_last_per_key(pf_recs_t *r)
{
    if (r->count == 0)
        return; /* items may be NULL: qsort must not see it */
    qsort(r->items, r->count, sizeof(pf_rec_t), pf_cmp_rec);
    size_t w = 0;
    for (size_t i = 0; i < r->count; i++) {
        bool last = i + 1 == r->count || strcmp(r->items[i].key, r->items[i + 1].key) != 0;
        if (!last) {
            if (r->items[i].partition != r->items[i + 1].partition)
                fail_msg("key %s is in partitions %d and %d", r->items[i].key,
                         r->items[i].partition, r->items[i + 1].partition);
            free(r->items[i].key);
            free(r->items[i].value);
            continue;
        }
        r->items[w++] = r->items[i];
    }
    r->count = w;
}

PF_FN pf_rec_t *pf_find(pf_recs_t *r, const char *key)
{
    pf_rec_t probe = {.key = (char *)key};
    size_t lo = 0, hi = r->count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(r->items[mid].key, probe.key);
        if (c == 0)
            return &r->items[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int64_t pf_entity_version(const srl_entity_t *e)
{
    return e->kind == SRL_KIND_ASSESSMENT_TYPE ? e->u.type.meta.version
           : e->kind == SRL_KIND_ASSESSMENT    ? e->u.assessment.meta.version
                                               : e->u.policy.meta.version;
}

/* A record's value decodes to exactly the entity e (JSON forms equal),
 * carries our writer schema's fingerprint, and its header version is e's. */
PF_FN void pf_check_record(pf_t *pf, const pf_rec_t *r, const srl_entity_t *e)
{
    char err[512];
    if (!r->value)
        fail_msg("key %s: last record is a tombstone, the store has it", r->key);
    assert_true(r->value_len > SRL_CODEC_HEADER_SIZE);
    assert_int_equal(r->value[0], SRL_CODEC_MAGIC0);
    assert_int_equal(r->value[1], SRL_CODEC_MAGIC1);
    uint64_t fp = 0;
    for (int i = 0; i < 8; i++)
        fp |= (uint64_t)r->value[2 + i] << (8 * i);
    assert_true(fp == srl_registry_writer_fingerprint(pf->reg, e->kind));
    srl_entity_t d;
    if (!srl_codec_decode(pf->reg, r->value, r->value_len, &d, err, sizeof(err)))
        fail_msg("key %s: decode: %s", r->key, err);
    json_t *a = srl_json_from_entity(&d, err, sizeof(err));
    json_t *b = srl_json_from_entity(e, err, sizeof(err));
    assert_non_null(a);
    assert_non_null(b);
    if (!json_equal(a, b)) {
        char *sa = json_dumps(a, JSON_SORT_KEYS), *sb = json_dumps(b, JSON_SORT_KEYS);
        fail_msg("key %s: topic has %s\nstore has %s", r->key, sa, sb);
    }
    if (r->version != pf_entity_version(e))
        fail_msg("key %s: header version %" PRId64 ", store version %" PRId64, r->key, r->version,
                 pf_entity_version(e));
    assert_string_equal(r->origin, pf->instance);
    json_decref(a);
    json_decref(b);
    srl_entity_clear(&d);
}

/* The topics mirror the store: for every key of every kind the last
 * record is the store's current entity, and every other key's last record
 * is a tombstone with a version. Returns the number of live keys checked. */
PF_FN size_t pf_check_mirror(pf_t *pf)
{
    char err[512];
    size_t live = 0;
    for (int k = 0; k < SRL_KIND_COUNT; k++) {
        pf_recs_t recs;
        pf_read_topic(pf, pf->topics[k], &recs);
        pf_last_per_key(&recs);
        bool *seen = calloc(recs.count + 1, sizeof(bool));
        srl_store_rc_t rc;
        srl_store_filter_t filter = {0};
        srl_store_cursor_t *cur = srl_store_cursor_new(pf->st, (srl_kind_t)k, &filter, &rc, err,
                                                       sizeof(err));
        if (!cur)
            fail_msg("list: %s", err);
        srl_entity_t e = {.kind = (srl_kind_t)k};
        while ((rc = srl_store_cursor_next(cur, &e, err, sizeof(err))) == SRL_STORE_OK) {
            char key[1024];
            assert_true(srl_key_build(&e, key, sizeof(key)) > 0);
            pf_rec_t *r = pf_find(&recs, key);
            if (!r)
                fail_msg("%s: key %s is in the store, not in the topic", pf->topics[k], key);
            pf_check_record(pf, r, &e);
            seen[r - recs.items] = true;
            srl_entity_clear(&e);
            live++;
        }
        if (rc != SRL_STORE_DONE)
            fail_msg("list: %s", err);
        srl_store_cursor_free(cur);
        for (size_t i = 0; i < recs.count; i++) {
            if (seen[i])
                continue;
            if (recs.items[i].value)
                fail_msg("%s: key %s is not in the store but its last record is a value",
                         pf->topics[k], recs.items[i].key);
            if (recs.items[i].version <= 0)
                fail_msg("%s: tombstone of %s has no version", pf->topics[k], recs.items[i].key);
        }
        free(seen);
        pf_recs_free(&recs);
    }
    return live;
}

/* Print the producer's log (on failure, to see why). */
PF_FN void pf_dump_log(pf_t *pf, int last_lines)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "tail -n %d %s >&2", last_lines, pf->log_path);
    if (system(cmd) != 0)
        fprintf(stderr, "(no log at %s)\n", pf->log_path);
}

PF_FN bool pf_log_contains(pf_t *pf, const char *needle)
{
    FILE *f = fopen(pf->log_path, "r");
    char line[4096];
    bool found = false;
    while (f && !found && fgets(line, sizeof(line), f))
        found = strstr(line, needle) != NULL;
    if (f)
        fclose(f);
    return found;
}

#define PF_KEY_SPACE 30000

typedef struct pf_writer {
    char dsn[512];
    int steps;    /* ~500 changes each */
    int pause_us; /* between steps */
    long long changes;
    volatile int done;
    char error[512];
} pf_writer_t;

/* Upserts of 500 random-range keys, updates and deletes of random keys,
 * and a few type and policy changes per step (~540 changes); run as a
 * thread (pthread_create). */
PF_FN void *pf_write_changes(void *arg)
{
    pf_writer_t *w = arg;
    PGconn *conn = PQconnectdb(w->dsn);
    unsigned seed = (unsigned)getpid();
    char sql[1024];
    for (int step = 0; step < w->steps && !w->error[0]; step++) {
        /* cppcheck-suppress rand_rCalled ; a seeded per-thread sequence, repeatable by seed */
        int lo = (int)(rand_r(&seed) % (PF_KEY_SPACE - 500));
        snprintf(sql, sizeof(sql),
                 "INSERT INTO vulnerability_assessments (vulnerability_id, assessment_type,"
                 " scope_kind, scope_name, comment, assessed_at)"
                 " SELECT 'CVE-2024-' || (10000 + g), 'Blocked',"
                 "  CASE WHEN g %% 3 = 0 THEN 'feed' ELSE 'global' END,"
                 "  CASE WHEN g %% 3 = 0 THEN 'nuget' END, 'step %d', %d"
                 " FROM generate_series(%d, %d) g"
                 " ON CONFLICT (key) DO UPDATE SET comment = EXCLUDED.comment;"
                 "DELETE FROM vulnerability_assessments WHERE vulnerability_id IN"
                 " (SELECT 'CVE-2024-' || (10000 + (random() * %d)::int)"
                 "  FROM generate_series(1, 40));"
                 "INSERT INTO policies (name, description) VALUES ('p%d', 'step %d')"
                 " ON CONFLICT (name) DO UPDATE SET description = EXCLUDED.description;"
                 "INSERT INTO assessment_types (name, severity_class) VALUES ('T%d', 'warn')"
                 " ON CONFLICT ((lower(name))) DO UPDATE SET description = 'step %d';"
                 "DELETE FROM policies WHERE name = 'p%d'",
                 step, step * 1000, lo, lo + 499, PF_KEY_SPACE, step % 7, step, step % 5, step,
                 (step + 3) % 7);
        PGresult *res = PQexec(conn, sql);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            snprintf(w->error, sizeof(w->error), "%s", PQerrorMessage(conn));
        PQclear(res);
        usleep((useconds_t)w->pause_us);
    }
    PQfinish(conn);
    w->done = 1;
    return NULL;
}

typedef struct pf_log_wait {
    pf_t *pf;
    const char *needle;
} pf_log_wait_t;

PF_FN bool pf_log_ready(void *arg)
{
    pf_log_wait_t *w = arg;
    return pf_log_contains(w->pf, w->needle);
}

/* Wait until the producer's log has a line containing needle. */
PF_FN bool pf_wait_log(pf_t *pf, const char *needle, int timeout_ms)
{
    pf_log_wait_t w = {pf, needle};
    return srl_test_wait_until(pf_log_ready, &w, timeout_ms);
}

#endif
