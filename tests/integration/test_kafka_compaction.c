/* The local Kafka broker compacts, as sysrepl's topics need: after the
 * cleaner ran, a read from offset 0 returns only the latest value of each
 * key, and a deleted key (tombstone) disappears entirely once the topic's
 * delete.retention.ms has passed. Talks to the broker in SRL_TEST_KAFKA
 * through librdkafka (Admin API, producer, assign()ed consumer).
 *
 * The cleaner never touches the active segment, so the test keeps producing
 * a filler key while it waits: with segment.ms=100 every filler record rolls
 * a new segment and leaves the older ones cleanable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "support/support.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NKEYS = 5, NVERSIONS = 20, NDELETED = 2 }; /* key-3, key-4 get tombstones */
static const int WAIT_MS = 120000;

struct fixture {
    const char *bootstrap;
    char *topic;
    rd_kafka_t *rk; /* producer, kept for the filler records */
    int filler;     /* filler records produced so far */
};

/* What one read from offset 0 saw. */
struct scan {
    int records[NKEYS];     /* records per key, tombstones included */
    char latest[NKEYS][32]; /* last value seen per key, "" for a tombstone */
    int filler;             /* filler records */
    long long high_watermark;
};

static void key_name(int i, char *out, size_t size)
{
    snprintf(out, size, "key-%d", i);
}

static rd_kafka_conf_t *base_conf(const char *bootstrap)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[256];
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof errstr) !=
        RD_KAFKA_CONF_OK)
        fail_msg("bootstrap.servers=%s: %s", bootstrap, errstr);
    return conf;
}

static void conf_set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
    char errstr[256];
    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
        fail_msg("librdkafka property %s=%s: %s", name, value, errstr);
}

static rd_kafka_t *new_client(rd_kafka_type_t type, rd_kafka_conf_t *conf)
{
    char errstr[256];
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof errstr); /* owns conf on success */
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        fail_msg("rd_kafka_new: %s", errstr);
    }
    return rk;
}

/* Waits for the result event of one admin request on queue q. */
static rd_kafka_event_t *admin_wait(rd_kafka_queue_t *q, const char *what)
{
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    if (ev == NULL)
        fail_msg("%s: no answer from the broker within 30 s", what);
    if (rd_kafka_event_error(ev))
        fail_msg("%s: %s", what, rd_kafka_event_error_string(ev));
    return ev;
}

static void create_compacted_topic(rd_kafka_t *rk, const char *topic)
{
    char errstr[256];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, 1, 1, errstr, sizeof errstr);
    assert_non_null(nt);
    static const char *const configs[][2] = {
        {"cleanup.policy", "compact"},         {"segment.ms", "100"},
        {"min.cleanable.dirty.ratio", "0.01"}, {"delete.retention.ms", "1000"},
        {"min.compaction.lag.ms", "0"},
    };
    for (size_t i = 0; i < sizeof configs / sizeof configs[0]; i++)
        assert_int_equal(rd_kafka_NewTopic_set_config(nt, configs[i][0], configs[i][1]),
                         RD_KAFKA_RESP_ERR_NO_ERROR);

    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    rd_kafka_event_t *ev = admin_wait(q, "CreateTopics");
    size_t n;
    const rd_kafka_topic_result_t **res =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    assert_int_equal(n, 1);
    if (rd_kafka_topic_result_error(res[0]))
        fail_msg("creating topic %s: %s", topic, rd_kafka_topic_result_error_string(res[0]));
    rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
}

