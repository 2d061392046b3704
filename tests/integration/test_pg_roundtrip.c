/* The local PostgreSQL works as the stores expect: a fresh database per test,
 * UTF-8 text (non-ASCII included), 64-bit integers and binary bytea survive a
 * write and a read unchanged. Needs SRL_TEST_PG_DSN (tests/run sets it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "support/support.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

struct fixture {
    char dsn[512];
    PGconn *conn;
};

/* Called from the test body, not a cmocka setup: a skip() (no
 * SRL_TEST_PG_DSN) in a setup is reported as an error, in a test as a skip. */
static struct fixture *fixture_new(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    *state = f;
    srl_test_create_db(f->dsn, sizeof f->dsn);
    f->conn = srl_test_pg_connect(f->dsn);
    return f;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    if (f == NULL)
        return 0;
    PQfinish(f->conn);
    srl_test_drop_db(f->dsn);
    free(f);
    return 0;
}

static int64_t read_int8_binary(const char *p)
{
    uint32_t hi, lo;
    memcpy(&hi, p, 4);
    memcpy(&lo, p + 4, 4);
    return (int64_t)(((uint64_t)ntohl(hi) << 32) | ntohl(lo));
}

/* A fresh database is empty: no table of ours exists yet. */
static void pg_create_db_gives_empty_database(void **state)
{
    struct fixture *f = fixture_new(state);
    PGresult *res = PQexec(f->conn, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'");
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    assert_string_equal(PQgetvalue(res, 0, 0), "0");
    PQclear(res);
    res = PQexec(f->conn, "SHOW server_encoding");
    assert_string_equal(PQgetvalue(res, 0, 0), "UTF8");
    PQclear(res);
}

/* Text with non-ASCII characters, a bigint beyond double precision and bytea
 * holding every byte value (NUL included) come back byte for byte. */
static void pg_roundtrip_preserves_text_bigint_bytea(void **state)
{
    struct fixture *f = fixture_new(state);
    const char *text = "Ünïcødé — 日本語 ✓ CVE-2024-3094 \"quoted\" 'x'";
    const char *id_text = "9007199254740993"; /* 2^53 + 1 */
    unsigned char blob[256];
    for (size_t i = 0; i < sizeof blob; i++)
        blob[i] = (unsigned char)(255 - i);

    srl_test_exec(f->conn, "SET client_encoding = 'UTF8'");
    srl_test_exec(
        f->conn,
        "CREATE TABLE roundtrip (id bigint PRIMARY KEY, title text NOT NULL, body bytea NOT NULL)");

    const char *values[3] = {id_text, text, (const char *)blob};
    int lengths[3] = {0, 0, (int)sizeof blob};
    int formats[3] = {0, 0, 1}; /* bytea goes in binary: no escaping at all */
    PGresult *res = PQexecParams(f->conn,
                                 "INSERT INTO roundtrip (id, title, body) VALUES ($1, $2, $3)", 3,
                                 NULL, values, lengths, formats, 0);
    assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
    PQclear(res);

    /* Read back in binary so nothing is converted on the way out either. */
    res = PQexecParams(f->conn, "SELECT id, title, body FROM roundtrip", 0, NULL, NULL, NULL, NULL,
                       1);
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(res), 1);

    assert_int_equal(PQgetlength(res, 0, 0), 8);
    assert_true(read_int8_binary(PQgetvalue(res, 0, 0)) == INT64_C(9007199254740993));

    assert_int_equal(PQgetlength(res, 0, 1), (int)strlen(text));
    assert_memory_equal(PQgetvalue(res, 0, 1), text, strlen(text));

    assert_int_equal(PQgetlength(res, 0, 2), (int)sizeof blob);
    assert_memory_equal(PQgetvalue(res, 0, 2), blob, sizeof blob);
    PQclear(res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(pg_create_db_gives_empty_database, teardown),
        cmocka_unit_test_teardown(pg_roundtrip_preserves_text_bigint_bytea, teardown),
    };
    return cmocka_run_group_tests_name("pg_roundtrip", tests, NULL, NULL);
}
