/* Integration: kill -9 of sysrepl-consumer at random moments while it
 * applies 100,000 changes; restarted each time, the spoke still ends
 * exactly at the expected state (offsets committed with the rows, and
 * version-guarded applying make re-delivery harmless). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "support/support.h"

#include "consumer_fixture.h"

static fx_model_t model;

static void consumer_kill9_during_apply_ends_equal(void **state)
{
    (void)state;
    fx_t fx;
    char spoke[512];
    unsigned seed = 99;
    const int nkeys[SRL_KIND_COUNT] = {10, 20000, 50};
    /* small batches: many transactions, so the kills land between and
     * inside them */
    const char *small[] = {"-X", "consumer.batch_size=2000", NULL};

    memset(&model, 0, sizeof(model));
    fx_init(&fx, "crash", NULL);
    fx_spoke(spoke, sizeof(spoke), "spoke-crash");
    fx_flush(&fx);
    fx_consumer_sync(&fx, spoke, "crash-spoke", NULL); /* first sync of empty topics */

    fx_random_changes(&fx, &model, nkeys, 100000, &seed);
    fx_flush(&fx);

    int kills = 0;
    for (int round = 0; round < 8; round++) {
        pid_t pid = fx_consumer_start(&fx, spoke, "crash-spoke", small);
        usleep((useconds_t)(100000 + fx_rand(&seed) % 300000));
        if (waitpid(pid, NULL, WNOHANG) == 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            kills++;
        }
        print_message("round %d: offsets at %lld of ~%d records\n", round,
                      fx_query_int(spoke, "SELECT coalesce(sum(next_offset), 0)"
                                          " FROM consumer_offsets"),
                      100000);
    }
    print_message("killed the consumer %d times\n", kills);
    assert_true(kills > 0);
    fx_consumer_sync(&fx, spoke, "crash-spoke", small);
    fx_model_check(&model, spoke, 7);
    assert_int_equal(fx_query_int(spoke, "SELECT count(*) FROM dead_letters"), 0);

    /* SIGTERM: finishes the batch in hand and exits 0. */
    fx_random_changes(&fx, &model, nkeys, 5000, &seed);
    fx_flush(&fx);
    pid_t pid = fx_consumer_start(&fx, spoke, "crash-spoke", small);
    usleep(300000);
    kill(pid, SIGTERM);
    assert_int_equal(fx_consumer_wait(pid, 30000), 0);
    fx_consumer_sync(&fx, spoke, "crash-spoke", small);
    fx_model_check(&model, spoke, 7);

    fx_model_free(&model);
    fx_free(&fx);
    srl_test_drop_db(spoke);
}

/* The spoke's store goes away mid-stream (connections refused and cut):
 * the consumer waits with backoff, reconnects, re-reads its offsets from
 * the store and ends at the expected state; it never exits. */
static void consumer_store_outage_waits_and_resumes(void **state)
{
    (void)state;
    fx_t fx;
    char spoke[512], sql[1024];
    unsigned seed = 3;
    const int nkeys[SRL_KIND_COUNT] = {5, 5000, 20};
    const char *small[] = {"-X", "consumer.batch_size=500", NULL};

    memset(&model, 0, sizeof(model));
    fx_init(&fx, "outage", NULL);
    fx_spoke(spoke, sizeof(spoke), "spoke-outage");
    fx_flush(&fx);
    fx_consumer_sync(&fx, spoke, "outage-spoke", NULL);
    fx_random_changes(&fx, &model, nkeys, 40000, &seed);
    fx_flush(&fx);

    const char *db = strstr(spoke, "dbname=srl_test");
    assert_non_null(db);
    db = strrchr(spoke, '=') + 1;
    pid_t pid = fx_consumer_start(&fx, spoke, "outage-spoke", small);
    usleep(200000);
    PGconn *admin = srl_test_pg_connect(srl_test_pg_dsn());
    snprintf(sql, sizeof(sql),
             "ALTER DATABASE \"%s\" WITH ALLOW_CONNECTIONS false;"
             " SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s'",
             db, db);
    PQclear(PQexec(admin, sql));
    usleep(2000000);
    assert_int_equal(waitpid(pid, NULL, WNOHANG), 0); /* still running, waiting */
    snprintf(sql, sizeof(sql), "ALTER DATABASE \"%s\" WITH ALLOW_CONNECTIONS true", db);
    PQclear(PQexec(admin, sql));
    PQfinish(admin);
    /* the same process resumes: its offsets move again */
    const char *q = "SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets";
    long long before = fx_query_int(spoke, q), end = srl_test_now_ms() + 15000;
    while (fx_query_int(spoke, q) == before && srl_test_now_ms() < end)
        usleep(100000);
    assert_true(fx_query_int(spoke, q) > before);
    kill(pid, SIGTERM);
    assert_int_equal(fx_consumer_wait(pid, 30000), 0);
    fx_consumer_sync(&fx, spoke, "outage-spoke", small);
    fx_model_check(&model, spoke, 7);
    fx_model_free(&model);
    fx_free(&fx);
    srl_test_drop_db(spoke);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(consumer_kill9_during_apply_ends_equal),
        cmocka_unit_test(consumer_store_outage_waits_and_resumes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
