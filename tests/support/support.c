/* Test helpers: service discovery from the environment, throwaway databases,
 * unique names, bounded waits. See support.h for the contracts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "support/support.h"
#include "sysrepl/clock.h"
#include "sysrepl/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *env_or_skip(const char *name, const char *what)
{
    const char *value = getenv(name);
    if (value == NULL || value[0] == '\0') {
        print_message("skipped: %s is not set (no %s); run through tests/run "
                      "or eval \"$(deploy/local/env)\" after deploy/local/postgres "
                      "start and deploy/local/kafka start\n",
                      name, what);
        skip();
    }
    return value;
}

const char *srl_test_pg_dsn(void)
{
    return env_or_skip("SRL_TEST_PG_DSN", "test PostgreSQL");
}

const char *srl_test_kafka(void)
{
    return env_or_skip("SRL_TEST_KAFKA", "test Kafka broker");
}

long long srl_test_now_ms(void)
{
    return srl_clock_mono_ms();
}

/* pid + wall-clock microseconds + a per-process counter: unique across
 * concurrent test processes and across reruns against the same services. */
static void unique_suffix(char sep, char *out, size_t size)
{
    static unsigned counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned long long usec = (unsigned long long)ts.tv_sec * 1000000ULL +
                              (unsigned long long)ts.tv_nsec / 1000;
    int n = snprintf(out, size, "%ld%c%llx%c%u", (long)getpid(), sep, usec, sep, counter++);
    if (n < 0 || (size_t)n >= size)
        fail_msg("unique name suffix does not fit in %zu bytes", size);
}

char *srl_test_unique_name(const char *prefix)
{
    char suffix[64];
    unique_suffix('-', suffix, sizeof suffix);
    size_t size = strlen(prefix) + 1 + strlen(suffix) + 1;
    char *name = malloc(size);
    if (name == NULL)
        fail_msg("out of memory making a unique name for prefix %s", prefix);
    snprintf(name, size, "%s-%s", prefix, suffix);
    return name;
}

PGconn *srl_test_pg_connect(const char *dsn)
{
    PGconn *conn = PQconnectdb(dsn);
    if (PQstatus(conn) != CONNECTION_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", PQerrorMessage(conn));
        PQfinish(conn);
        fail_msg("cannot connect to PostgreSQL (%s): %s", dsn, msg);
    }
    return conn;
}

void srl_test_exec(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType s = PQresultStatus(res);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", PQresultErrorMessage(res));
        PQclear(res);
        fail_msg("%s: %s", sql, msg);
    }
    PQclear(res);
}

struct srl_store *srl_test_store_connect(const char *dsn)
{
    char err[512];
    srl_store_rc_t rc;
    srl_store_t *st = srl_store_connect(dsn, &rc, err, sizeof err);
    if (!st)
        fail_msg("connect: %s", err);
    return st;
}

/* Runs one utility statement on the base database; returns false and copies
 * the server's message into err on failure. */
static bool exec_on_base(const char *base_dsn, const char *sql, char *err, size_t err_size)
{
    PGconn *conn = PQconnectdb(base_dsn);
    bool ok = false;
    if (PQstatus(conn) != CONNECTION_OK) {
        snprintf(err, err_size, "connect: %s", PQerrorMessage(conn));
        goto cleanup;
    }
    PGresult *res = PQexec(conn, sql);
    ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok)
        snprintf(err, err_size, "%s", PQresultErrorMessage(res));
    PQclear(res);
cleanup:
    PQfinish(conn);
    return ok;
}

void srl_test_create_db(char *dsn_out, size_t size)
{
    const char *base = srl_test_pg_dsn();
    char name[64], sql[128], err[512];

    unique_suffix('_', name + 9, sizeof name - 9);
    memcpy(name, "srl_test_", 9);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
    if (!exec_on_base(base, sql, err, sizeof err))
        fail_msg("%s on %s failed: %s", sql, base, err);

    /* In a conninfo string a later keyword overrides an earlier one. */
    int n = snprintf(dsn_out, size, "%s dbname=%s", base, name);
    if (n < 0 || (size_t)n >= size)
        fail_msg("conninfo for database %s does not fit in %zu bytes", name, size);
}

void srl_test_drop_db(const char *dsn)
{
    if (dsn == NULL || dsn[0] == '\0')
        return;
    const char *base = getenv("SRL_TEST_PG_DSN");
    char *errmsg = NULL;
    PQconninfoOption *opts = PQconninfoParse(dsn, &errmsg);
    if (opts == NULL || base == NULL) {
        print_error("srl_test_drop_db: cannot parse \"%s\": %s\n", dsn,
                    errmsg ? errmsg : "SRL_TEST_PG_DSN unset");
        PQfreemem(errmsg);
        return;
    }
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        if (strcmp(o->keyword, "dbname") != 0 || o->val == NULL)
            continue;
        /* Only names we made ourselves, so no quoting is needed. */
        if (strncmp(o->val, "srl_test_", 9) != 0) {
            print_error("srl_test_drop_db: refusing to drop %s (not a test database)\n", o->val);
            break;
        }
        char sql[160], err[512];
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", o->val);
        if (!exec_on_base(base, sql, err, sizeof err))
            print_error("srl_test_drop_db: %s failed: %s\n", sql, err);
        break;
    }
    PQconninfoFree(opts);
}

bool srl_test_wait_until(bool (*ready)(void *arg), void *arg, int timeout_ms)
{
    long long deadline = srl_test_now_ms() + timeout_ms;
    useconds_t pause_us = 20000;
    for (;;) {
        if (ready(arg))
            return true;
        long long left = deadline - srl_test_now_ms();
        if (left <= 0)
            return ready(arg);
        if ((long long)pause_us / 1000 > left)
            pause_us = (useconds_t)(left * 1000);
        usleep(pause_us);
        if (pause_us < 500000)
            pause_us *= 2;
        if (pause_us > 500000)
            pause_us = 500000;
    }
}
