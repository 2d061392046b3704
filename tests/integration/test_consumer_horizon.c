/* Integration: a spoke away longer than the topics keep tombstones
 * (delete.retention.ms) may have missed deletes; it notices and rebuilds,
 * so the deleted content is gone (real broker compaction) - on start after
 * being stopped, and while running after being frozen (SIGSTOP). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "support/support.h"

#include "consumer_fixture.h"
#include "horizon_fixture.h"

static void consumer_offline_beyond_tombstone_horizon_rebuilds(void **state)
{
    (void)state;
    fx_t fx;
    char spoke[512], key_a[256], key_p[256];
    unsigned seed = 5;

    fx_init(&fx, "horizon", hz_fast_cleaning);
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
    assert_true(fx_query_int(spoke,
                             "SELECT count(*) FROM sysrepl.replication_log WHERE message LIKE"
                             " 'rebuilding: last caught up % ago, beyond"
                             " delete.retention.ms=2.0s of topic %'") >= 1);
    fx_free(&fx);
    srl_test_drop_db(spoke);
}

/* A running spoke that was frozen (SIGSTOP: a stuck VM, a paused
 * container) while deletes were made and their tombstones compacted away
 * rebuilds as soon as it resumes, without a restart: the deleted
 * assessments and policies are gone and it says why. (Before the fix the
 * horizon was checked only at start: the resumed daemon applied the
 * filler and kept the deleted rows forever.) */
static void consumer_frozen_beyond_tombstone_horizon_rebuilds(void **state)
{
    (void)state;
    fx_t fx;
    char spoke[512];
    unsigned seed = 7;
    const unsigned kinds = 1u << SRL_KIND_ASSESSMENT | 1u << SRL_KIND_POLICY;
    fx_model_t *m = calloc(1, sizeof(*m));
    assert_non_null(m);

    fx_init(&fx, "horizon-frozen", hz_fast_cleaning);
    char *instance = srl_test_unique_name("spoke-frozen");
    fx_spoke(spoke, sizeof(spoke), instance);
    for (int i = 0; i < 6; i++) {
        hz_put(&fx, m, SRL_KIND_ASSESSMENT, i, &seed);
        hz_put(&fx, m, SRL_KIND_POLICY, i, &seed);
    }
    fx_flush(&fx);
    pid_t pid = fx_consumer_start(&fx, spoke, instance, NULL);
    hz_track(pid);
    hz_wait_t synced = {m, spoke, kinds | 1u << SRL_KIND_ASSESSMENT_TYPE, NULL, pid};
    if (!srl_test_wait_until(hz_spoke_ready, &synced, 60000))
        fail_msg("the spoke did not sync the first content within 60 s; log in /tmp/%s.log",
                 instance);
    /* Idle and caught up for a while: its evidence is in the store. */
    sleep(6);
    if (!srl_test_wait_until(hz_evidence_stamped, spoke, 15000))
        fail_msg("caught_up_at never stamped on every partition; log in /tmp/%s.log", instance);

    assert_int_equal(kill(pid, SIGSTOP), 0);
    long long frozen_at = srl_test_now_ms();
    print_message("frozen; its evidence in the store is %lld ms old\n",
                  hz_wall_ms() - hz_caught_up_min_ms(spoke));
    hz_delete(&fx, m, SRL_KIND_ASSESSMENT, 1);
    hz_delete(&fx, m, SRL_KIND_ASSESSMENT, 4);
    hz_delete(&fx, m, SRL_KIND_POLICY, 2);
    fx_flush(&fx);
    hz_purge_tombstones(&fx, m, kinds, &seed);
    assert_true(srl_test_now_ms() - frozen_at > 2000); /* beyond delete.retention.ms */
    assert_int_equal(kill(pid, SIGCONT), 0);

    hz_wait_t mirrored = {m, spoke, kinds | 1u << SRL_KIND_ASSESSMENT_TYPE,
                          fx.topics[SRL_KIND_ASSESSMENT], pid};
    bool same = srl_test_wait_until(hz_spoke_ready, &mirrored, 60000);
    assert_int_equal(hz_rows_with_key(spoke, SRL_KIND_ASSESSMENT, m->key[SRL_KIND_ASSESSMENT][1]),
                     0);
    assert_int_equal(hz_rows_with_key(spoke, SRL_KIND_ASSESSMENT, m->key[SRL_KIND_ASSESSMENT][4]),
                     0);
    assert_int_equal(hz_rows_with_key(spoke, SRL_KIND_POLICY, m->key[SRL_KIND_POLICY][2]), 0);
    if (!same) /* says which kind differs, with the diff files */
        fx_model_check(m, spoke, kinds);
    assert_int_equal(fx_query_int(spoke, "SELECT count(*) FROM vulnerability_assessments"),
                     6 - 2 + 30);
    assert_int_equal(fx_query_int(spoke, "SELECT count(*) FROM policies"), 6 - 1 + 30);
    /* and it said why, for each topic that lost deletes */
    assert_true(hz_rebuild_reasons(spoke, fx.topics[SRL_KIND_ASSESSMENT]) >= 1);
    assert_true(hz_rebuild_reasons(spoke, fx.topics[SRL_KIND_POLICY]) >= 1);

    assert_int_equal(kill(pid, SIGTERM), 0);
    hz_untrack(pid); /* fx_consumer_wait reaps it, or kills it and fails */
    assert_int_equal(fx_consumer_wait(pid, 30000), 0);
    fx_model_free(m);
    free(m);
    free(instance);
    fx_free(&fx);
    srl_test_drop_db(spoke);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(consumer_offline_beyond_tombstone_horizon_rebuilds),
        cmocka_unit_test_teardown(consumer_frozen_beyond_tombstone_horizon_rebuilds,
                                  hz_kill_children),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
