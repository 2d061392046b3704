/* test_bridge_transports.c - the http transports against a real
 * sysrepl-bridge and broker: the producer's http sink marks records
 * delivered only after the bridge answered 200, retries through a bridge
 * restart, and fails fatally on a wrong key; the consumer's http source
 * reads exactly what is on the topics, long-polls for news, reports the
 * partitions' state, and survives a bridge restart.
 *
 * The transports come from the programs' core libraries (the consumer and
 * producer programs choose them by `transport`). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>

#include "support/support.h"
#include "integration/bridge_fixture.h"

#include "sink.h"
#include "sink_http.h"
#include "source.h"
#include "source_http.h"

#define N 30

typedef struct fixture {
    bf_bridge_t br;
    char topic[256];
    srl_registry_t *reg;
    uint8_t *values[N];
    size_t lens[N];
    char keys[N][32];
    srl_config_t *ccfg, *pcfg;
} fixture_t;

static srl_config_t *client_cfg(fixture_t *f, unsigned prog, const char *key)
{
    char kv[512], err[256];
    srl_config_t *cfg = srl_config_new(prog);
    snprintf(kv, sizeof(kv), "bridge.url=http://127.0.0.1:%d", f->br.port);
    assert_true(srl_config_set_override(cfg, kv, err, sizeof(err)));
    snprintf(kv, sizeof(kv), "bridge.api_key=%s", key);
    assert_true(srl_config_set_override(cfg, kv, err, sizeof(err)));
    snprintf(kv, sizeof(kv), "topic.prefix=%s", f->br.prefix);
    assert_true(srl_config_set_override(cfg, kv, err, sizeof(err)));
    assert_true(srl_config_set_override(cfg, "bridge.timeout_ms=10000", err, sizeof(err)));
    return cfg;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    char err[256];
    *state = f;
    char *prefix = srl_test_unique_name("btt");
    bf_init(&f->br, prefix);
    free(prefix);
    snprintf(f->topic, sizeof(f->topic), "%s.assessment-types", f->br.prefix);
    f->reg = srl_registry_new(err, sizeof(err));
    for (int i = 0; i < N; i++) {
        snprintf(f->keys[i], sizeof(f->keys[i]), "t-%03d", i);
        f->values[i] = bf_encode_type(f->reg, f->keys[i], 10 + i, &f->lens[i]);
    }
    bf_start(&f->br);
    f->ccfg = client_cfg(f, SRL_PROG_CONSUMER, BF_KEY);
    f->pcfg = client_cfg(f, SRL_PROG_PRODUCER, BF_KEY);
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    bf_stop(&f->br);
    for (int i = 0; i < N; i++)
        free(f->values[i]);
    srl_registry_free(f->reg);
    srl_config_free(f->ccfg);
    srl_config_free(f->pcfg);
    free(f);
    return 0;
}

static void batch_of(fixture_t *f, srl_sink_batch_t *b, srl_record_t *recs, int from, int to)
{
    memset(b, 0, sizeof(*b));
    for (int i = from; i < to; i++) {
        srl_record_t *r = &recs[i - from];
        memset(r, 0, sizeof(*r));
        r->kind = SRL_KIND_ASSESSMENT_TYPE;
        r->partition = r->offset = -1;
        r->key = f->keys[i];
        r->key_len = strlen(f->keys[i]);
        r->value = f->values[i];
        r->value_len = f->lens[i];
        r->version = 10 + i;
        r->origin = "hub-1";
    }
    b->records = recs;
    b->count = (size_t)(to - from);
}

static void poll_until_done(srl_sink_t *sink, srl_sink_batch_t *b, int timeout_ms)
{
    long long deadline = srl_test_now_ms() + timeout_ms;
    while (b->pending && srl_test_now_ms() < deadline)
        sink->ops->poll(sink, 100);
}

/* Read every record of the topic through the http source, from 0 to the
 * end; returns how many, and checks each against what was published. */
