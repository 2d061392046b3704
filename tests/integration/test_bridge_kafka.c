/* test_bridge_kafka.c - sysrepl-bridge against the real broker, checked
 * from the Kafka side: a pull serves exactly the bytes, keys and headers on
 * the topic (from the reader pool below the window and from the window); a
 * push puts exactly the pushed bytes on the topic with the right key and
 * headers; a batch with one bad record puts nothing on the topic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <librdkafka/rdkafka.h>

#include "support/support.h"
#include "sysrepl/codec.h"
#include "sysrepl/framing.h"
#include "sysrepl/kafka.h"
#include "sysrepl/keys.h"
#include "integration/bridge_fixture.h"

#define KEY "push-and-pull-key"
#define NRECS 40

typedef struct fixture {
    bf_bridge_t br;
    char topic[256];
    rd_kafka_t *rk; /* a plain producer for writing straight to the topic */
    srl_registry_t *reg;
    uint8_t *values[NRECS];
    size_t value_lens[NRECS];
} fixture_t;

static void produce(fixture_t *f, int from, int to)
{
    for (int i = from; i < to; i++) {
        char key[64], ver[24];
        snprintf(key, sizeof(key), "type-%03d", i);
        snprintf(ver, sizeof(ver), "%d", 100 + i);
        rd_kafka_headers_t *h = rd_kafka_headers_new(2);
        rd_kafka_header_add(h, SRL_HDR_VERSION, -1, ver, -1);
        rd_kafka_header_add(h, SRL_HDR_ORIGIN, -1, "hub-1", -1);
        bool tomb = i % 10 == 9;
        assert_int_equal(rd_kafka_producev(f->rk, RD_KAFKA_V_TOPIC(f->topic),
                                           RD_KAFKA_V_PARTITION(0),
                                           RD_KAFKA_V_KEY(key, strlen(key)),
                                           RD_KAFKA_V_VALUE(tomb ? NULL : f->values[i],
                                                            tomb ? 0 : f->value_lens[i]),
                                           RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                           RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END),
                         0);
    }
    assert_int_equal(rd_kafka_flush(f->rk, 15000), 0);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    char err[512];
    *state = f;
    char *prefix = srl_test_unique_name("btk");
    bf_init(&f->br, prefix);
    free(prefix);
    snprintf(f->topic, sizeof(f->topic), "%s.assessment-types", f->br.prefix);
    f->reg = srl_registry_new(err, sizeof(err));
    assert_non_null(f->reg);
    for (int i = 0; i < NRECS; i++) {
        char key[64];
        snprintf(key, sizeof(key), "type-%03d", i);
        f->values[i] = bf_encode_type(f->reg, key, 100 + i, &f->value_lens[i]);
    }

    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", srl_test_kafka(), err, sizeof(err));
    f->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    assert_non_null(f->rk);
    /* The topic exists with records before the bridge starts, so the first
     * pull reads below the bridge's window (the reader pool). */
    srl_topic_settings_t s = {.partitions = 2,
                              .replication_factor = 1,
                              .min_insync_replicas = 1,
                              .segment_ms = 3600000,
                              .delete_retention_ms = 86400000};
    const char *topics[1] = {f->topic};
    for (int tries = 0;
         !srl_kafka_ensure_topics(f->rk, &s, topics, NULL, 1, 15000, err, sizeof(err)); tries++) {
        if (tries > 20)
            fail_msg("creating %s: %s", f->topic, err);
        usleep(300000);
    }
    produce(f, 0, NRECS / 2);
    bf_start(&f->br);
    produce(f, NRECS / 2, NRECS);
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    bf_stop(&f->br);
    for (int i = 0; i < NRECS; i++)
        free(f->values[i]);
    if (f->rk)
        rd_kafka_destroy(f->rk);
    srl_registry_free(f->reg);
    free(f);
    return 0;
}

/* Pulling a partition from 0, batch by batch with the offsets the bridge
 * hands back, gives every record written - bytes, key, headers, offsets. */
static void bridge_pull_serves_topic_bytes_exactly(void **state)
{
    fixture_t *f = *state;
    int64_t offset = 0;
    int seen = 0;
    char path[512], err[256];
    while (seen < NRECS) {
        bf_body_t b;
        snprintf(path, sizeof(path),
                 "/api/replication/v1/topics/assessment-types/partitions/0/records?offset=%" PRId64
                 "&max=7&wait_ms=2000",
                 offset);
        assert_int_equal(bf_http(&f->br, "GET", path, NULL, NULL, 0, &b), 200);
        srl_framing_batch_t batch;
        if (!srl_framing_decode(b.data, b.len, SRL_KIND_ASSESSMENT_TYPE, 0, &batch, NULL, err,
                                sizeof(err)))
            fail_msg("pull at %" PRId64 ": %s", offset, err);
        assert_true(batch.count > 0 && batch.count <= 7);
        for (size_t i = 0; i < batch.count; i++) {
            const srl_record_t *r = &batch.records[i];
            char key[64];
            snprintf(key, sizeof(key), "type-%03d", seen);
            assert_int_equal(r->offset, seen);
            assert_int_equal(r->partition, 0);
            assert_int_equal(r->key_len, strlen(key));
            assert_memory_equal(r->key, key, r->key_len);
            assert_int_equal(r->version, 100 + seen);
            assert_string_equal(r->origin, "hub-1");
            if (seen % 10 == 9) {
                assert_null(r->value);
            } else {
                assert_int_equal(r->value_len, f->value_lens[seen]);
                assert_memory_equal(r->value, f->values[seen], r->value_len);
            }
            seen++;
        }
        offset = strtoll(b.next, NULL, 10);
        assert_int_equal(offset, seen);
        assert_true(strtoll(b.high, NULL, 10) >= NRECS);
        srl_framing_batch_free(&batch);
        free(b.data);
    }
}