static void delete_topic(rd_kafka_t *rk, const char *topic)
{
    rd_kafka_DeleteTopic_t *dt = rd_kafka_DeleteTopic_new(topic);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_DeleteTopics(rk, &dt, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    if (ev == NULL || rd_kafka_event_error(ev))
        print_error("warning: deleting topic %s failed\n", topic);
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_DeleteTopic_destroy(dt);
}

/* Produces key=value (value NULL: a tombstone) and waits for the ack. */
static void produce(rd_kafka_t *rk, const char *topic, const char *key, const char *value)
{
    rd_kafka_resp_err_t err = rd_kafka_producev(
        rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0), RD_KAFKA_V_KEY(key, strlen(key)),
        RD_KAFKA_V_VALUE((void *)value, value ? strlen(value) : 0),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    if (err)
        fail_msg("produce %s to %s: %s", key, topic, rd_kafka_err2str(err));
}

static void flush(rd_kafka_t *rk)
{
    rd_kafka_resp_err_t err = rd_kafka_flush(rk, 30000);
    if (err || rd_kafka_outq_len(rk) != 0)
        fail_msg("flush: %s (%d messages not delivered)", rd_kafka_err2str(err),
                 rd_kafka_outq_len(rk));
}

static void delivery_report(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk, (void)opaque;
    if (m->err)
        print_error("delivery failed at offset %lld: %s\n", (long long)m->offset,
                    rd_kafka_err2str(m->err));
}

/* Reads partition 0 from the beginning up to the high watermark. */
static void scan_topic(const struct fixture *f, struct scan *s)
{
    memset(s, 0, sizeof *s);
    rd_kafka_conf_t *conf = base_conf(f->bootstrap);
    /* assign() needs a group.id though nothing is committed to the group. */
    conf_set(conf, "group.id", f->topic);
    conf_set(conf, "enable.auto.commit", "false");
    conf_set(conf, "enable.partition.eof", "true");
    rd_kafka_t *rk = new_client(RD_KAFKA_CONSUMER, conf);

    int64_t lo = 0, hi = 0;
    rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(rk, f->topic, 0, &lo, &hi, 10000);
    if (err)
        fail_msg("watermarks of %s [0]: %s", f->topic, rd_kafka_err2str(err));
    s->high_watermark = hi;

    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, f->topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(rk, parts), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(parts);

    long long deadline = srl_test_now_ms() + 30000;
    bool done = hi == 0;
    while (!done) {
        if (srl_test_now_ms() > deadline)
            fail_msg("reading %s [0] up to offset %lld took over 30 s", f->topic, (long long)hi);
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            done = m->offset >= hi;
        } else if (m->err) {
            fail_msg("consuming %s [0]: %s", f->topic, rd_kafka_message_errstr(m));
        } else {
            char key[32] = "";
            snprintf(key, sizeof key, "%.*s", (int)m->key_len, (const char *)m->key);
            int i = -1;
            if (sscanf(key, "key-%d", &i) == 1 && i >= 0 && i < NKEYS) {
                s->records[i]++;
                snprintf(s->latest[i], sizeof s->latest[i], "%.*s", (int)m->len,
                         m->payload ? (const char *)m->payload : "");
            } else {
                s->filler++;
            }
            done = m->offset >= hi - 1;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

/* One more filler record: rolls the segment so the rest becomes cleanable. */
static void produce_filler(struct fixture *f)
{
    char value[32];
    snprintf(value, sizeof value, "filler-%d", f->filler++);
    produce(f->rk, f->topic, "filler", value);
    flush(f->rk);
}

static bool live_keys_compacted(void *arg)
{
    struct fixture *f = arg;
    struct scan s;
    produce_filler(f);
    scan_topic(f, &s);
    for (int i = 0; i < NKEYS - NDELETED; i++)
        if (s.records[i] != 1)
            return false;
    return true;
}

static bool deleted_keys_gone(void *arg)
{
    struct fixture *f = arg;
    struct scan s;
    produce_filler(f);
    scan_topic(f, &s);
    for (int i = NKEYS - NDELETED; i < NKEYS; i++)
        if (s.records[i] != 0)
            return false;
    return true;
}

/* Without a broker the group setup leaves the state NULL and every test
 * skips (fixture_or_skip): a skip() inside a setup counts as an error. */
static int group_setup(void **state)
{
    *state = NULL;
    const char *bootstrap = getenv("SRL_TEST_KAFKA");
    if (bootstrap == NULL || bootstrap[0] == '\0')
        return 0;
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    *state = f;
    f->bootstrap = bootstrap;
    f->topic = srl_test_unique_name("srl-test-compaction");

    rd_kafka_conf_t *conf = base_conf(f->bootstrap);
    conf_set(conf, "acks", "all");
    conf_set(conf, "linger.ms", "5");
    rd_kafka_conf_set_dr_msg_cb(conf, delivery_report);
    f->rk = new_client(RD_KAFKA_PRODUCER, conf);
    create_compacted_topic(f->rk, f->topic);

    /* NVERSIONS versions of every key, then tombstones for the last two. */
    char key[16], value[32];
    for (int v = 0; v < NVERSIONS; v++) {
        for (int i = 0; i < NKEYS; i++) {
            key_name(i, key, sizeof key);
            snprintf(value, sizeof value, "%s-v%d", key, v);
            produce(f->rk, f->topic, key, value);
        }
    }
    for (int i = NKEYS - NDELETED; i < NKEYS; i++) {
        key_name(i, key, sizeof key);
        produce(f->rk, f->topic, key, NULL);
    }
    flush(f->rk);
    return 0;
}

static int group_teardown(void **state)
{
    struct fixture *f = *state;
    if (f == NULL)
        return 0;
    if (f->rk != NULL) {
        delete_topic(f->rk, f->topic);
        rd_kafka_destroy(f->rk);
    }
    free(f->topic);
    free(f);
    return 0;
}

static struct fixture *fixture_or_skip(void **state)
{
    if (*state == NULL)
        srl_test_kafka(); /* skips the test */
    return *state;
}

/* Before compaction the topic holds every version: the check below is not
 * vacuous. */
static void kafka_topic_holds_every_version_before_compaction(void **state)
{
    struct fixture *f = fixture_or_skip(state);
    struct scan s;
    scan_topic(f, &s);
    assert_true(s.high_watermark >= NKEYS * NVERSIONS + NDELETED);
    int total = 0;
    for (int i = 0; i < NKEYS; i++)
        total += s.records[i];
    /* The cleaner may already be at work; at least one key still has many
     * versions unless it was extraordinarily quick. */
    print_message("before compaction: %d keyed records of %d produced\n", total,
                  NKEYS * NVERSIONS + NDELETED);
    assert_true(total >= NKEYS - NDELETED);
}

/* After the cleaner ran, offset 0 onwards holds exactly one record per live
 * key, and it is the last value produced. */
static void kafka_compaction_keeps_only_latest_value_per_key(void **state)
{
    struct fixture *f = fixture_or_skip(state);
    long long t0 = srl_test_now_ms();
    if (!srl_test_wait_until(live_keys_compacted, f, WAIT_MS))
        fail_msg(
            "topic %s not compacted within %d s (see the broker's server.log, kafka.log.LogCleaner)",
            f->topic, WAIT_MS / 1000);
    print_message("compacted after %lld ms and %d filler records\n", srl_test_now_ms() - t0,
                  f->filler);

    struct scan s;
    scan_topic(f, &s);
    char key[16], want[32];
    for (int i = 0; i < NKEYS - NDELETED; i++) {
        key_name(i, key, sizeof key);
        snprintf(want, sizeof want, "%s-v%d", key, NVERSIONS - 1);
        assert_int_equal(s.records[i], 1);
        assert_string_equal(s.latest[i], want);
    }
    /* A deleted key has at most its tombstone left, never an old value. */
    for (int i = NKEYS - NDELETED; i < NKEYS; i++) {
        assert_in_range(s.records[i], 0, 1);
        if (s.records[i] == 1)
            assert_string_equal(s.latest[i], "");
    }
}

/* Tombstones themselves go once delete.retention.ms (1 s) has passed and the
 * cleaner ran again: a spoke reading from 0 later never sees the key. */
static void kafka_compaction_removes_tombstones_after_delete_retention(void **state)
{
    struct fixture *f = fixture_or_skip(state);
    long long t0 = srl_test_now_ms();
    if (!srl_test_wait_until(deleted_keys_gone, f, WAIT_MS))
        fail_msg("tombstones in %s still there after %d s", f->topic, WAIT_MS / 1000);
    print_message("tombstones gone after %lld ms more\n", srl_test_now_ms() - t0);

    struct scan s;
    scan_topic(f, &s);
    for (int i = 0; i < NKEYS - NDELETED; i++)
        assert_int_equal(s.records[i], 1);
    for (int i = NKEYS - NDELETED; i < NKEYS; i++)
        assert_int_equal(s.records[i], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kafka_topic_holds_every_version_before_compaction),
        cmocka_unit_test(kafka_compaction_keeps_only_latest_value_per_key),
        cmocka_unit_test(kafka_compaction_removes_tombstones_after_delete_retention),
    };
    return cmocka_run_group_tests_name("kafka_compaction", tests, group_setup, group_teardown);
}
