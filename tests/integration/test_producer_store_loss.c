/*
 * test_producer_store_loss.c - the store going away under the producer:
 * its sessions are terminated (as by a server restart; the shared test
 * server itself is never restarted) several times while changes stream
 * in. The producer reconnects, takes the lock again, LISTENs again, and
 * the topics end up mirroring the store with an empty outbox.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "support/support.h"
#include "integration/producer_fixture.h"

/* Terminating every producer session (work and lock) mid-stream, three
 * times, loses nothing and needs no producer restart. */
static void producer_reconnects_when_store_sessions_die(void **state)
{
    (void)state;
    pf_t pf;
    pf_init(&pf, "prod-storeloss", "hub-storeloss", NULL);
    pf_writer_t w = {.steps = 60, .pause_us = 50000};
    snprintf(w.dsn, sizeof(w.dsn), "%s", pf.dsn);
    pid_t pid = pf_start(&pf, NULL);
    assert_true(pf_wait_log(&pf, "snapshot done", 30000));
    pthread_t th;
    pthread_create(&th, NULL, pf_write_changes, &w);
    char sql[512];
    /* The producer's sessions, by their last statement: outbox reads and
     * deletes, the lock, its health check, LISTEN, SET jit. The writer's
     * statements name none of these. */
    snprintf(sql, sizeof(sql),
             "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
             " WHERE datname = current_database() AND pid <> pg_backend_pid()"
             " AND (query ILIKE '%%outbox%%' OR query ILIKE '%%advisory%%' OR query = 'SELECT 1'"
             "      OR query ILIKE 'LISTEN%%' OR query ILIKE 'SET jit%%')");
    int killed = 0;
    for (int i = 0; i < 3; i++) {
        usleep(800000);
        killed += (int)pf_scalar(&pf, sql);
    }
    pthread_join(th, NULL);
    if (w.error[0])
        fail_msg("writer: %s", w.error);
    if (!pf_wait_outbox_empty(&pf, 60000)) {
        pf_dump_log(&pf, 30);
        fail_msg("outbox not drained");
    }
    assert_int_equal(kill(pid, 0), 0);
    assert_int_equal(pf_stop(pid), 0);
    print_message("terminated %d producer sessions\n", killed);
    assert_true(killed >= 2);
    assert_true(pf_log_contains(&pf, "store reconnected, lock taken"));
    pf_check_mirror(&pf);
    pf_free(&pf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(producer_reconnects_when_store_sessions_die),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
