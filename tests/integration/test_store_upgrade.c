/* test_store_upgrade.c - the store a DBA meets, on a real PostgreSQL: a
 * store at schema version 4 (tests/data/store/store_v4.sql, the released
 * migrations) with content upgrades in place into the schema sysrepl; every
 * table and column carries a comment; sysrepl's sessions resolve the moved
 * names and name themselves in pg_stat_activity; replication_log keeps
 * log.retention. Each test uses its own fresh database (SRL_TEST_PG_DSN). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "support/support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sysrepl/store.h"

#define DAY_MS (24LL * 3600 * 1000)

/* sysrepl's own tables, all in the schema sysrepl from version 5 on. */
static const char BOOKKEEPING[] = "('schema_version', 'settings', 'outbox', 'tombstones',"
                                  " 'consumer_offsets', 'dead_letters', 'replication_log',"
                                  " 'producer_state')";

struct fixture {
    char dsn[512];
    PGconn *raw; /* a session like the registry's: default search_path */
    srl_store_t *st;
};

static struct fixture *fixture_new(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    *state = f;
    srl_test_create_db(f->dsn, sizeof f->dsn);
    f->raw = srl_test_pg_connect(f->dsn);
    return f;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    if (!f)
        return 0;
    srl_store_close(f->st);
    if (f->raw)
        PQfinish(f->raw);
    srl_test_drop_db(f->dsn);
    free(f);
    return 0;
}

/* The one value of a one-row, one-column query, as text (caller frees). */
static char *query_text(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
        fail_msg("%s: %s", sql, PQresultErrorMessage(res));
    char *v = strdup(PQgetisnull(res, 0, 0) ? "(null)" : PQgetvalue(res, 0, 0));
    PQclear(res);
    return v;
}

static long long query_int(PGconn *conn, const char *sql)
{
    char *v = query_text(conn, sql);
    long long n = strtoll(v, NULL, 10);
    free(v);
    return n;
}

static void assert_query_text(PGconn *conn, const char *sql, const char *want)
{
    char *v = query_text(conn, sql);
    char msg[1024];
    bool same = strcmp(v, want) == 0;
    snprintf(msg, sizeof msg, "%s: got \"%s\", want \"%s\"", sql, v, want);
    free(v);
    if (!same)
        fail_msg("%s", msg);
}

/* Runs tests/data/store/store_v4.sql on the raw session. */
static void create_v4_store(struct fixture *f)
{
    const char *root = getenv("SRL_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/data/store/store_v4.sql", root ? root : ".");
    FILE *in = fopen(path, "rb");
    if (!in)
        fail_msg("cannot open %s (is SRL_SOURCE_DIR set?)", path);
    char *sql = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&sql, &len);
    assert_non_null(mem);
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        fwrite(buf, 1, n, mem);
    fclose(in);
    fclose(mem);
    srl_test_exec(f->raw, sql);
    free(sql);
}

static srl_store_t *migrated_store(struct fixture *f)
{
    char err[512];
    f->st = srl_test_store_connect(f->dsn);
    if (srl_store_migrate(f->st, NULL, err, sizeof err) != SRL_STORE_OK)
        fail_msg("migrate: %s", err);
    return f->st;
}

/* A version-4 store with content of every kind upgrades in place: every
 * row is kept, now in the schema sysrepl, nothing of sysrepl's is left in
 * public, and the registry's own sessions (no sysrepl in their
 * search_path) still write captured, stamped content. */
