/*
 * test_producer_reload.c - SIGHUP on the producer (the common policy,
 * srl_config_reload): a changed reloadable key is applied and logged, a
 * changed key that needs a restart is logged as such, a broken file
 * changes nothing and names file:line, and the producer keeps publishing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "support/support.h"
#include "integration/producer_fixture.h"

static void write_conf(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void insert_assessments(pf_t *pf, int from, int to)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "INSERT INTO vulnerability_assessments (vulnerability_id, assessment_type,"
             " scope_kind, comment, assessed_at)"
             " SELECT 'CVE-2025-' || lpad(g::text, 4, '0'), 'Blocked', 'global', 'reload', 1"
             " FROM generate_series(%d, %d) g",
             from, to);
    pf_exec(pf, sql);
}

/* SIGHUP after editing the -c file: log.level and producer.batch_size are
 * applied, producer.linger_ms needs a restart; the producer keeps running and
 * publishing; a broken file is refused with its line. */
static void producer_sighup_applies_reloadable_keys(void **state)
{
    (void)state;
    pf_t pf;
    pf_init(&pf, "prod-reload", "hub-reload", NULL);
    char conf[300], want[512];
    snprintf(conf, sizeof(conf), "/tmp/%s.conf", pf.prefix);
    write_conf(conf, "log.level = info\nproducer.batch_size = 100\n");
    pid_t pid = pf_start(&pf, (const char *const[]){"-c", conf, NULL});
    assert_true(pf_wait_log(&pf, "snapshot done", 30000));

    write_conf(conf, "log.level = debug\nproducer.batch_size = 2\nproducer.linger_ms = 5\n");
    assert_int_equal(kill(pid, SIGHUP), 0);
    if (!pf_wait_log(&pf, "msg=\"config reloaded\"", 10000))
        pf_dump_log(&pf, 40);
    assert_true(pf_log_contains(&pf, "level=info component=producer msg=\"config key changed; "
                                     "applied\" key=log.level old=info new=debug"));
    assert_true(pf_log_contains(&pf, "msg=\"config key changed; applied\" "
                                     "key=producer.batch_size old=100 new=2"));
    assert_true(pf_log_contains(&pf, "level=warn component=producer msg=\"config key changed; "
                                     "needs a restart\" key=producer.linger_ms running=1 file=5"));
    assert_true(pf_log_contains(&pf, "applied=2 needs_restart=1"));
    assert_int_equal(pf_wait_exit(pid, 0), -1); /* still running */

    /* Still publishing, now in batches of 2. */
    insert_assessments(&pf, 1, 7);
    assert_true(pf_wait_outbox_empty(&pf, 30000));

    write_conf(conf, "log.level = info\nlog.level = warn\n");
    assert_int_equal(kill(pid, SIGHUP), 0);
    assert_true(pf_wait_log(&pf, "config not reloaded; the running config stays", 10000));
    snprintf(want, sizeof(want), "%s:2: key \\\"log.level\\\" given twice", conf);
    if (!pf_log_contains(&pf, want))
        pf_dump_log(&pf, 10);
    assert_true(pf_log_contains(&pf, want));
    assert_int_equal(pf_wait_exit(pid, 0), -1);

    assert_int_equal(pf_stop(pid), 0);
    unlink(conf);
    pf_free(&pf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(producer_sighup_applies_reloadable_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