static size_t read_all(fixture_t *f, srl_source_t *src)
{
    char err[512];
    srl_source_pos_t pos[2] = {{f->topic, SRL_KIND_ASSESSMENT_TYPE, 0, 0},
                               {f->topic, SRL_KIND_ASSESSMENT_TYPE, 1, 0}};
    srl_source_batch_t batch = {0};
    size_t seen = 0;
    for (int rounds = 0; rounds < 50; rounds++) {
        srl_source_rc_t rc = src->ops->fetch(src, pos, 2, 7, 0, &batch, err, sizeof(err));
        if (rc != SRL_SOURCE_OK)
            fail_msg("fetch: %s", err);
        for (size_t i = 0; i < batch.count; i++) {
            const srl_record_t *r = &batch.records[i];
            int k = (int)strtol(r->key + 2, NULL, 10);
            assert_true(k >= 0 && k < N);
            assert_int_equal(r->kind, SRL_KIND_ASSESSMENT_TYPE);
            assert_int_equal(r->version, 10 + k);
            assert_string_equal(r->origin, "hub-1");
            assert_int_equal(r->value_len, f->lens[k]);
            assert_memory_equal(r->value, f->values[k], r->value_len);
            srl_source_pos_t *p = &pos[r->partition];
            assert_true(r->offset >= p->offset);
            p->offset = r->offset + 1;
            seen++;
        }
        bool all_eof = batch.eof[0] && batch.eof[1];
        for (int p = 0; p < 2; p++)
            if (batch.eof[p] && batch.high[p] > pos[p].offset)
                pos[p].offset = batch.high[p];
        src->ops->release(src, &batch);
        if (all_eof)
            break;
    }
    srl_source_batch_free(&batch);
    return seen;
}

/* A published batch is delivered (pending 0, failed 0) only once the
 * bridge acknowledged it, and the http source reads it back byte for byte. */
static void sink_http_delivers_and_source_http_reads_back(void **state)
{
    fixture_t *f = *state;
    char err[512];
    srl_sink_t *sink = srl_sink_http_new(f->pcfg, err, sizeof(err));
    assert_non_null(sink);
    srl_record_t recs[N];
    srl_sink_batch_t b;
    batch_of(f, &b, recs, 0, 20);
    assert_true(sink->ops->publish(sink, &b, err, sizeof(err)));
    assert_int_equal(b.pending, 20);
    assert_int_equal(sink->ops->in_flight(sink), 20);
    poll_until_done(sink, &b, 20000);
    assert_int_equal(b.pending, 0);
    assert_int_equal(b.failed, 0);
    assert_int_equal(sink->ops->in_flight(sink), 0);
    bool empty = true;
    assert_true(sink->ops->topic_empty(sink, SRL_KIND_ASSESSMENT_TYPE, &empty, err, sizeof(err)));
    assert_false(empty);
    sink->ops->close(sink);

    srl_source_t *src = srl_source_http_new(f->ccfg, err, sizeof(err));
    assert_non_null(src);
    int parts = 0;
    assert_int_equal(src->ops->partitions(src, f->topic, &parts, 5000, err, sizeof(err)),
                     SRL_SOURCE_OK);
    assert_int_equal(parts, 2);
    int64_t lo, hi0, hi1, ret;
    assert_int_equal(src->ops->watermarks(src, f->topic, 0, &lo, &hi0, 5000, err, sizeof(err)), 0);
    assert_int_equal(src->ops->watermarks(src, f->topic, 1, &lo, &hi1, 5000, err, sizeof(err)), 0);
    assert_int_equal(hi0 + hi1, 20);
    assert_int_equal(src->ops->tombstone_retention_ms(src, f->topic, &ret, 5000, err, sizeof(err)),
                     0);
    assert_int_equal(ret, 7LL * 24 * 3600 * 1000);
    /* the tail sees acknowledged records a moment after the ack */
    size_t seen = 0;
    for (int tries = 0; tries < 20 && seen < 20; tries++) {
        seen = read_all(f, src);
        if (seen < 20)
            usleep(100000);
    }
    assert_int_equal(seen, 20);
    src->ops->close(src);
}

typedef struct later {
    fixture_t *f;
    int delay_ms;
} later_t;

static void *publish_later(void *arg)
{
    later_t *l = arg;
    char err[256];
    usleep((useconds_t)l->delay_ms * 1000);
    srl_sink_t *sink = srl_sink_http_new(l->f->pcfg, err, sizeof(err));
    srl_record_t recs[N];
    srl_sink_batch_t b;
    batch_of(l->f, &b, recs, 20, 21);
    sink->ops->publish(sink, &b, err, sizeof(err));
    poll_until_done(sink, &b, 20000);
    sink->ops->close(sink);
    return NULL;
}

