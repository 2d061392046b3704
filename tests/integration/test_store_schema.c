/* test_store_schema.c - the store's schema on a real PostgreSQL: migrations
 * from an empty database, a re-run as a no-op, refusal of a store at a
 * newer or missing version, and connection failures that name host and
 * port. Each test uses its own fresh database (SRL_TEST_PG_DSN). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "support/support.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sysrepl/store.h"

struct fixture {
    char dsn[512];
    srl_store_t *st;
};

static struct fixture *fixture_new(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    *state = f;
    srl_test_create_db(f->dsn, sizeof f->dsn);
    f->st = srl_test_store_connect(f->dsn);
    return f;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    if (!f)
        return 0;
    srl_store_close(f->st);
    srl_test_drop_db(f->dsn);
    free(f);
    return 0;
}

static void exec_ok(srl_store_t *st, const char *sql)
{
    srl_test_exec(srl_store_conn(st), sql);
}

static long long query_int(srl_store_t *st, const char *sql)
{
    PGresult *res = PQexec(srl_store_conn(st), sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
        fail_msg("%s: %s", sql, PQresultErrorMessage(res));
    long long v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return v;
}

/* An empty database gets every migration; the store is then current. */
static void store_migrate_from_empty_reaches_expected_version(void **state)
{
    struct fixture *f = fixture_new(state);
    char err[512];
    int applied = -1, version = -1;
    assert_int_equal(srl_store_schema_version(f->st, &version, err, sizeof err), SRL_STORE_OK);
    assert_int_equal(version, 0);
    assert_int_equal(srl_store_migrate(f->st, &applied, err, sizeof err), SRL_STORE_OK);
    assert_int_equal(applied, srl_store_expected_version());
    assert_int_equal(srl_store_schema_version(f->st, &version, err, sizeof err), SRL_STORE_OK);
    assert_int_equal(version, srl_store_expected_version());
    assert_int_equal(srl_store_check_version(f->st, err, sizeof err), SRL_STORE_OK);
    /* The tables other programs rely on exist: the content in public,
     * sysrepl's own in the schema sysrepl (migration 005). */
    assert_int_equal(query_int(f->st,
                               "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND "
                               "tablename IN ('assessment_types', 'vulnerability_assessments', "
                               "'policies')"),
                     3);
    assert_int_equal(query_int(f->st,
                               "SELECT count(*) FROM pg_tables WHERE schemaname = 'sysrepl' AND "
                               "tablename IN ('outbox', 'tombstones', 'consumer_offsets', "
                               "'dead_letters', 'replication_log', 'producer_state', "
                               "'settings', 'schema_version')"),
                     8);
}

/* Migrating a current store changes nothing and applies nothing. */
static void store_migrate_rerun_is_noop(void **state)
{
    struct fixture *f = fixture_new(state);
    char err[512];
    int applied = -1;
    assert_int_equal(srl_store_migrate(f->st, &applied, err, sizeof err), SRL_STORE_OK);
    long long at = query_int(f->st,
                             "SELECT extract(epoch FROM applied_at) * 1e6 FROM schema_version");
    assert_int_equal(srl_store_migrate(f->st, &applied, err, sizeof err), SRL_STORE_OK);
    assert_int_equal(applied, 0);
    assert_int_equal(query_int(f->st,
                               "SELECT extract(epoch FROM applied_at) * 1e6 FROM schema_version"),
                     at);
}

/* A store written by a newer build is refused, by check and by migrate. */
static void store_check_version_refuses_newer_store(void **state)
{
    struct fixture *f = fixture_new(state);
    char err[512], want[200];
    assert_int_equal(srl_store_migrate(f->st, NULL, err, sizeof err), SRL_STORE_OK);
    int newer = srl_store_expected_version() + 2;
    char sql[100];
    snprintf(sql, sizeof sql, "UPDATE schema_version SET version = %d", newer);
    exec_ok(f->st, sql);
    snprintf(want, sizeof want,
             "store is at schema version %d, this build expects %d (upgrade sysrepl)", newer,
             srl_store_expected_version());
    assert_int_equal(srl_store_check_version(f->st, err, sizeof err), SRL_STORE_VERSION);
    assert_string_equal(err, want);
    assert_int_equal(srl_store_migrate(f->st, NULL, err, sizeof err), SRL_STORE_VERSION);
    assert_string_equal(err, want);
}