static void store_upgrade_from_v4_keeps_content_in_schema_sysrepl(void **state)
{
    struct fixture *f = fixture_new(state);
    char err[512];
    create_v4_store(f);
    srl_test_exec(
        f->raw,
        "INSERT INTO settings (instance_id, role) VALUES ('hub-1', 'hub');"
        "INSERT INTO assessment_types (name, severity_class) VALUES ('Blocked', 'severe');"
        "INSERT INTO vulnerability_assessments (vulnerability_id, assessment_type, scope_kind,"
        " assessed_at) VALUES ('CVE-2021-44228', 'Blocked', 'global', 1700000000000);"
        "INSERT INTO policies (name) VALUES ('default');"
        "DELETE FROM policies WHERE name = 'default';"
        "INSERT INTO tombstones (kind, key, version, origin) VALUES (2, 'old', 3, 'hub-0');"
        "INSERT INTO consumer_offsets (topic, partition, next_offset, high_watermark)"
        " VALUES ('sysrepl.policies', 0, 42, 50);"
        "INSERT INTO dead_letters (topic, partition, record_offset, key, value, reason)"
        " VALUES ('sysrepl.policies', 0, 41, '\\x6b6579', NULL, 'unknown schema');"
        "INSERT INTO replication_log (level, component, message) VALUES ('info', 'producer',"
        " 'stats delivered=4');"
        "UPDATE producer_state SET last_delivered_version = 2;");
    long long top = query_int(f->raw, "SELECT last_value FROM sysrepl_version");
    assert_int_equal(query_int(f->raw, "SELECT count(*) FROM outbox"), 4);

    f->st = srl_test_store_connect(f->dsn);
    int applied = -1;
    if (srl_store_migrate(f->st, &applied, err, sizeof err) != SRL_STORE_OK)
        fail_msg("migrate: %s", err);
    assert_int_equal(applied, srl_store_expected_version() - 4);
    assert_int_equal(srl_store_check_version(f->st, err, sizeof err), SRL_STORE_OK);

    /* Where things are now, as a DBA's psql (the raw session) sees them. */
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM pg_tables WHERE schemaname = 'sysrepl' AND tablename IN %s",
             BOOKKEEPING);
    assert_int_equal(query_int(f->raw, sql), 8);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename IN %s",
             BOOKKEEPING);
    assert_int_equal(query_int(f->raw, sql), 0);
    assert_int_equal(query_int(f->raw, "SELECT count(*) FROM pg_proc p JOIN pg_namespace n"
                                       " ON n.oid = p.pronamespace WHERE n.nspname = 'public'"
                                       " AND p.proname LIKE 'sysrepl%'"),
                     0);
    assert_int_equal(query_int(f->raw, "SELECT count(*) FROM pg_tables WHERE schemaname ="
                                       " 'public' AND tablename IN ('assessment_types',"
                                       " 'vulnerability_assessments', 'policies')"),
                     3);

    /* The content, intact. */
    assert_query_text(f->raw, "SELECT instance_id || '/' || role FROM sysrepl.settings",
                      "hub-1/hub");
    assert_int_equal(query_int(f->raw, "SELECT count(*) FROM sysrepl.outbox"), 4);
    assert_int_equal(query_int(f->raw, "SELECT count(*) FROM sysrepl.outbox WHERE deleted"), 1);
    assert_query_text(f->raw, "SELECT key || ' ' || version FROM sysrepl.tombstones", "old 3");
    assert_query_text(f->raw,
                      "SELECT next_offset || ' ' || high_watermark FROM sysrepl.consumer_offsets",
                      "42 50");
    assert_query_text(f->raw,
                      "SELECT encode(key, 'escape') || ' ' || reason FROM sysrepl.dead_letters",
                      "key unknown schema");
    assert_query_text(f->raw, "SELECT message FROM sysrepl.replication_log", "stats delivered=4");
    assert_int_equal(query_int(f->raw, "SELECT last_delivered_version FROM sysrepl.producer_state"),
                     2);
    assert_query_text(f->raw, "SELECT key || ' ' || origin FROM vulnerability_assessments",
                      "CVE-2021-44228|global hub-1");
    snprintf(sql, sizeof sql, "SELECT last_value = %lld FROM sysrepl.sysrepl_version", top);
    assert_query_text(f->raw, sql, "t");

    /* status reads the moved tables. */
    srl_store_status_t s;
    assert_int_equal(srl_store_get_status(f->st, &s, err, sizeof err), SRL_STORE_OK);
    assert_int_equal(s.outbox_depth, 4);
    assert_int_equal(s.dead_letters, 1);
    assert_int_equal(s.consumer_partitions, 1);
    assert_int_equal(s.last_version, top);
    assert_string_equal(s.settings.instance_id, "hub-1");

    /* The registry's session: capture and stamping still work, the
     * version sequence goes on, TRUNCATE is still refused. */
    srl_test_exec(f->raw, "INSERT INTO assessment_types (name, severity_class)"
                          " VALUES ('Ignored', 'ignore')");
    snprintf(sql, sizeof sql,
             "SELECT (version > %lld)::text || ' ' || origin FROM assessment_types"
             " WHERE name = 'Ignored'",
             top);
    assert_query_text(f->raw, sql, "true hub-1");
    assert_int_equal(query_int(f->raw, "SELECT count(*) FROM sysrepl.outbox o JOIN"
                                       " assessment_types t ON t.version = o.version"
                                       " WHERE t.name = 'Ignored' AND o.kind = 0"),
                     1);
    srl_test_exec(f->raw, "BEGIN; SET LOCAL sysrepl.stamped = on;"
                          " INSERT INTO assessment_types (name, severity_class, origin,"
                          " changed_at) VALUES ('Stamped', 'warn', 'hub-1', 1); COMMIT");
    snprintf(sql, sizeof sql,
             "SELECT (version > %lld)::text FROM assessment_types WHERE name = 'Stamped'", top);
    assert_query_text(f->raw, sql, "true");
    PGresult *res = PQexec(f->raw, "TRUNCATE policies");
    assert_int_equal(PQresultStatus(res), PGRES_FATAL_ERROR);
    assert_non_null(strstr(PQresultErrorMessage(res), "is not replicated"));
    PQclear(res);
}

