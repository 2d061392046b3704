/*
 * test_producer_crash.c - kill -9 of the producer at random moments during
 * a stream of 100,000 changes, and restarts: afterwards the topics mirror
 * the store (the last record of every key is the store's entity, or a
 * tombstone for a deleted key) and the outbox is empty.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "support/support.h"
#include "integration/producer_fixture.h"

/* A few kill -9 at random moments while changes stream in; restarts; then
 * the topics mirror the store and the outbox is empty. */
static void producer_kill9_during_stream_loses_nothing(void **state)
{
    (void)state;
    pf_t pf;
    pf_init(&pf, "prod-crash", "hub-crash", NULL);
    pf_writer_t w = {.steps = 200, .pause_us = 30000};
    snprintf(w.dsn, sizeof(w.dsn), "%s", pf.dsn);
    pid_t pid = pf_start(&pf, NULL);
    assert_true(pf_wait_log(&pf, "snapshot done", 30000));
    long long t0 = srl_test_now_ms();
    pthread_t th;
    pthread_create(&th, NULL, pf_write_changes, &w);
    unsigned seed = 12345;
    int kills = 0;
    while (!w.done) {
        /* cppcheck-suppress rand_rCalled ; a seeded sequence, repeatable by seed */
        usleep(1500000 + rand_r(&seed) % 2000000);
        if (w.done)
            break;
        kill(pid, SIGKILL);
        assert_int_equal(pf_wait_exit(pid, 10000), 128 + SIGKILL);
        kills++;
        pid = pf_start(&pf, NULL);
    }
    pthread_join(th, NULL);
    if (w.error[0])
        fail_msg("writer: %s", w.error);
    long long changes = pf_scalar(&pf, "SELECT last_value FROM sysrepl_version");
    if (!pf_wait_outbox_empty(&pf, 120000)) {
        pf_dump_log(&pf, 30);
        fail_msg("outbox not empty after 120 s");
    }
    long long ms = srl_test_now_ms() - t0;
    assert_int_equal(pf_stop(pid), 0);
    print_message("%lld changes, %d kills, drained %lld ms after the start\n", changes, kills, ms);
    assert_true(kills >= 2);
    assert_true(changes >= 100000);
    size_t live = pf_check_mirror(&pf);
    print_message("mirror checked: %zu live keys\n", live);
    assert_int_equal(pf_scalar(&pf, "SELECT count(*) FROM outbox"), 0);
    pf_free(&pf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(producer_kill9_during_stream_loses_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
