/*
 * test_producer_broker_restart.c - the broker away for 30 s in the middle
 * of a stream of changes, then back: nothing is lost (the topics mirror
 * the store), nothing is removed from the outbox before it was delivered,
 * and the producer needs no restart.
 *
 * Runs its own broker (deploy/local/kafka with a private state folder and
 * ports; the jar cache is shared, so no download) and stops only that one:
 * the shared broker of the other tests is never touched.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "support/support.h"
#include "integration/producer_fixture.h"

static char broker_dir[256];
static char broker_env[1024];
static int broker_port;

static int broker(const char *action)
{
    char cmd[2048];
    const char *src = getenv("SRL_SOURCE_DIR");
    snprintf(cmd, sizeof(cmd), "%s %s/deploy/local/kafka %s >>%s/script.log 2>&1", broker_env,
             src ? src : ".", action, broker_dir);
    return system(cmd);
}

static int setup(void **state)
{
    (void)state;
    const char *src = getenv("SRL_SOURCE_DIR");
    const char *cache = getenv("SRL_CACHE_DIR");
    char cache_dir[512];
    snprintf(cache_dir, sizeof(cache_dir), "%s", cache ? cache : "");
    if (!cache_dir[0])
        snprintf(cache_dir, sizeof(cache_dir), "%s/.state/cache", src ? src : ".");
    snprintf(broker_dir, sizeof(broker_dir), "/tmp/srl-broker-XXXXXX");
    if (!mkdtemp(broker_dir))
        return -1;
    /* Ports away from the shared broker's 59092/59093, per process. */
    broker_port = 61000 + (int)(getpid() % 1000) * 2;
    snprintf(broker_env, sizeof(broker_env),
             "SRL_STATE_DIR=%s SRL_CACHE_DIR=%s SRL_KAFKA_PORT=%d SRL_KAFKA_CONTROLLER_PORT=%d",
             broker_dir, cache_dir, broker_port, broker_port + 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[512];
    broker("stop");
    snprintf(cmd, sizeof(cmd), "rm -rf %s", broker_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Broker stopped for 30 s mid-stream and started again: afterwards the
 * topics mirror the store and the outbox is empty, with no restart. */
static void producer_survives_broker_away_30s(void **state)
{
    (void)state;
    if (!getenv("SRL_TEST_KAFKA"))
        skip();
    if (broker("start") != 0)
        fail_msg("private broker did not start; see %s/script.log", broker_dir);
    pf_t pf;
    pf_init(&pf, "prod-broker", "hub-broker", NULL);
    snprintf(pf.kafka, sizeof(pf.kafka), "127.0.0.1:%d", broker_port);
    pf_writer_t w = {.steps = 120, .pause_us = 100000};
    snprintf(w.dsn, sizeof(w.dsn), "%s", pf.dsn);
    pid_t pid = pf_start(&pf, NULL);
    assert_true(pf_wait_log(&pf, "snapshot done", 60000));
    pthread_t th;
    pthread_create(&th, NULL, pf_write_changes, &w);
    sleep(3);
    long long before = pf_undelivered(&pf);
    assert_int_equal(broker("stop"), 0);
    long long stopped_at = srl_test_now_ms();
    sleep(30);
    /* Changes kept coming; none of them can have left the outbox. */
    long long waiting = pf_undelivered(&pf);
    print_message("undelivered: %lld (outbox rows + WAL bytes) before the stop, %lld after 30 s"
                  " without a broker\n",
                  before, waiting);
    assert_true(waiting > 0);
    assert_int_equal(broker("start"), 0);
    print_message("broker back after %lld ms\n", srl_test_now_ms() - stopped_at);
    pthread_join(th, NULL);
    if (w.error[0])
        fail_msg("writer: %s", w.error);
    if (!pf_wait_outbox_empty(&pf, 120000)) {
        pf_dump_log(&pf, 40);
        fail_msg("outbox not drained within 120 s of the broker's return");
    }
    assert_int_equal(kill(pid, 0), 0); /* the same producer, still running */
    assert_int_equal(pf_stop(pid), 0);
    size_t live = pf_check_mirror(&pf);
    print_message("mirror checked: %zu live keys, %lld changes\n", live,
                  pf_scalar(&pf, "SELECT last_value FROM sysrepl_version"));
    pf_free(&pf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(producer_survives_broker_away_30s, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
