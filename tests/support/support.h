/* Helpers shared by the C tests (library srl_testsupport, linked into every
 * test). They find the services tests/run started (SRL_TEST_PG_DSN,
 * SRL_TEST_KAFKA), make throwaway databases and unique topic names so tests
 * can share one PostgreSQL and one Kafka, and wait for things with a bound.
 *
 * Every helper that can fail ends the current cmocka test itself (fail_msg
 * or skip), so it may only be called from inside a test, setup or teardown.
 * Note: cmocka (1.1.5) reports a skip() inside a setup function as an
 * error, so call the skipping helpers from the test body (or check getenv in
 * the setup and skip in the test, as test_kafka_compaction.c does).
 * Include <cmocka.h> (with its usual prelude) before this header. */
#ifndef SRL_TEST_SUPPORT_H
#define SRL_TEST_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

/* Base conninfo of the test PostgreSQL server, from SRL_TEST_PG_DSN, e.g.
 * "host=127.0.0.1 port=55432 user=postgres dbname=postgres".
 * Skips the test (cmocka skip()) with a message when the variable is unset:
 * run the test through tests/run, or eval "$(deploy/local/env)". */
const char *srl_test_pg_dsn(void);

/* Bootstrap servers of the test Kafka broker, from SRL_TEST_KAFKA
 * (e.g. "127.0.0.1:59092"). Skips the test when unset, like above. */
const char *srl_test_kafka(void);

/* Creates a fresh, uniquely named, empty database on the test server and
 * writes its conninfo (the base DSN with dbname replaced) to dsn_out.
 * Fails the test if the server refuses or dsn_out is too small; skips it if
 * SRL_TEST_PG_DSN is unset. Pair with srl_test_drop_db(). */
void srl_test_create_db(char *dsn_out, size_t size);

/* Drops the database named by dsn (made by srl_test_create_db), closing any
 * session still connected to it. NULL or "" is a no-op; a failure is only
 * printed, so it is safe in teardown. */
void srl_test_drop_db(const char *dsn);

/* Connects to dsn; fails the test with the server's message on error.
 * The caller owns the connection (PQfinish). */
PGconn *srl_test_pg_connect(const char *dsn);

/* Runs sql (one or more statements) on conn; fails the test with the
 * statement and the server's message on error. Rows are dropped. */
void srl_test_exec(PGconn *conn, const char *sql);

/* A migration-free connection to the store at dsn (srl_store_connect);
 * fails the test with the reason on error. Close with srl_store_close. */
struct srl_store *srl_test_store_connect(const char *dsn);

/* Returns "<prefix>-<pid>-<time>-<n>", unique across processes and calls,
 * made only of [A-Za-z0-9._-] so it is a valid Kafka topic name or prefix.
 * The caller owns the string (free). Fails the test on allocation failure. */
char *srl_test_unique_name(const char *prefix);

/* Polls ready(arg) until it returns true or timeout_ms passes; the pause
 * between polls grows from 20 ms to 500 ms. Returns whether ready() ever
 * returned true (it is called once more at the deadline). */
bool srl_test_wait_until(bool (*ready)(void *arg), void *arg, int timeout_ms);

/* Milliseconds on a monotonic clock, for measuring and deadlines. */
long long srl_test_now_ms(void);

#endif
