/*
 * bench_producer_writer.c - the writer side of the producer's latency
 * bench: RATE single-row transactions per second for SECONDS on the hub
 * store (an upsert of one assessment, capture triggers on), printing
 * "version commit_wallclock_us" per change once its COMMIT returned.
 * bench_producer.sh joins these with the producer's --ack-log lines
 * ("version delivered_wallclock_us") for commit -> delivery latency.
 *
 *   bench_producer_writer DSN RATE SECONDS > commits.txt
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <libpq-fe.h>

#include "sysrepl/clock.h"

static int64_t wall_us(void)
{
    return srl_clock_wall_us();
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: bench_producer_writer DSN RATE SECONDS\n");
        return 1;
    }
    PGconn *conn = PQconnectdb(argv[1]);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "%s", PQerrorMessage(conn));
        return 1;
    }
    long rate = strtol(argv[2], NULL, 10), secs = strtol(argv[3], NULL, 10);
    long n = rate * secs;
    int64_t start = wall_us(), period = 1000000 / rate;
    for (long i = 0; i < n; i++) {
        int64_t due = start + i * period;
        while (wall_us() < due) {
            struct timespec ts = {0, 100000};
            nanosleep(&ts, NULL);
        }
        char id[64];
        snprintf(id, sizeof(id), "CVE-2025-%ld", 10000 + i % 5000);
        const char *params[1] = {id};
        PGresult *res = PQexecParams(
            conn,
            "INSERT INTO vulnerability_assessments (vulnerability_id, assessment_type,"
            " scope_kind, comment, assessed_at) VALUES ($1, 'Blocked', 'global', md5(random()::text), 0)"
            " ON CONFLICT (key) DO UPDATE SET comment = EXCLUDED.comment RETURNING version",
            1, NULL, params, NULL, NULL, 0);
        int64_t t = wall_us();
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            fprintf(stderr, "%s", PQerrorMessage(conn));
            return 1;
        }
        printf("%s %" PRId64 "\n", PQgetvalue(res, 0, 0), t);
        PQclear(res);
    }
    PQfinish(conn);
    return 0;
}