/* A database without sysrepl tables is refused with the way out. */
static void store_check_version_refuses_empty_store(void **state)
{
    struct fixture *f = fixture_new(state);
    char err[512];
    assert_int_equal(srl_store_check_version(f->st, err, sizeof err), SRL_STORE_VERSION);
    assert_string_equal(err, "store has no sysrepl schema (run sysrepl init)");
}

/* Two sessions migrating at once: each migration runs once (the advisory
 * lock and the version re-read under it), both succeed. */
struct migrate_job {
    srl_store_t *st;
    int applied;
    srl_store_rc_t rc;
    char err[512];
};

static void *migrate_thread(void *arg)
{
    struct migrate_job *j = arg;
    j->rc = srl_store_migrate(j->st, &j->applied, j->err, sizeof j->err);
    return NULL;
}

static void store_migrate_twice_concurrently_applies_once(void **state)
{
    struct fixture *f = fixture_new(state);
    char err[512];
    srl_store_rc_t rc;
    struct migrate_job jobs[2] = {{.st = f->st}, {.st = NULL}};
    jobs[1].st = srl_store_connect(f->dsn, &rc, err, sizeof err);
    assert_non_null(jobs[1].st);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, migrate_thread, &jobs[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 2; i++)
        if (jobs[i].rc != SRL_STORE_OK)
            fail_msg("session %d: %s", i, jobs[i].err);
    assert_int_equal(jobs[0].applied + jobs[1].applied, srl_store_expected_version());
    srl_store_close(jobs[1].st);
}

/* Nothing listens on the port: UNREACHABLE, and the message names it. */
static void store_connect_unreachable_names_host_and_port(void **state)
{
    (void)state;
    char err[512];
    srl_store_rc_t rc = SRL_STORE_OK;
    srl_store_t *st = srl_store_connect("host=127.0.0.1 port=1 user=postgres dbname=postgres "
                                        "connect_timeout=2",
                                        &rc, err, sizeof err);
    assert_null(st);
    assert_int_equal(rc, SRL_STORE_UNREACHABLE);
    assert_non_null(strstr(err, "cannot connect to PostgreSQL at 127.0.0.1:1"));
}

/* A malformed DSN is a configuration error, not an outage. */
static void store_connect_bad_dsn_is_fatal(void **state)
{
    (void)state;
    char err[512];
    srl_store_rc_t rc = SRL_STORE_OK;
    assert_null(srl_store_connect("host=127.0.0.1 bogus_option=1", &rc, err, sizeof err));
    assert_int_equal(rc, SRL_STORE_FATAL);
    assert_non_null(strstr(err, "invalid store DSN"));
}

/* A missing database: the server answered, waiting will not help. */
static void store_connect_missing_database_is_fatal(void **state)
{
    (void)state;
    char dsn[600], err[512];
    snprintf(dsn, sizeof dsn, "%s dbname=srl_no_such_database_xyz", srl_test_pg_dsn());
    srl_store_rc_t rc = SRL_STORE_OK;
    assert_null(srl_store_connect(dsn, &rc, err, sizeof err));
    assert_int_equal(rc, SRL_STORE_FATAL);
}

/* The retriable SQLSTATE classes, decided in one place. */
static void store_sqlstate_classes_retriable_and_fatal(void **state)
{
    (void)state;
    const char *retriable[] = {"08006", "08001", "57P01", "57P03", "40001", "40P01", "53300", NULL};
    const char *fatal[] = {"23505", "42P01", "22P02", "42501", "XX000", "40002", NULL};
    for (int i = 0; retriable[i]; i++)
        assert_true(srl_store_sqlstate_is_retriable(retriable[i]));
    for (int i = 0; fatal[i]; i++)
        assert_false(srl_store_sqlstate_is_retriable(fatal[i]));
    assert_true(srl_store_sqlstate_is_retriable(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(store_migrate_from_empty_reaches_expected_version, teardown),
        cmocka_unit_test_teardown(store_migrate_rerun_is_noop, teardown),
        cmocka_unit_test_teardown(store_check_version_refuses_newer_store, teardown),
        cmocka_unit_test_teardown(store_check_version_refuses_empty_store, teardown),
        cmocka_unit_test_teardown(store_migrate_twice_concurrently_applies_once, teardown),
        cmocka_unit_test(store_connect_unreachable_names_host_and_port),
        cmocka_unit_test(store_connect_bad_dsn_is_fatal),
        cmocka_unit_test(store_connect_missing_database_is_fatal),
        cmocka_unit_test(store_sqlstate_classes_retriable_and_fatal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
