/* Integration: a spoke away longer than the topics keep tombstones
 * (delete.retention.ms) may have missed deletes; on start it notices and
 * rebuilds, so the deleted content is gone (real broker compaction). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "support/support.h"

#include "consumer_fixture.h"

static void consumer_offline_beyond_tombstone_horizon_rebuilds(void **state)
{
    (void)state;
    fx_t fx;
    char spoke[512], key_a[256], key_p[256];
    unsigned seed = 5;
    const char *const fast_cleaning[] = {"delete.retention.ms",       "2000", "segment.ms", "100",
                                         "min.cleanable.dirty.ratio", "0.01", NULL};

    fx_init(&fx, "horizon", fast_cleaning);
    fx_spoke(spoke, sizeof(spoke), "spoke-horizon");
    for (int i = 0; i < 5; i++) {
        srl_entity_t a, p;
        fx_make(SRL_KIND_ASSESSMENT, i, &seed, &a);
        fx_make(SRL_KIND_POLICY, i, &seed, &p);
        fx_put(&fx, &a);
        fx_put(&fx, &p);
        if (i == 1) {
            srl_key_build(&a, key_a, sizeof(key_a));
            srl_key_build(&p, key_p, sizeof(key_p));
        }
        srl_entity_clear(&a);
        srl_entity_clear(&p);
    }
    fx_flush(&fx);
    fx_consumer_sync(&fx, spoke, "horizon-spoke", NULL);
    assert_int_equal(fx_query_int(spoke, "SELECT count(*) FROM vulnerability_assessments"), 5);

    /* While the spoke is stopped: deletes, then enough traffic for the
     * broker to compact the tombstones away. */
    fx_delete(&fx, SRL_KIND_ASSESSMENT, key_a);
    fx_delete(&fx, SRL_KIND_POLICY, key_p);
    fx_flush(&fx);
    long long t0 = srl_test_now_ms(), deadline = t0 + 120000;
    bool gone = false;
    while (!gone && srl_test_now_ms() < deadline) {
        for (int i = 100; i < 130; i++) {
            srl_entity_t a, p;
            fx_make(SRL_KIND_ASSESSMENT, i, &seed, &a);
            fx_make(SRL_KIND_POLICY, i, &seed, &p);
            fx_put(&fx, &a);
            fx_put(&fx, &p);
            srl_entity_clear(&a);
            srl_entity_clear(&p);
        }
        fx_flush(&fx);
        usleep(500000);
        gone = !fx_topic_has_key(&fx, fx.topics[SRL_KIND_ASSESSMENT], key_a) &&
               !fx_topic_has_key(&fx, fx.topics[SRL_KIND_POLICY], key_p);
    }
    print_message("tombstones purged by the broker after %lld ms\n", srl_test_now_ms() - t0);
    assert_true(gone);

    fx_consumer_sync(&fx, spoke, "horizon-spoke", NULL);
    char sql[600];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM vulnerability_assessments WHERE key = '%s'",
             key_a);
    assert_int_equal(fx_query_int(spoke, sql), 0);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM policies WHERE name = '%s'", key_p);
    assert_int_equal(fx_query_int(spoke, sql), 0);
    assert_int_equal(fx_query_int(spoke, "SELECT count(*) FROM vulnerability_assessments"), 34);
    /* and it said why, in the log table status reads */
    assert_true(fx_query_int(spoke, "SELECT count(*) FROM replication_log WHERE message LIKE"
                                    " 'rebuilding: last caught up % ago, beyond"
                                    " delete.retention.ms=2.0s of topic %'") >= 1);
    fx_free(&fx);
    srl_test_drop_db(spoke);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(consumer_offline_beyond_tombstone_horizon_rebuilds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