/* Caught up, a fetch long-polls and returns as soon as a record arrives. */
static void source_http_long_polls_for_news(void **state)
{
    fixture_t *f = *state;
    char err[512];
    srl_source_t *src = srl_source_http_new(f->ccfg, err, sizeof(err));
    int64_t lo, hi[2];
    for (int p = 0; p < 2; p++)
        assert_int_equal(src->ops->watermarks(src, f->topic, p, &lo, &hi[p], 5000, err,
                                              sizeof(err)),
                         0);
    srl_source_pos_t pos[2] = {{f->topic, SRL_KIND_ASSESSMENT_TYPE, 0, hi[0]},
                               {f->topic, SRL_KIND_ASSESSMENT_TYPE, 1, hi[1]}};
    srl_source_batch_t batch = {0};
    pthread_t th;
    later_t l = {f, 700};
    pthread_create(&th, NULL, publish_later, &l);
    long long t0 = srl_test_now_ms();
    size_t got = 0;
    while (got == 0 && srl_test_now_ms() - t0 < 15000) {
        assert_int_equal(src->ops->fetch(src, pos, 2, 100, 10000, &batch, err, sizeof(err)),
                         SRL_SOURCE_OK);
        got = batch.count;
        if (got)
            assert_string_equal(batch.records[0].key, "t-020");
        src->ops->release(src, &batch);
    }
    long long took = srl_test_now_ms() - t0;
    pthread_join(th, NULL);
    assert_int_equal(got, 1);
    assert_true(took >= 500 && took < 8000);
    srl_source_batch_free(&batch);
    src->ops->close(src);
}

/* With the bridge down, fetch says RETRY and publish keeps its records
 * pending; when the bridge is back both carry on with no loss. */
static void transports_survive_a_bridge_restart(void **state)
{
    fixture_t *f = *state;
    char err[512];
    srl_source_t *src = srl_source_http_new(f->ccfg, err, sizeof(err));
    srl_sink_t *sink = srl_sink_http_new(f->pcfg, err, sizeof(err));
    srl_source_pos_t pos[1] = {{f->topic, SRL_KIND_ASSESSMENT_TYPE, 0, 0}};
    srl_source_batch_t batch = {0};
    assert_int_equal(src->ops->fetch(src, pos, 1, 10, 0, &batch, err, sizeof(err)), SRL_SOURCE_OK);
    src->ops->release(src, &batch);

    bf_stop(&f->br);
    assert_int_equal(src->ops->fetch(src, pos, 1, 10, 0, &batch, err, sizeof(err)),
                     SRL_SOURCE_RETRY);
    assert_non_null(strstr(err, "bridge not reachable"));
    srl_record_t recs[N];
    srl_sink_batch_t b;
    batch_of(f, &b, recs, 21, N);
    assert_true(sink->ops->publish(sink, &b, err, sizeof(err)));
    sink->ops->poll(sink, 1500);
    assert_int_equal(b.pending, (size_t)(N - 21)); /* not delivered, not failed */
    assert_int_equal(b.failed, 0);

    bf_start(&f->br);
    poll_until_done(sink, &b, 30000);
    assert_int_equal(b.pending, 0);
    assert_int_equal(b.failed, 0);
    size_t seen = 0;
    for (int tries = 0; tries < 20 && seen < N; tries++) {
        seen = read_all(f, src);
        if (seen < N)
            usleep(100000);
    }
    assert_int_equal(seen, N);
    srl_source_batch_free(&batch);
    sink->ops->close(sink);
    src->ops->close(src);
}

/* A wrong key is not retried: the records fail with failed_fatal, and the
 * source says FATAL naming the reason. */
static void transports_wrong_key_is_fatal(void **state)
{
    fixture_t *f = *state;
    char err[512];
    srl_config_t *pc = client_cfg(f, SRL_PROG_PRODUCER, "not-the-key");
    srl_config_t *cc = client_cfg(f, SRL_PROG_CONSUMER, "not-the-key");
    srl_sink_t *sink = srl_sink_http_new(pc, err, sizeof(err));
    srl_record_t recs[N];
    srl_sink_batch_t b;
    batch_of(f, &b, recs, 0, 2);
    assert_true(sink->ops->publish(sink, &b, err, sizeof(err)));
    poll_until_done(sink, &b, 10000);
    assert_int_equal(b.pending, 0);
    assert_int_equal(b.failed, 2);
    assert_true(b.failed_fatal);
    assert_non_null(strstr(b.error, "401"));
    sink->ops->close(sink);

    srl_source_t *src = srl_source_http_new(cc, err, sizeof(err));
    int parts;
    assert_int_equal(src->ops->partitions(src, f->topic, &parts, 5000, err, sizeof(err)),
                     SRL_SOURCE_FATAL);
    assert_non_null(strstr(err, "unknown API key"));
    src->ops->close(src);
    srl_config_free(pc);
    srl_config_free(cc);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sink_http_delivers_and_source_http_reads_back),
        cmocka_unit_test(source_http_long_polls_for_news),
        cmocka_unit_test(transports_survive_a_bridge_restart),
        cmocka_unit_test(transports_wrong_key_is_fatal),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
