/*
 * test_consumer_reload.c - SIGHUP on sysrepl-consumer (the common policy,
 * srl_config_reload): a changed reloadable key is applied and logged, a
 * changed key that needs a restart is logged as such, a broken file
 * changes nothing and names file:line, and the spoke keeps replicating.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "support/support.h"

#include "consumer_fixture.h"

static void write_conf(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static bool log_has(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

typedef struct {
    const char *path, *needle;
} log_wait_t;

static bool log_ready(void *arg)
{
    const log_wait_t *w = arg;
    return log_has(w->path, w->needle);
}

typedef struct {
    const char *dsn;
    long long want;
} count_wait_t;

static bool count_ready(void *arg)
{
    const count_wait_t *w = arg;
    return fx_query_int(w->dsn, "SELECT count(*) FROM vulnerability_assessments") == w->want;
}

/* SIGHUP after editing the -c file: log.level and consumer.batch_size are
 * applied, consumer.apply_sessions needs a restart, a broken file is
 * refused with its line; the consumer keeps applying throughout. */
static void consumer_sighup_applies_reloadable_keys(void **state)
{
    (void)state;
    fx_t fx;
    char spoke[512], instance[128], conf[300], logpath[300], want[400];
    unsigned seed = 11;
    fx_init(&fx, "cons-reload", NULL);
    snprintf(instance, sizeof(instance), "reload-%s", fx.prefix);
    fx_spoke(spoke, sizeof(spoke), instance);
    snprintf(conf, sizeof(conf), "/tmp/%s.conf", fx.prefix);
    snprintf(logpath, sizeof(logpath), "/tmp/%s.log", instance);
    unlink(logpath);
    write_conf(conf, "log.level = info\nconsumer.batch_size = 100\n");
    pid_t pid = fx_consumer_start(&fx, spoke, instance, (const char *const[]){"-c", conf, NULL});
    log_wait_t w = {logpath, "msg=replicating"};
    assert_true(srl_test_wait_until(log_ready, &w, 60000));

    write_conf(conf, "log.level = debug\nconsumer.batch_size = 7\nconsumer.apply_sessions = 3\n");
    assert_int_equal(kill(pid, SIGHUP), 0);
    w.needle = "msg=\"config reloaded\"";
    assert_true(srl_test_wait_until(log_ready, &w, 10000));
    assert_true(log_has(logpath, "msg=\"config key changed; applied\" key=log.level old=info "
                                 "new=debug"));
    assert_true(log_has(logpath, "msg=\"config key changed; applied\" key=consumer.batch_size "
                                 "old=100 new=7"));
    snprintf(want, sizeof(want),
             "msg=\"config key changed; needs a restart\" "
             "key=consumer.apply_sessions");
    assert_true(log_has(logpath, want));

    /* still replicating, now in batches of at most 7 */
    for (int i = 0; i < 20; i++) {
        srl_entity_t a;
        fx_make(SRL_KIND_ASSESSMENT, i, &seed, &a);
        fx_put(&fx, &a);
        srl_entity_clear(&a);
    }
    fx_flush(&fx);
    count_wait_t cw = {spoke, 20};
    assert_true(srl_test_wait_until(count_ready, &cw, 30000));

    /* a broken file changes nothing and names its line */
    write_conf(conf, "log.level = debug\nconsumer.batch_size = lots\n");
    assert_int_equal(kill(pid, SIGHUP), 0);
    snprintf(want, sizeof(want), "%s:2", conf);
    w.needle = want;
    assert_true(srl_test_wait_until(log_ready, &w, 10000));
    for (int i = 20; i < 25; i++) {
        srl_entity_t a;
        fx_make(SRL_KIND_ASSESSMENT, i, &seed, &a);
        fx_put(&fx, &a);
        srl_entity_clear(&a);
    }
    fx_flush(&fx);
    cw.want = 25;
    assert_true(srl_test_wait_until(count_ready, &cw, 30000));

    assert_int_equal(kill(pid, SIGTERM), 0);
    assert_int_equal(fx_consumer_wait(pid, 30000), 0);
    unlink(conf);
    fx_free(&fx);
    srl_test_drop_db(spoke);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(consumer_sighup_applies_reloadable_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