/* Every table and column of the store, sysrepl's and the content's, has a
 * COMMENT a DBA reads in \d+. */
static void store_every_table_and_column_has_a_comment(void **state)
{
    struct fixture *f = fixture_new(state);
    migrated_store(f);
    const char *where = "c.relkind = 'r' AND (n.nspname = 'sysrepl' OR (n.nspname = 'public'"
                        " AND c.relname IN ('assessment_types', 'vulnerability_assessments',"
                        " 'policies')))";
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
             " WHERE %s",
             where);
    assert_int_equal(query_int(f->raw, sql), 11);
    snprintf(sql, sizeof sql,
             "SELECT coalesce(string_agg(c.relname, ' '), '') FROM pg_class c JOIN pg_namespace n"
             " ON n.oid = c.relnamespace WHERE %s AND obj_description(c.oid, 'pg_class') IS NULL",
             where);
    assert_query_text(f->raw, sql, "");
    snprintf(sql, sizeof sql,
             "SELECT coalesce(string_agg(c.relname || '.' || a.attname, ' '), '')"
             " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
             " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
             " WHERE %s AND col_description(c.oid, a.attnum) IS NULL",
             where);
    assert_query_text(f->raw, sql, "");
}

/* A sysrepl session puts sysrepl in front of the search_path the DSN set
 * and resolves the moved names there, the content where the DSN said. */
static void store_connect_puts_sysrepl_in_front_of_the_dsn_search_path(void **state)
{
    struct fixture *f = fixture_new(state);
    migrated_store(f);
    char dsn[700];
    snprintf(dsn, sizeof dsn, "%s options='-c search_path=public'", f->dsn);
    srl_store_t *st = srl_test_store_connect(dsn);
    PGconn *conn = srl_store_conn(st);
    assert_query_text(conn, "SHOW search_path", "sysrepl, public");
    assert_query_text(conn, "SELECT 'outbox'::regclass::oid = 'sysrepl.outbox'::regclass::oid",
                      "t");
    assert_query_text(conn, "SELECT 'policies'::regclass::oid = 'public.policies'::regclass::oid",
                      "t");
    srl_store_close(st);
}

