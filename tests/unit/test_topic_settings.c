/* test_topic_settings.c - the topic defaults follow the broker count
 * (replication factor 3 and min.insync.replicas 2 on a cluster of three,
 * 1 and 1 on a single broker), and a min.insync.replicas above the
 * replication factor is refused with a message naming both keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sysrepl/kafka.h"

static srl_topic_settings_t settings(int rf, int min_isr)
{
    return (srl_topic_settings_t){.partitions = 3,
                                  .replication_factor = rf,
                                  .min_insync_replicas = min_isr,
                                  .segment_ms = 3600000,
                                  .delete_retention_ms = 604800000};
}

/* 0 ("auto") resolves to min(3, brokers), and min.insync.replicas 2 once
 * there are three replicas. */
static void topic_settings_resolve_defaults_follow_broker_count(void **state)
{
    (void)state;
    static const struct {
        int brokers, rf, min_isr;
    } cases[] = {{1, 1, 1}, {2, 2, 1}, {3, 3, 2}, {5, 3, 2}};
    char err[256];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        srl_topic_settings_t s = settings(0, 0);
        assert_true(srl_topic_settings_resolve(&s, cases[i].brokers, err, sizeof(err)));
        assert_int_equal(s.replication_factor, cases[i].rf);
        assert_int_equal(s.min_insync_replicas, cases[i].min_isr);
    }
}

/* Values set by the operator are kept as they are. */
static void topic_settings_resolve_keeps_explicit_values(void **state)
{
    (void)state;
    char err[256];
    srl_topic_settings_t s = settings(1, 0);
    assert_true(srl_topic_settings_resolve(&s, 3, err, sizeof(err)));
    assert_int_equal(s.replication_factor, 1);
    assert_int_equal(s.min_insync_replicas, 1);
    s = settings(0, 3);
    assert_true(srl_topic_settings_resolve(&s, 4, err, sizeof(err)));
    assert_int_equal(s.replication_factor, 3);
    assert_int_equal(s.min_insync_replicas, 3);
}

/* min.insync.replicas > replication factor: refused, both keys and values
 * named; with the factor from the broker count, the message says so. */
static void topic_settings_resolve_refuses_min_isr_above_rf(void **state)
{
    (void)state;
    char err[256];
    srl_topic_settings_t s = settings(2, 3);
    assert_false(srl_topic_settings_resolve(&s, 3, err, sizeof(err)));
    assert_non_null(strstr(err,
                           "topic.min_insync_replicas = 3 is greater than "
                           "topic.replication_factor = 2: no write could ever be acknowledged"));
    s = settings(0, 2);
    assert_false(srl_topic_settings_resolve(&s, 1, err, sizeof(err)));
    assert_non_null(strstr(err, "topic.replication_factor = 1 (0: the smaller of 3 and the 1 "
                                "broker(s) listed)"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(topic_settings_resolve_defaults_follow_broker_count),
        cmocka_unit_test(topic_settings_resolve_keeps_explicit_values),
        cmocka_unit_test(topic_settings_resolve_refuses_min_isr_above_rf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