static int64_t high_of(fixture_t *f, int32_t p)
{
    int64_t lo, hi;
    assert_int_equal(rd_kafka_query_watermark_offsets(f->rk, f->topic, p, &lo, &hi, 10000), 0);
    return hi;
}

/* A pushed batch lands on the topic as is: same key bytes, same value
 * bytes, headers sysrepl.version and sysrepl.origin. */
static void bridge_push_writes_key_headers_and_bytes(void **state)
{
    fixture_t *f = *state;
    const int64_t before[2] = {high_of(f, 0), high_of(f, 1)};
    srl_framing_buf_t buf = {0};
    char err[256];
    size_t start = srl_framing_begin(&buf);
    for (int i = 0; i < 3; i++) {
        char key[64];
        snprintf(key, sizeof(key), "type-%03d", i);
        srl_record_t r = {.kind = SRL_KIND_ASSESSMENT_TYPE,
                          .partition = -1,
                          .offset = -1,
                          .key = key,
                          .key_len = strlen(key),
                          .value = f->values[i],
                          .value_len = f->value_lens[i],
                          .version = 100 + i,
                          .origin = "hub-1"};
        assert_true(srl_framing_add(&buf, &r, err, sizeof(err)));
    }
    srl_record_t tomb = {.key = KEY, .key_len = strlen(KEY), .version = 777, .origin = "hub-1"};
    assert_true(srl_framing_add(&buf, &tomb, err, sizeof(err)));
    assert_true(srl_framing_finish(&buf, start, 4));
    bf_body_t b;
    assert_int_equal(bf_http(&f->br, "POST", "/api/replication/v1/topics/assessment-types/records",
                             SRL_FRAMING_MEDIA_TYPE, buf.data, buf.len, &b),
                     200);
    assert_non_null(strstr(b.data, "\"accepted\":4"));
    free(b.data);
    srl_framing_buf_free(&buf);

    /* Read what the push added, straight from Kafka. */
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", srl_test_kafka(), err, sizeof(err));
    rd_kafka_conf_set(conf, "group.id", "btk-check", err, sizeof(err));
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err));
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    rd_kafka_topic_partition_list_t *tpl = rd_kafka_topic_partition_list_new(2);
    rd_kafka_topic_partition_list_add(tpl, f->topic, 0)->offset = before[0];
    rd_kafka_topic_partition_list_add(tpl, f->topic, 1)->offset = before[1];
    rd_kafka_assign(c, tpl);
    rd_kafka_topic_partition_list_destroy(tpl);
    int got = 0;
    long long deadline = srl_test_now_ms() + 15000;
    while (got < 4 && srl_test_now_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 500);
        if (!m)
            continue;
        if (!m->err) {
            char origin[64];
            assert_true(srl_kafka_header_str(m, SRL_HDR_ORIGIN, origin, sizeof(origin)));
            assert_string_equal(origin, "hub-1");
            if (m->key_len == strlen(KEY) && memcmp(m->key, KEY, m->key_len) == 0) {
                assert_null(m->payload);
                assert_int_equal(srl_kafka_header_version(m), 777);
            } else {
                int i = (int)strtol((const char *)m->key + 5, NULL, 10); /* "type-NNN" */
                assert_true(i >= 0 && i < 3);
                assert_int_equal(srl_kafka_header_version(m), 100 + i);
                assert_int_equal(m->len, f->value_lens[i]);
                assert_memory_equal(m->payload, f->values[i], m->len);
            }
            got++;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    assert_int_equal(got, 4);
}

/* One bad record (its version differs from the value's) rejects the
 * batch with 422 naming it, and nothing of the batch reaches the topic. */
static void bridge_push_bad_record_writes_nothing(void **state)
{
    fixture_t *f = *state;
    int64_t before = high_of(f, 0) + high_of(f, 1);
    srl_framing_buf_t buf = {0};
    char err[256];
    size_t start = srl_framing_begin(&buf);
    for (int i = 0; i < 5; i++) {
        char key[64];
        snprintf(key, sizeof(key), "type-%03d", i);
        srl_record_t r = {.key = key,
                          .key_len = strlen(key),
                          .value = f->values[i],
                          .value_len = f->value_lens[i],
                          .version = i == 3 ? 5 : 100 + i,
                          .origin = "hub-1"};
        assert_true(srl_framing_add(&buf, &r, err, sizeof(err)));
    }
    assert_true(srl_framing_finish(&buf, start, 5));
    bf_body_t b;
    assert_int_equal(bf_http(&f->br, "POST", "/api/replication/v1/topics/assessment-types/records",
                             SRL_FRAMING_MEDIA_TYPE, buf.data, buf.len, &b),
                     422);
    assert_non_null(strstr(b.data, "record 3: version 5 differs"));
    assert_non_null(strstr(b.data, "\"record\":3"));
    free(b.data);
    srl_framing_buf_free(&buf);
    usleep(500000);
    assert_int_equal(high_of(f, 0) + high_of(f, 1), before);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bridge_pull_serves_topic_bytes_exactly),
        cmocka_unit_test(bridge_push_writes_key_headers_and_bytes),
        cmocka_unit_test(bridge_push_bad_record_writes_nothing),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