/* Sessions carry "<program>/<instance>" as application_name, unless the
 * DSN names one. */
static void store_connect_names_the_session_in_pg_stat_activity(void **state)
{
    struct fixture *f = fixture_new(state);
    srl_store_set_application_name("sysrepl-test", "spoke-7");
    srl_store_t *st = srl_test_store_connect(f->dsn);
    assert_query_text(srl_store_conn(st),
                      "SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()",
                      "sysrepl-test/spoke-7");
    srl_store_close(st);
    char dsn[700];
    snprintf(dsn, sizeof dsn, "%s application_name=dba-chosen", f->dsn);
    st = srl_test_store_connect(dsn);
    assert_query_text(srl_store_conn(st),
                      "SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()",
                      "dba-chosen");
    srl_store_close(st);
    srl_store_set_application_name("sysrepl-test", NULL);
    st = srl_test_store_connect(f->dsn);
    assert_query_text(srl_store_conn(st), "SELECT current_setting('application_name')",
                      "sysrepl-test");
    srl_store_close(st);
}

/* replication_log rows older than the retention go, oldest first, in
 * batches, at most max_rows per call; newer rows stay. */
static void store_purge_replication_log_deletes_rows_past_retention(void **state)
{
    struct fixture *f = fixture_new(state);
    srl_store_t *st = migrated_store(f);
    char err[512];
    srl_test_exec(f->raw, "INSERT INTO sysrepl.replication_log (at, level, component, message)"
                          " SELECT now() - interval '8 days' - i * interval '1 second', 'info',"
                          " 'producer', 'old ' || i FROM generate_series(1, 6010) i;"
                          "INSERT INTO sysrepl.replication_log (at, level, component, message)"
                          " SELECT now() - interval '6 days', 'info', 'consumer', 'kept ' || i"
                          " FROM generate_series(1, 3) i");
    int64_t deleted = -1;
    /* A limited call takes the oldest rows. */
    assert_int_equal(srl_store_purge_replication_log(st, 7 * DAY_MS, 10, &deleted, err, sizeof err),
                     SRL_STORE_OK);
    assert_int_equal(deleted, 10);
    assert_int_equal(query_int(f->raw, "SELECT count(*) FROM sysrepl.replication_log"
                                       " WHERE message IN ('old 6010', 'old 6001', 'old 6000')"),
                     1);
    /* The rest in more than one batch. */
    assert_int_equal(srl_store_purge_replication_log(st, 7 * DAY_MS, 100000, &deleted, err,
                                                     sizeof err),
                     SRL_STORE_OK);
    assert_int_equal(deleted, 6000);
    assert_query_text(f->raw,
                      "SELECT string_agg(message, ',' ORDER BY message)"
                      " FROM sysrepl.replication_log",
                      "kept 1,kept 2,kept 3");
    assert_int_equal(srl_store_purge_replication_log(st, 7 * DAY_MS, 100000, &deleted, err,
                                                     sizeof err),
                     SRL_STORE_OK);
    assert_int_equal(deleted, 0);
    /* A shorter retention reaches the newer rows. */
    assert_int_equal(srl_store_purge_replication_log(st, DAY_MS, 100000, &deleted, err, sizeof err),
                     SRL_STORE_OK);
    assert_int_equal(deleted, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(store_upgrade_from_v4_keeps_content_in_schema_sysrepl, teardown),
        cmocka_unit_test_teardown(store_every_table_and_column_has_a_comment, teardown),
        cmocka_unit_test_teardown(store_connect_puts_sysrepl_in_front_of_the_dsn_search_path,
                                  teardown),
        cmocka_unit_test_teardown(store_connect_names_the_session_in_pg_stat_activity, teardown),
        cmocka_unit_test_teardown(store_purge_replication_log_deletes_rows_past_retention,
                                  teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
