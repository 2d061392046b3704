/* Integration: kill -9 of sysrepl-consumer at random moments while it
 * applies 100,000 changes; restarted each time, the spoke still ends
 * exactly at the expected state (offsets committed with the rows, and
 * version-guarded applying make re-delivery harmless), also when large
 * batches are split over several sessions. */
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
    sleep(2);
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

/* Large batches split over three sessions (consumer.apply_sessions), with
 * kill -9 of the consumer and its store sessions cut at random moments,
 * and a record the store refuses in the middle: the spoke still ends
 * exactly at the expected state, the refused record dead-lettered once. */
static void consumer_split_apply_survives_kills_and_lost_sessions(void **state)
{
    (void)state;
    fx_t fx;
    char spoke[512], sql[1024], err[256], key[256];
    unsigned seed = 4242;
    const int nkeys[SRL_KIND_COUNT] = {10, 20000, 50};
    const char *split[] = {"-X", "consumer.batch_size=3000",     "-X", "consumer.apply_sessions=3",
                           "-X", "consumer.apply_split_min=100", NULL};
    const char *logpath = "/tmp/split-spoke.log";

    unlink(logpath);
    memset(&model, 0, sizeof(model));
    fx_init(&fx, "split", NULL);
    fx_spoke(spoke, sizeof(spoke), "spoke-split");
    fx_flush(&fx);
    fx_consumer_sync(&fx, spoke, "split-spoke", split); /* first sync of empty topics */

    fx_random_changes(&fx, &model, nkeys, 30000, &seed);
    /* a record the store refuses (not UTF-8), on a key outside the model */
    srl_entity_t bad;
    fx_make(SRL_KIND_ASSESSMENT, 999999, &seed, &bad);
    free(bad.u.assessment.comment);
    bad.u.assessment.comment = strdup("bad \xff\xfe bytes");
    uint8_t *buf;
    size_t len;
    int64_t bad_version = fx.next_version++;
    free(bad.u.assessment.meta.origin);
    bad.u.assessment.meta.origin = strdup(FX_HUB);
    bad.u.assessment.meta.version = bad_version;
    assert_true(srl_codec_encode(fx.reg, &bad, &buf, &len, err, sizeof(err)));
    assert_true(srl_key_build(&bad, key, sizeof(key)) > 0);
    fx_produce_raw(&fx, fx.topics[SRL_KIND_ASSESSMENT], key, buf, len, bad_version);
    free(buf);
    srl_entity_clear(&bad);
    fx_random_changes(&fx, &model, nkeys, 30000, &seed);
    fx_flush(&fx);

    const char *db = strrchr(spoke, '=') + 1;
    snprintf(sql, sizeof(sql),
             "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s'"
             " AND pid <> pg_backend_pid()",
             db);
    int kills = 0, cuts = 0;
    for (int round = 0; round < 6; round++) {
        pid_t pid = fx_consumer_start(&fx, spoke, "split-spoke", split);
        usleep((useconds_t)(150000 + fx_rand(&seed) % 300000));
        if (round % 2 == 0) { /* cut its store sessions, let it recover */
            PGconn *admin = srl_test_pg_connect(srl_test_pg_dsn());
            PQclear(PQexec(admin, sql));
            PQfinish(admin);
            cuts++;
            usleep((useconds_t)(100000 + fx_rand(&seed) % 200000));
        }
        if (waitpid(pid, NULL, WNOHANG) == 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            kills++;
        }
    }
    print_message("killed the consumer %d times, cut its sessions %d times\n", kills, cuts);
    assert_true(kills > 0);
    /* more changes, so the last run too has full batches to split */
    fx_random_changes(&fx, &model, nkeys, 20000, &seed);
    fx_flush(&fx);
    fx_consumer_sync(&fx, spoke, "split-spoke", split);
    fx_model_check(&model, spoke, 7);
    assert_int_equal(fx_query_int(spoke, "SELECT count(*) FROM dead_letters"), 1);
    char *reason = fx_query(spoke, "SELECT reason FROM dead_letters");
    assert_non_null(strstr(reason, "not valid UTF-8"));
    free(reason);

    /* the batches really were split: the stats lines count them */
    FILE *f = fopen(logpath, "r");
    assert_non_null(f);
    char line[4096];
    long long split_batches = 0;
    while (fgets(line, sizeof(line), f)) {
        const char *p = strstr(line, " split_batches=");
        if (p && atoll(p + 15) > split_batches)
            split_batches = atoll(p + 15);
    }
    fclose(f);
    print_message("split batches in the last run: %lld\n", split_batches);
    assert_true(split_batches > 0);

    fx_model_free(&model);
    fx_free(&fx);
    srl_test_drop_db(spoke);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(consumer_kill9_during_apply_ends_equal),
        cmocka_unit_test(consumer_store_outage_waits_and_resumes),
        cmocka_unit_test(consumer_split_apply_survives_kills_and_lost_sessions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
