/*
 * consumer_fixture.h - helpers of the test_consumer_*.c integration tests
 * (static functions, included by each): topics with chosen settings,
 * records written straight to them with librdkafka (as the producer would:
 * Avro single-object value, key from srl_key_build, sysrepl.version and
 * sysrepl.origin headers), fresh spoke stores, the consumer binary run as
 * a child process, random content and its expected final state, and table
 * dumps to compare stores row for row.
 *
 * Include <cmocka.h> (with its prelude) and support/support.h first.
 */
#ifndef SRL_TEST_CONSUMER_FIXTURE_H
#define SRL_TEST_CONSUMER_FIXTURE_H

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "sysrepl/codec.h"
#include "sysrepl/json.h"
#include "sysrepl/kafka.h"
#include "sysrepl/keys.h"
#include "sysrepl/store.h"

#define FX_HUB "hub-test"

typedef struct fx {
    char *prefix;
    char topics[SRL_KIND_COUNT][256];
    char schemas_topic[256];
    rd_kafka_t *producer;
    srl_registry_t *reg;
    int64_t next_version;
} fx_t;

/* ---- topics ---- */

/* Create topic with partitions and "name=value" configs (NULL-terminated). */
static __attribute__((unused)) void fx_create_topic(rd_kafka_t *rk, const char *topic,
                                                    int partitions, const char *const *configs)
{
    char eb[512];
    /* librdkafka's mock cluster (a quick smoke run while no broker is
     * around) creates topics on first use and does not compact. */
    if (getenv("SRL_TEST_KAFKA_MOCK"))
        return;
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, 1, eb, sizeof(eb));
    assert_non_null(nt);
    rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact");
    for (size_t i = 0; configs && configs[i]; i += 2)
        rd_kafka_NewTopic_set_config(nt, configs[i], configs[i + 1]);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_operation_timeout(o, 10000, eb, sizeof(eb));
    rd_kafka_CreateTopics(rk, &nt, 1, o, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 15000);
    assert_non_null(ev);
    size_t n;
    const rd_kafka_topic_result_t **tr =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    if (n != 1 || rd_kafka_topic_result_error(tr[0]))
        fail_msg("creating topic %s: %s", topic,
                 n == 1 ? rd_kafka_topic_result_error_string(tr[0]) : "no result");
    rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
}

/* A fixture with a unique prefix, its topics (3 partitions each, the
 * schema topic 1) created with the extra configs, and a producer. */
static __attribute__((unused)) void fx_init(fx_t *fx, const char *name, const char *const *configs)
{
    char eb[512];
    memset(fx, 0, sizeof(*fx));
    fx->prefix = srl_test_unique_name(name);
    for (int k = 0; k < SRL_KIND_COUNT; k++)
        assert_true(srl_topic_name(fx->prefix, (srl_kind_t)k, fx->topics[k], 256));
    assert_true(srl_topic_name_schemas(fx->prefix, fx->schemas_topic, 256));
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", srl_test_kafka(), eb, sizeof(eb));
    rd_kafka_conf_set(conf, "linger.ms", "5", eb, sizeof(eb));
    rd_kafka_conf_set(conf, "enable.idempotence", "true", eb, sizeof(eb));
    rd_kafka_conf_set(conf, "queue.buffering.max.messages", "1000000", eb, sizeof(eb));
    fx->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, eb, sizeof(eb));
    assert_non_null(fx->producer);
    for (int k = 0; k < SRL_KIND_COUNT; k++)
        fx_create_topic(fx->producer, fx->topics[k], 3, configs);
    fx_create_topic(fx->producer, fx->schemas_topic, 1, NULL);
    char err[256];
    fx->reg = srl_registry_new(err, sizeof(err));
    assert_non_null(fx->reg);
    fx->next_version = 1;
    /* Publish our writer schemas, as the producer does. */
    for (int k = 0; k < SRL_KIND_COUNT; k++) {
        char key[17];
        snprintf(key, sizeof(key), "%016" PRIx64,
                 srl_registry_writer_fingerprint(fx->reg, (srl_kind_t)k));
        const char *json = srl_registry_writer_json(fx->reg, (srl_kind_t)k);
        assert_int_equal(rd_kafka_producev(fx->producer, RD_KAFKA_V_TOPIC(fx->schemas_topic),
                                           RD_KAFKA_V_KEY(key, 16),
                                           RD_KAFKA_V_VALUE((void *)json, strlen(json)),
                                           RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                           RD_KAFKA_V_END),
                         0);
    }
}

static __attribute__((unused)) void fx_flush(fx_t *fx)
{
    assert_int_equal(rd_kafka_flush(fx->producer, 30000), 0);
}

static __attribute__((unused)) void fx_free(fx_t *fx)
{
    if (fx->producer) {
        rd_kafka_flush(fx->producer, 10000);
        rd_kafka_destroy(fx->producer);
    }
    srl_registry_free(fx->reg);
    free(fx->prefix);
    memset(fx, 0, sizeof(*fx));
}

/* Write raw bytes to a topic; version < 0: no version header. */
static __attribute__((unused)) void fx_produce_raw(fx_t *fx, const char *topic, const char *key,
                                                   const void *value, size_t len, int64_t version)
{
    rd_kafka_headers_t *h = rd_kafka_headers_new(2);
    char v[32];
    if (version >= 0) {
        snprintf(v, sizeof(v), "%" PRId64, version);
        rd_kafka_header_add(h, SRL_HDR_VERSION, -1, v, -1);
    }
    rd_kafka_header_add(h, SRL_HDR_ORIGIN, -1, FX_HUB, -1);
    rd_kafka_resp_err_t err;
    while ((err = rd_kafka_producev(fx->producer, RD_KAFKA_V_TOPIC(topic),
                                    RD_KAFKA_V_KEY((void *)key, strlen(key)),
                                    RD_KAFKA_V_VALUE((void *)value, value ? len : 0),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h),
                                    RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
        rd_kafka_poll(fx->producer, 10);
    assert_int_equal(err, 0);
    rd_kafka_poll(fx->producer, 0);
}

/* Stamp meta (origin, version, now) and write e as an upsert at version
 * (< 0: the next version). Returns the version written. */
static __attribute__((unused)) int64_t fx_put_at(fx_t *fx, srl_entity_t *e, int64_t version)
{
    srl_meta_t *m = e->kind == SRL_KIND_ASSESSMENT_TYPE ? &e->u.type.meta
                    : e->kind == SRL_KIND_ASSESSMENT    ? &e->u.assessment.meta
                                                        : &e->u.policy.meta;
    free(m->origin);
    m->origin = strdup(FX_HUB);
    m->version = version >= 0 ? version : fx->next_version++;
    m->changed_at = (int64_t)time(NULL) * 1000;
    char err[256], key[512];
    uint8_t *buf = NULL;
    size_t len = 0;
    if (!srl_entity_validate(e, err, sizeof(err)))
        fail_msg("test entity invalid: %s", err);
    if (!srl_codec_encode(fx->reg, e, &buf, &len, err, sizeof(err)))
        fail_msg("encode: %s", err);
    assert_true(srl_key_build(e, key, sizeof(key)) > 0);
    fx_produce_raw(fx, fx->topics[e->kind], key, buf, len, m->version);
    free(buf);
    return m->version;
}

static __attribute__((unused)) int64_t fx_put(fx_t *fx, srl_entity_t *e)
{
    return fx_put_at(fx, e, -1);
}

/* Write a tombstone of key; returns its version. */
static __attribute__((unused)) int64_t fx_delete(fx_t *fx, srl_kind_t kind, const char *key)
{
    int64_t v = fx->next_version++;
    fx_produce_raw(fx, fx->topics[kind], key, NULL, 0, v);
    return v;
}

/* ---- random content ---- */

static __attribute__((unused)) unsigned fx_rand(unsigned *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    return (*seed >> 8) & 0xffffff;
}

static __attribute__((unused)) char *fx_strf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static __attribute__((unused)) char *fx_strf(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    assert_non_null(s);
    return s;
}

/* Entity number i of a kind, with random non-key fields. */
static __attribute__((unused)) void fx_make(srl_kind_t kind, int i, unsigned *seed, srl_entity_t *e)
{
    memset(e, 0, sizeof(*e));
    e->kind = kind;
    if (kind == SRL_KIND_ASSESSMENT_TYPE) {
        srl_assessment_type_t *t = &e->u.type;
        t->name = fx_strf("Type%d", i);
        t->description = fx_rand(seed) % 2 ? fx_strf("desc\t%u \"q\" \\ é", fx_rand(seed)) : NULL;
        t->color = fx_rand(seed) % 2 ? fx_strf("#%06x", fx_rand(seed) & 0xffffff) : NULL;
        t->severity_class = (srl_severity_class_t)(fx_rand(seed) % SRL_SEVERITY_CLASS_COUNT);
        t->emitted_severity = (srl_severity_t)((int)(fx_rand(seed) % 6) - 1);
        unsigned r = fx_rand(seed) % 3;
        t->auto_rule.kind = (srl_auto_rule_kind_t)r;
        if (r == SRL_AUTO_RULE_CVSS) {
            t->auto_rule.cvss_min = 1.5;
            t->auto_rule.cvss_max = 7.25;
        } else if (r == SRL_AUTO_RULE_PVRS) {
            t->auto_rule.pvrs_count = 2;
            t->auto_rule.pvrs_categories = calloc(2, sizeof(int32_t));
            t->auto_rule.pvrs_categories[0] = 1;
            t->auto_rule.pvrs_categories[1] = 4;
        }
        t->has_default_expiry_days = fx_rand(seed) % 2;
        t->default_expiry_days = 30;
        t->inactive = fx_rand(seed) % 2;
    } else if (kind == SRL_KIND_ASSESSMENT) {
        srl_assessment_t *a = &e->u.assessment;
        a->vulnerability_id = fx_strf("CVE-2024-%05d", i / 2);
        a->scope_kind = i % 2 ? SRL_SCOPE_FEED : SRL_SCOPE_GLOBAL;
        a->scope_name = i % 2 ? fx_strf("feed%d", i % 7) : NULL;
        a->assessment_type = fx_strf("Type%u", fx_rand(seed) % 5);
        a->comment = fx_rand(seed) % 2 ? fx_strf("line1\nline2 %u", fx_rand(seed)) : NULL;
        a->has_package_filter = fx_rand(seed) % 2;
        if (a->has_package_filter) {
            a->package_name = fx_strf("pkg%u", fx_rand(seed) % 100);
            a->package_version_range = fx_rand(seed) % 2 ? strdup("[1.0,2.0)") : NULL;
        }
        a->has_expires_at = fx_rand(seed) % 2;
        a->expires_at = 4102444800000LL + fx_rand(seed);
        a->automatic = fx_rand(seed) % 2;
        a->assessed_by = fx_rand(seed) % 2 ? strdup("alice") : NULL;
        a->assessed_at = 1700000000000LL + fx_rand(seed);
    } else {
        srl_policy_t *p = &e->u.policy;
        p->name = fx_strf("Policy%d", i);
        p->description = fx_rand(seed) % 2 ? strdup("a policy") : NULL;
        p->feed_count = fx_rand(seed) % 3;
        p->feeds = p->feed_count ? calloc(p->feed_count, sizeof(char *)) : NULL;
        for (size_t f = 0; f < p->feed_count; f++)
            p->feeds[f] = fx_strf("feed \"%zu\",{x}", f);
        p->unassessed = (srl_outcome_t)(fx_rand(seed) % SRL_OUTCOME_COUNT);
        p->by_assessment_type_count = 2;
        p->by_assessment_type = calloc(2, sizeof(srl_outcome_entry_t));
        p->by_assessment_type[0] = (srl_outcome_entry_t){strdup("Blocked"),
                                                         SRL_OUTCOME_NONCOMPLIANT};
        p->by_assessment_type[1] = (srl_outcome_entry_t){strdup("Ignore"), SRL_OUTCOME_COMPLIANT};
        p->exception_count = 1;
        p->exceptions = calloc(1, sizeof(srl_policy_exception_t));
        p->exceptions[0].package = strdup("left-*");
        p->exceptions[0].rule_groups = SRL_RULE_GROUP_LICENSE;
        p->exceptions[0].has_expires_at = true;
        p->exceptions[0].expires_at = 4102444800000LL;
        p->has_risk_profile = fx_rand(seed) % 2;
        p->risk_profile.data_breach = SRL_RISK_HIGH;
    }
}

/* ---- stores ---- */

/* A fresh spoke store: created, migrated, settings written. */
static __attribute__((unused)) void fx_spoke(char *dsn, size_t size, const char *instance_id)
{
    char err[512];
    srl_store_rc_t rc;
    int applied = 0;
    srl_test_create_db(dsn, size);
    srl_store_t *st = srl_store_connect(dsn, &rc, err, sizeof(err));
    if (!st)
        fail_msg("connect %s: %s", dsn, err);
    if (srl_store_migrate(st, &applied, err, sizeof(err)) != SRL_STORE_OK)
        fail_msg("migrate: %s", err);
    if (srl_store_set_settings(st, instance_id, "spoke", err, sizeof(err)) != SRL_STORE_OK)
        fail_msg("settings: %s", err);
    srl_store_close(st);
}

/* The rows of a content table, one per line, ordered by key. Caller frees. */
static __attribute__((unused)) char *fx_dump(const char *dsn, srl_kind_t kind)
{
    static const char *const q[] = {
        "SELECT coalesce(string_agg(t::text, E'\\n' ORDER BY t.name), '') FROM assessment_types t",
        "SELECT coalesce(string_agg(t::text, E'\\n' ORDER BY t.key), '') FROM "
        "vulnerability_assessments t",
        "SELECT coalesce(string_agg(t::text, E'\\n' ORDER BY t.name), '') FROM policies t"};
    srl_store_t *st = srl_test_store_connect(dsn);
    PGconn *c = srl_store_conn(st);
    PGresult *r = PQexec(c, q[kind]);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("dump: %s", PQerrorMessage(c));
    char *s = strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    srl_store_close(st);
    return s;
}

/* One value of a query, as a malloc'd string ("" for NULL). Runs on a
 * sysrepl session (srl_store_connect), so sysrepl's tables resolve
 * unqualified as they do for the consumer. */
static __attribute__((unused)) char *fx_query(const char *dsn, const char *sql)
{
    srl_store_t *st = srl_test_store_connect(dsn);
    PGconn *c = srl_store_conn(st);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
        fail_msg("query %s: %s", sql, PQerrorMessage(c));
    char *s = strdup(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 ? PQgetvalue(r, 0, 0)
                                                                              : "");
    PQclear(r);
    srl_store_close(st);
    return s;
}

static __attribute__((unused)) long long fx_query_int(const char *dsn, const char *sql)
{
    char *s = fx_query(dsn, sql);
    long long v = strtoll(s, NULL, 10);
    free(s);
    return v;
}

/* ---- the expected state ---- */

#define FX_MAX_KEYS 50000
typedef struct fx_model {
    int count[SRL_KIND_COUNT];
    char *key[SRL_KIND_COUNT][FX_MAX_KEYS];
    int64_t version[SRL_KIND_COUNT][FX_MAX_KEYS]; /* 0: never written */
    bool deleted[SRL_KIND_COUNT][FX_MAX_KEYS];
} fx_model_t;

/* Order "key|version" lines by key, bytewise (PostgreSQL's COLLATE "C"). */
static __attribute__((unused)) int fx_cmp_str(const void *a, const void *b)
{
    const char *x = *(char *const *)a, *y = *(char *const *)b;
    size_t lx = (size_t)(strrchr(x, '|') - x), ly = (size_t)(strrchr(y, '|') - y);
    int c = memcmp(x, y, lx < ly ? lx : ly);
    return c ? c : (lx > ly) - (lx < ly);
}

/* "key|version" lines of the live keys of a kind, sorted bytewise. */
static __attribute__((unused)) char *fx_model_lines(const fx_model_t *m, srl_kind_t k)
{
    char **lines = calloc((size_t)m->count[k] + 1, sizeof(char *));
    size_t n = 0, total = 1;
    for (int i = 0; i < m->count[k]; i++)
        if (m->version[k][i] > 0 && !m->deleted[k][i]) {
            lines[n] = fx_strf("%s|%" PRId64, m->key[k][i], m->version[k][i]);
            total += strlen(lines[n++]) + 1;
        }
    qsort(lines, n, sizeof(char *), fx_cmp_str);
    char *out = calloc(total, 1);
    for (size_t i = 0; i < n; i++) {
        if (i)
            strcat(out, "\n");
        strcat(out, lines[i]);
        free(lines[i]);
    }
    free(lines);
    return out;
}

/* Each kind's live keys and versions in a store, one "key|version" line
 * each, in the order fx_model_lines uses. */
static const char *const fx_model_sql[SRL_KIND_COUNT] __attribute__((unused)) = {
    "SELECT coalesce(string_agg(name || '|' || version, E'\\n' ORDER BY name COLLATE \"C\"), '')"
    " FROM assessment_types",
    "SELECT coalesce(string_agg(key || '|' || version, E'\\n' ORDER BY key COLLATE \"C\"), '')"
    " FROM vulnerability_assessments",
    "SELECT coalesce(string_agg(name || '|' || version, E'\\n' ORDER BY name COLLATE \"C\"), '')"
    " FROM policies"};

/* Whether the spoke at dsn holds exactly the model's live keys at their
 * versions, for the kinds in mask (bit = 1 << kind). */
static __attribute__((unused)) bool fx_model_matches(const fx_model_t *m, const char *dsn,
                                                     unsigned mask)
{
    bool same = true;
    for (int k = 0; same && k < SRL_KIND_COUNT; k++) {
        if (!(mask & (1u << k)))
            continue;
        char *want = fx_model_lines(m, (srl_kind_t)k);
        char *got = fx_query(dsn, fx_model_sql[k]);
        same = strcmp(want, got) == 0;
        free(want);
        free(got);
    }
    return same;
}

/* Assert the spoke at dsn holds exactly the model's live keys at their
 * versions, for the kinds in mask (bit = 1 << kind). */
static __attribute__((unused)) void fx_model_check(const fx_model_t *m, const char *dsn,
                                                   unsigned mask)
{
    for (int k = 0; k < SRL_KIND_COUNT; k++) {
        if (!(mask & (1u << k)))
            continue;
        char *want = fx_model_lines(m, (srl_kind_t)k);
        char *got = fx_query(dsn, fx_model_sql[k]);
        if (strcmp(want, got) != 0) {
            FILE *fw = fopen("/tmp/fx_want.txt", "w"), *fg = fopen("/tmp/fx_got.txt", "w");
            if (fw && fg) {
                fprintf(fw, "%s\n", want);
                fprintf(fg, "%s\n", got);
            }
            if (fw)
                fclose(fw);
            if (fg)
                fclose(fg);
            fprintf(stderr, "kind %s differs: diff /tmp/fx_want.txt /tmp/fx_got.txt\n",
                    srl_kind_name((srl_kind_t)k));
            fail_msg("spoke differs from the expected state (kind %s)",
                     srl_kind_name((srl_kind_t)k));
        }
        free(want);
        free(got);
    }
}

static __attribute__((unused)) void fx_model_free(fx_model_t *m)
{
    for (int k = 0; k < SRL_KIND_COUNT; k++)
        for (int i = 0; i < m->count[k]; i++)
            free(m->key[k][i]);
}

/* Random changes: puts (some stale, some duplicates) and deletes, spread
 * over nkeys[kind] keys; the model follows what must win. */
static __attribute__((unused)) void
fx_random_changes(fx_t *fx, fx_model_t *m, const int nkeys[SRL_KIND_COUNT], int ops, unsigned *seed)
{
    for (int k = 0; k < SRL_KIND_COUNT; k++) {
        for (int i = m->count[k]; i < nkeys[k]; i++) {
            srl_entity_t e;
            char key[512];
            fx_make((srl_kind_t)k, i, seed, &e);
            assert_true(srl_key_build(&e, key, sizeof(key)) > 0);
            m->key[k][i] = strdup(key);
            srl_entity_clear(&e);
        }
        if (m->count[k] < nkeys[k])
            m->count[k] = nkeys[k];
    }
    for (int op = 0; op < ops; op++) {
        unsigned r = fx_rand(seed) % 100;
        srl_kind_t k = r < 10   ? SRL_KIND_ASSESSMENT_TYPE
                       : r < 85 ? SRL_KIND_ASSESSMENT
                                : SRL_KIND_POLICY;
        int i = (int)(fx_rand(seed) % (unsigned)nkeys[k]);
        unsigned what = fx_rand(seed) % 100;
        if (what < 25 && m->version[k][i] > 0 && !m->deleted[k][i]) {
            m->version[k][i] = fx_delete(fx, k, m->key[k][i]);
            m->deleted[k][i] = true;
        } else if (what < 30 && m->version[k][i] > 1) {
            /* stale: an older version arriving late must lose */
            srl_entity_t e;
            fx_make(k, i, seed, &e);
            fx_put_at(fx, &e, m->version[k][i] - 1);
            srl_entity_clear(&e);
        } else {
            srl_entity_t e;
            fx_make(k, i, seed, &e);
            m->version[k][i] = fx_put(fx, &e);
            m->deleted[k][i] = false;
            if (what >= 97) /* a duplicate of the same record */
                fx_put_at(fx, &e, m->version[k][i]);
            srl_entity_clear(&e);
        }
    }
}

/* Whether any record with key is still on topic (read from the start to
 * the high watermark of every partition). */
static __attribute__((unused)) bool fx_topic_has_key(fx_t *fx, const char *topic, const char *key)
{
    char eb[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", srl_test_kafka(), eb, sizeof(eb));
    rd_kafka_conf_set(conf, "group.id", "fx-reader", eb, sizeof(eb));
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", eb, sizeof(eb));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, eb, sizeof(eb));
    assert_non_null(rk);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(3);
    int64_t high[3];
    int open = 0;
    for (int p = 0; p < 3; p++) {
        int64_t lo;
        assert_int_equal(rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &high[p], 10000), 0);
        if (high[p] > lo) {
            rd_kafka_topic_partition_list_add(l, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
            open++;
        }
    }
    rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    bool found = false, done[3] = {false, false, false};
    long long end = srl_test_now_ms() + 20000;
    while (open > 0 && srl_test_now_ms() < end) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m)
            continue;
        if (!m->err && m->key && m->key_len == strlen(key) && memcmp(m->key, key, m->key_len) == 0)
            found = true;
        if (!m->err && m->offset + 1 >= high[m->partition] && !done[m->partition]) {
            done[m->partition] = true;
            open--;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    (void)fx;
    return found;
}

/* ---- the consumer as a child process ---- */

/* Start sysrepl-consumer for the spoke at dsn; extra: more argv entries
 * (NULL-terminated, may be NULL). Output goes to /tmp/<instance>.log. */
static __attribute__((unused)) pid_t
fx_consumer_start(fx_t *fx, const char *dsn, const char *instance, const char *const *extra)
{
    const char *build = getenv("SRL_BUILD_DIR");
    char bin[1024], logpath[512];
    snprintf(bin, sizeof(bin), "%s/consumer/sysrepl-consumer", build ? build : "build-cons");
    snprintf(logpath, sizeof(logpath), "/tmp/%s.log", instance);
    char *args[64];
    int n = 0;
    args[n++] = bin;
    args[n++] = "-X";
    args[n++] = fx_strf("instance.id=%s", instance);
    args[n++] = "-X";
    args[n++] = fx_strf("store.dsn=%s", dsn);
    args[n++] = "-X";
    args[n++] = fx_strf("topic.prefix=%s", fx->prefix);
    args[n++] = "-X";
    args[n++] = fx_strf("kafka.bootstrap.servers=%s", srl_test_kafka());
    args[n++] = "-X";
    args[n++] = "stats.interval_ms=1000";
    for (size_t i = 0; extra && extra[i] && n < 62; i++)
        args[n++] = (char *)extra[i];
    args[n] = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        FILE *f = freopen(logpath, "a", stderr);
        (void)f;
        execv(bin, args);
        fprintf(stderr, "exec %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    for (int i = 2; i <= 8; i += 2) /* the fx_strf ones above */
        free(args[i]);
    return pid;
}

/* Wait for pid to exit within timeout_ms; returns its exit status, or
 * fails the test (after killing it) on a timeout. */
static __attribute__((unused)) int fx_consumer_wait(pid_t pid, int timeout_ms)
{
    long long end = srl_test_now_ms() + timeout_ms;
    int status;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (srl_test_now_ms() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            fail_msg("consumer %d did not exit within %d ms", (int)pid, timeout_ms);
        }
        usleep(20000);
    }
}

/* Run the consumer until it is caught up; asserts exit status 0. */
static __attribute__((unused)) void fx_consumer_sync(fx_t *fx, const char *dsn,
                                                     const char *instance, const char *const *extra)
{
    const char *args[16];
    size_t n = 0;
    args[n++] = "--until-caught-up";
    for (size_t i = 0; extra && extra[i] && n < 15; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    pid_t pid = fx_consumer_start(fx, dsn, instance, args);
    assert_int_equal(fx_consumer_wait(pid, 120000), 0);
}

#endif
