/*
 * bench_consumer.c - sysrepl-consumer against its reference points, in one
 * run on the same services (real Kafka, real PostgreSQL):
 *
 *   rebuild   N assessments written to a fresh topic, then the first sync
 *             of an empty spoke (sysrepl-consumer --until-caught-up):
 *             records/s, wall time and the consumer's peak RSS; side by
 *             side with a raw COPY of the same rows into the same table
 *             of another empty store (one transaction, capture off).
 *   steady    M mixed changes (upserts of existing keys with newer
 *             versions, deletes, a few stale records) applied by a
 *             running consumer: applied changes/s.
 *
 *   latency   (--latency) the real pipeline: hub store -> sysrepl-producer
 *             -> Kafka -> sysrepl-consumer -> spoke store, at R changes/s
 *             for S seconds: hub commit -> spoke apply latency, p50/p99
 *             (spoke time from a bench-only row trigger, clock_timestamp()
 *             inside the apply transaction, which commits right after).
 *
 *   bench_consumer [--records N] [--changes M] [--steady-only]
 *                  (--steady-only: no raw COPY reference, for iterating on
 *                  the steady state; the first sync still runs, it makes
 *                  the spoke the steady state starts from)
 *   bench_consumer --latency [--rate R] [--seconds S]
 *
 * Services: SRL_TEST_PG_DSN and SRL_TEST_KAFKA (eval "$(deploy/local/env)"),
 * SRL_BUILD_DIR for the consumer binary (default: the directory of this
 * program's parent).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>

#include "sysrepl/clock.h"
#include "sysrepl/codec.h"
#include "sysrepl/kafka.h"
#include "sysrepl/keys.h"
#include "sysrepl/store.h"

#include "sysrepl/rows.h" /* the same COPY rows the consumer streams */

static double now_s(void)
{
    return (double)srl_clock_mono_us() / 1e6;
}

static void die(const char *what, const char *why)
{
    fprintf(stderr, "bench_consumer: %s: %s\n", what, why);
    exit(1);
}

static const char *env(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && v[0] ? v : dflt;
}

/* A fresh, migrated spoke database; its conninfo into dsn. */
static void make_store(const char *base, const char *name, char *dsn, size_t size)
{
    char sql[256], err[512];
    PGconn *c = PQconnectdb(base);
    if (PQstatus(c) != CONNECTION_OK)
        die("connect", PQerrorMessage(c));
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    PQclear(PQexec(c, sql));
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        die("create database", PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    snprintf(dsn, size, "%s dbname=%s", base, name);
    srl_store_rc_t rc;
    srl_store_t *st = srl_store_connect(dsn, &rc, err, sizeof(err));
    if (!st || srl_store_migrate(st, NULL, err, sizeof(err)) != SRL_STORE_OK ||
        srl_store_set_settings(st, name, "spoke", err, sizeof(err)) != SRL_STORE_OK)
        die("store", err);
    srl_store_close(st);
}

static void drop_store(const char *base, const char *name)
{
    char sql[256];
    PGconn *c = PQconnectdb(base);
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    PQclear(PQexec(c, sql));
    PQfinish(c);
}

/* The topics as the hub makes them: the hub's default settings (three
 * replicas and min.insync.replicas 2 on a cluster of three, one on a
 * single broker), one partition for the schemas. */
static void make_topics(rd_kafka_t *rk, const char *prefix)
{
    char eb[512], names[4][256];
    const char *topics[4];
    const int parts[4] = {0, 0, 0, 1};
    srl_topic_settings_t ts = {.partitions = 3,
                               .replication_factor = 0,
                               .min_insync_replicas = 0,
                               .segment_ms = 3600000,
                               .delete_retention_ms = 604800000};
    for (int k = 0; k < 3; k++)
        srl_topic_name(prefix, (srl_kind_t)k, names[k], sizeof(names[k]));
    srl_topic_name_schemas(prefix, names[3], sizeof(names[3]));
    for (int i = 0; i < 4; i++)
        topics[i] = names[i];
    if (!srl_kafka_ensure_topics(rk, &ts, topics, parts, 4, 30000, eb, sizeof(eb)))
        die("create topics", eb);
}

static char *dupf(const char *fmt, long a)
{
    char *s = NULL;
    if (asprintf(&s, fmt, a) < 0)
        die("asprintf", "out of memory");
    return s;
}

/* Assessment number i, version v: every optional field set on every
 * other record, like the codec bench's typical record. */
static void make_assessment(long i, int64_t v, srl_entity_t *e)
{
    memset(e, 0, sizeof(*e));
    e->kind = SRL_KIND_ASSESSMENT;
    srl_assessment_t *a = &e->u.assessment;
    a->vulnerability_id = dupf("CVE-2024-%07ld", i / 2);
    a->scope_kind = i % 2 ? SRL_SCOPE_FEED : SRL_SCOPE_GLOBAL;
    a->scope_name = i % 2 ? dupf("feed-%ld", i % 13) : NULL;
    a->assessment_type = dupf("Type%ld", i % 7);
    a->comment = i % 3 ? dupf("assessed after review of advisory %ld; not exploitable here", i)
                       : NULL;
    a->has_package_filter = i % 2;
    if (a->has_package_filter) {
        a->package_name = dupf("package-%ld", i % 1000);
        a->package_version_range = strdup("[1.0.0,2.0.0)");
    }
    a->has_expires_at = i % 4 == 0;
    a->expires_at = 4102444800000LL;
    a->assessed_by = strdup("security-team");
    a->assessed_at = 1700000000000LL + i;
    a->meta.origin = strdup("bench-hub");
    a->meta.version = v;
    a->meta.changed_at = 1760000000000LL + v;
}

static void produce(rd_kafka_t *rk, const char *topic, const char *key, const void *val, size_t len,
                    int64_t version)
{
    char v[32];
    snprintf(v, sizeof(v), "%" PRId64, version);
    rd_kafka_headers_t *h = rd_kafka_headers_new(2);
    rd_kafka_header_add(h, SRL_HDR_VERSION, -1, v, -1);
    rd_kafka_header_add(h, SRL_HDR_ORIGIN, -1, "bench-hub", -1);
    rd_kafka_resp_err_t err;
    while ((err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
                                    RD_KAFKA_V_KEY((void *)key, strlen(key)),
                                    RD_KAFKA_V_VALUE((void *)val, val ? len : 0),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h),
                                    RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
        rd_kafka_poll(rk, 5);
    if (err)
        die("produce", rd_kafka_err2str(err));
}

/* The high-water mark of pid's resident set (VmHWM), in kB; -1 when gone. */
static long vm_hwm_kb(pid_t pid)
{
    char path[64], line[256];
    long kb = -1;
    snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "VmHWM:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

/* Run the consumer to catch-up; returns wall seconds, *maxrss_kb.
 *
 * The peak RSS is the consumer's own VmHWM, sampled every 10 ms from its
 * exec to its exit, not wait4's ru_maxrss: Linux carries the high-water
 * mark of the address space a process had before exec into ru_maxrss, and
 * before exec the child is a fork of this bench, whose heap still holds
 * what it wrote to Kafka (over 200 MB for 1M records). ru_maxrss is
 * printed alongside for comparison. */
static double run_consumer(const char *bin, const char *dsn, const char *prefix, const char *kafka,
                           const char *instance, const char *logpath, long *maxrss_kb)
{
    char a1[600], a2[256], a3[256], a4[256];
    snprintf(a1, sizeof(a1), "store.dsn=%s", dsn);
    snprintf(a2, sizeof(a2), "topic.prefix=%s", prefix);
    snprintf(a3, sizeof(a3), "kafka.bootstrap.servers=%s", kafka);
    snprintf(a4, sizeof(a4), "instance.id=%s", instance);
    int execd[2]; /* closed on exec: EOF tells the exec happened */
    if (pipe2(execd, O_CLOEXEC) != 0)
        die("pipe", strerror(errno));
    double t0 = now_s();
    pid_t pid = fork();
    if (pid == 0) {
        close(execd[0]);
        if (!freopen(logpath, "w", stderr))
            _exit(127);
        /* SRL_BENCH_X: one more -X key=value for experiments */
        const char *x = getenv("SRL_BENCH_X");
        if (x && x[0])
            execl(bin, bin, "-X", a1, "-X", a2, "-X", a3, "-X", a4, "-X", "stats.interval_ms=0",
                  "-X", x, "--until-caught-up", (char *)NULL);
        else
            execl(bin, bin, "-X", a1, "-X", a2, "-X", a3, "-X", a4, "-X", "stats.interval_ms=0",
                  "--until-caught-up", (char *)NULL);
        _exit(127);
    }
    close(execd[1]);
    char c;
    while (read(execd[0], &c, 1) < 0 && errno == EINTR)
        ;
    close(execd[0]);
    int status;
    struct rusage ru;
    long hwm = 0;
    for (;;) {
        pid_t w = wait4(pid, &status, WNOHANG, &ru);
        if (w == pid)
            break;
        if (w < 0)
            die("wait4", strerror(errno));
        long kb = vm_hwm_kb(pid);
        if (kb > hwm)
            hwm = kb;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        die("consumer", logpath);
    *maxrss_kb = hwm;
    fprintf(stderr,
            "  (consumer cpu: user %.2f s, sys %.2f s; VmHWM %.1f MB, wait4 ru_maxrss %.1f MB)\n",
            ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
            ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6, hwm / 1024.0, ru.ru_maxrss / 1024.0);
    return now_s() - t0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static pid_t spawn(const char *bin, char *const argv[], const char *logpath)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen(logpath, "w", stderr))
            _exit(127);
        execv(bin, argv);
        _exit(127);
    }
    return pid;
}

static PGresult *must(PGconn *c, const char *sql, ExecStatusType want)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != want)
        die(sql, PQerrorMessage(c));
    return r;
}

/* hub -> producer -> Kafka -> consumer -> spoke, at rate changes/s. */
static int latency(const char *base, const char *kafka, const char *build, int rate, int seconds)
{
    char hub_dsn[600], spoke_dsn[600], hub_name[64], spoke_name[64], prefix[64], err[512];
    char pbin[1024], cbin[1024];
    snprintf(pbin, sizeof(pbin), "%s/producer/sysrepl-producer", build);
    snprintf(cbin, sizeof(cbin), "%s/consumer/sysrepl-consumer", build);
    if (access(pbin, X_OK) != 0)
        die(pbin, "not built: the latency bench needs the producer");
    snprintf(prefix, sizeof(prefix), "bench-e2e-%ld-%ld", (long)getpid(), (long)time(NULL));
    snprintf(hub_name, sizeof(hub_name), "bench_e2e_hub_%ld", (long)getpid());
    snprintf(spoke_name, sizeof(spoke_name), "bench_e2e_spoke_%ld", (long)getpid());
    make_store(base, spoke_name, spoke_dsn, sizeof(spoke_dsn));
    make_store(base, hub_name, hub_dsn, sizeof(hub_dsn));
    srl_store_rc_t rc;
    srl_store_t *st = srl_store_connect(hub_dsn, &rc, err, sizeof(err));
    if (!st || srl_store_set_settings(st, "bench-hub", "hub", err, sizeof(err)) != SRL_STORE_OK)
        die("hub settings", err);
    srl_store_close(st);
    PGconn *spoke = PQconnectdb(spoke_dsn);
    PQclear(must(spoke,
                 "CREATE TABLE bench_arrival (key text, version bigint,"
                 " at double precision);"
                 "CREATE FUNCTION bench_arrival() RETURNS trigger LANGUAGE plpgsql AS $$"
                 " BEGIN INSERT INTO bench_arrival VALUES (NEW.key, NEW.version,"
                 " extract(epoch FROM clock_timestamp())); RETURN NULL; END $$;"
                 "CREATE TRIGGER bench_arrival AFTER INSERT OR UPDATE ON vulnerability_assessments"
                 " FOR EACH ROW EXECUTE FUNCTION bench_arrival();",
                 PGRES_COMMAND_OK));
    PGconn *hub = PQconnectdb(hub_dsn);
    /* One writer session, 100 commits a second, each waiting for its WAL
     * flush. (It used synchronous_commit = off until the producer read the
     * outbox; the producer now reads the WAL, and logical decoding sees an
     * asynchronous commit only once the WAL writer has flushed it, up to
     * wal_writer_delay later: the latency measured would be that delay.) */
    PQclear(must(hub,
                 "INSERT INTO assessment_types (name, severity_class) VALUES ('Blocked', 'severe')",
                 PGRES_COMMAND_OK));

    char a_dsn_h[700], a_dsn_s[700], a_prefix[128], a_kafka[256];
    snprintf(a_dsn_h, sizeof(a_dsn_h), "store.dsn=%s", hub_dsn);
    snprintf(a_dsn_s, sizeof(a_dsn_s), "store.dsn=%s", spoke_dsn);
    snprintf(a_prefix, sizeof(a_prefix), "topic.prefix=%s", prefix);
    snprintf(a_kafka, sizeof(a_kafka), "kafka.bootstrap.servers=%s", kafka);
    /* The producer's ack log splits the latency: hub commit -> Kafka ack
     * (producer side), Kafka ack -> spoke apply (broker and consumer). */
    const char *acks = "/tmp/bench_e2e_acks.txt";
    unlink(acks);
    char *pargv[] = {pbin,        "-X",         "instance.id=bench-hub",
                     "-X",        a_dsn_h,      "-X",
                     a_prefix,    "-X",         a_kafka,
                     "--ack-log", (char *)acks, NULL};
    const char *x = getenv("SRL_BENCH_X");
    char *cargv[] = {cbin, "-X",    "instance.id=bench-spoke", "-X",      a_dsn_s, "-X", a_prefix,
                     "-X", a_kafka, x ? "-X" : NULL,           (char *)x, NULL};
    /* Topics made here first: the producer would create them too, but
     * right after creation a broker may still answer "not leader". */
    {
        char eb[256];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_conf_set(conf, "bootstrap.servers", kafka, eb, sizeof(eb));
        rd_kafka_t *admin = rd_kafka_new(RD_KAFKA_PRODUCER, conf, eb, sizeof(eb));
        make_topics(admin, prefix);
        rd_kafka_destroy(admin);
        sleep(2);
    }
    pid_t prod = spawn(pbin, pargv, "/tmp/bench_e2e_producer.log");
    /* the producer creates the topics; the consumer waits for them */
    pid_t cons = spawn(cbin, cargv, "/tmp/bench_e2e_consumer.log");
    sleep(5); /* both up, first sync of the empty topics done */

    int total = rate * seconds;
    double *commit_at = calloc((size_t)total + 1, sizeof(double));
    int64_t *versions = calloc((size_t)total + 1, sizeof(int64_t));
    double start = now_s();
    struct timespec rt;
    /* 100 commits a second, rate/100 changes each: the writer's own round
     * trips would otherwise cap the rate on a small box. */
    int per = rate / 100 > 0 ? rate / 100 : 1;
    for (int i = 0; i < total; i += per) {
        double due = start + (double)i / rate;
        while (now_s() < due)
            usleep(200);
        char sql[16384];
        size_t len = (size_t)
            snprintf(sql, sizeof(sql),
                     "INSERT INTO vulnerability_assessments (vulnerability_id,"
                     " assessment_type, scope_kind, assessed_at, comment) VALUES ");
        for (int j = i; j < i + per && j < total; j++)
            len += (size_t)
                snprintf(sql + len, sizeof(sql) - len,
                         "%s('CVE-2025-%07d', 'Blocked', 'global', 1700000000000, 'e2e %d')",
                         j > i ? ", " : "", j % 5000, j);
        snprintf(sql + len, sizeof(sql) - len,
                 " ON CONFLICT (key) DO UPDATE SET comment = EXCLUDED.comment RETURNING version");
        PGresult *r = must(hub, sql, PGRES_TUPLES_OK);
        clock_gettime(CLOCK_REALTIME, &rt);
        for (int row = 0; row < PQntuples(r) && i + row < total; row++) {
            commit_at[i + row] = rt.tv_sec + rt.tv_nsec / 1e9;
            versions[i + row] = strtoll(PQgetvalue(r, row, 0), NULL, 10);
        }
        PQclear(r);
    }
    double took = now_s() - start;
    /* wait for the last change to arrive */
    char q[256];
    snprintf(q, sizeof(q), "SELECT count(*) FROM bench_arrival WHERE version = %" PRId64,
             versions[total - 1]);
    for (int i = 0; i < 300; i++) {
        PGresult *r = must(spoke, q, PGRES_TUPLES_OK);
        bool done = strcmp(PQgetvalue(r, 0, 0), "1") == 0;
        PQclear(r);
        if (done)
            break;
        usleep(100000);
    }
    PGresult *r = must(spoke, "SELECT version, at FROM bench_arrival", PGRES_TUPLES_OK);
    double *lat = calloc((size_t)total, sizeof(double));
    int nlat = 0;
    /* versions grow with i: binary search each arrival's commit time */
    for (int row = 0; row < PQntuples(r); row++) {
        int64_t v = strtoll(PQgetvalue(r, row, 0), NULL, 10);
        double at = strtod(PQgetvalue(r, row, 1), NULL);
        int lo = 0, hi = total - 1;
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if (versions[mid] < v)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (versions[lo] == v && nlat < total)
            lat[nlat++] = (at - commit_at[lo]) * 1000.0;
    }
    PQclear(r);
    /* split at the Kafka ack, when the producer logged it */
    double *to_ack = calloc((size_t)total, sizeof(double));
    double *from_ack = calloc((size_t)total, sizeof(double));
    int nsplit = 0;
    FILE *af = fopen(acks, "r");
    if (af) {
        double *ack_at = calloc((size_t)total, sizeof(double));
        long long ver, us;
        while (fscanf(af, "%lld %lld", &ver, &us) == 2) {
            int lo = 0, hi = total - 1;
            while (lo < hi) {
                int mid = (lo + hi) / 2;
                if (versions[mid] < ver)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            if (versions[lo] == ver)
                ack_at[lo] = us / 1e6;
        }
        fclose(af);
        r = must(spoke, "SELECT version, at FROM bench_arrival", PGRES_TUPLES_OK);
        for (int row = 0; row < PQntuples(r); row++) {
            int64_t v = strtoll(PQgetvalue(r, row, 0), NULL, 10);
            double at = strtod(PQgetvalue(r, row, 1), NULL);
            int lo = 0, hi = total - 1;
            while (lo < hi) {
                int mid = (lo + hi) / 2;
                if (versions[mid] < v)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            if (versions[lo] == v && ack_at[lo] > 0 && nsplit < total) {
                to_ack[nsplit] = (ack_at[lo] - commit_at[lo]) * 1000.0;
                from_ack[nsplit++] = (at - ack_at[lo]) * 1000.0;
            }
        }
        PQclear(r);
        free(ack_at);
        qsort(to_ack, (size_t)nsplit, sizeof(double), cmp_double);
        qsort(from_ack, (size_t)nsplit, sizeof(double), cmp_double);
    }
    qsort(lat, (size_t)nlat, sizeof(double), cmp_double);
    printf("end-to-end latency, hub commit -> spoke apply, %d changes at %.0f/s (target %d/s):\n",
           total, total / took, rate);
    if (nlat > 0)
        printf("  arrived %d  p50 %.1f ms  p90 %.1f ms  p99 %.1f ms  max %.1f ms\n", nlat,
               lat[nlat / 2], lat[(int)(nlat * 0.9)], lat[(int)(nlat * 0.99)], lat[nlat - 1]);
    if (nsplit > 0) {
        printf("  hub commit -> Kafka ack (producer):     p50 %.1f ms  p99 %.1f ms\n",
               to_ack[nsplit / 2], to_ack[(int)(nsplit * 0.99)]);
        printf("  Kafka ack -> spoke apply (consumer):    p50 %.1f ms  p99 %.1f ms\n",
               from_ack[nsplit / 2], from_ack[(int)(nsplit * 0.99)]);
    }
    free(to_ack);
    free(from_ack);
    kill(prod, SIGTERM);
    kill(cons, SIGTERM);
    waitpid(prod, NULL, 0);
    waitpid(cons, NULL, 0);
    PQfinish(hub);
    PQfinish(spoke);
    drop_store(base, hub_name);
    drop_store(base, spoke_name);
    free(commit_at);
    free(versions);
    free(lat);
    return nlat == total ? 0 : 1;
}

/* The reference: a raw COPY of rows into vulnerability_assessments of the
 * store at dsn, one transaction, capture off. Returns seconds. */
static double raw_copy(const char *dsn, const srl_buf_t *rows)
{
    PGconn *c = PQconnectdb(dsn);
    double t0 = now_s();
    PQclear(PQexec(c, "BEGIN; SET LOCAL sysrepl.applying = 'on'"));
    char copy_sql[512];
    snprintf(copy_sql, sizeof(copy_sql), "COPY vulnerability_assessments (%s) FROM STDIN",
             srl_rows_columns(SRL_KIND_ASSESSMENT));
    PGresult *r = PQexec(c, copy_sql);
    if (PQresultStatus(r) != PGRES_COPY_IN)
        die("raw copy", PQerrorMessage(c));
    PQclear(r);
    for (size_t off = 0; off < rows->len; off += 1 << 20) {
        size_t len = rows->len - off < (1u << 20) ? rows->len - off : (1u << 20);
        PQputCopyData(c, rows->data + off, (int)len);
    }
    PQputCopyEnd(c, NULL);
    while ((r = PQgetResult(c)) != NULL) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            die("raw copy", PQerrorMessage(c));
        PQclear(r);
    }
    PQclear(PQexec(c, "COMMIT"));
    double took = now_s() - t0;
    PQfinish(c);
    return took;
}

int main(int argc, char **argv)
{
    long n = 1000000, changes = 200000;
    int lat_rate = 1000, lat_seconds = 10;
    bool lat_mode = false, steady_only = false;
    char err[512];
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--records") == 0 && i + 1 < argc)
            n = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--changes") == 0 && i + 1 < argc)
            changes = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--latency") == 0)
            lat_mode = true;
        else if (strcmp(argv[i], "--steady-only") == 0)
            steady_only = true;
        else if (strcmp(argv[i], "--rate") == 0 && i + 1 < argc)
            lat_rate = (int)strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            lat_seconds = (int)strtol(argv[++i], NULL, 10);
        else
            die("usage", "bench_consumer [--records N] [--changes M] [--steady-only] | --latency"
                         " [--rate R] [--seconds S]");
    }
    const char *base = env("SRL_TEST_PG_DSN",
                           "host=127.0.0.1 port=55432 user=postgres dbname=postgres");
    const char *kafka = env("SRL_TEST_KAFKA", "127.0.0.1:59092");
    if (lat_mode)
        return latency(base, kafka, env("SRL_BUILD_DIR", "."), lat_rate, lat_seconds);
    char bin[1024];
    snprintf(bin, sizeof(bin), "%s/consumer/sysrepl-consumer", env("SRL_BUILD_DIR", "."));
    if (access(bin, X_OK) != 0)
        die(bin, "not found (set SRL_BUILD_DIR to the build directory)");

    char prefix[64], topic[256];
    snprintf(prefix, sizeof(prefix), "bench-cons-%ld-%ld", (long)getpid(), (long)time(NULL));
    srl_topic_name(prefix, SRL_KIND_ASSESSMENT, topic, sizeof(topic));
    char eb[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", kafka, eb, sizeof(eb));
    rd_kafka_conf_set(conf, "linger.ms", "20", eb, sizeof(eb));
    rd_kafka_conf_set(conf, "compression.type", "lz4", eb, sizeof(eb));
    rd_kafka_conf_set(conf, "queue.buffering.max.messages", "1000000", eb, sizeof(eb));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, eb, sizeof(eb));
    if (!rk)
        die("producer", eb);
    make_topics(rk, prefix);
    srl_registry_t *reg = srl_registry_new(err, sizeof(err));

    /* Write the records; keep the same rows as COPY text for the raw COPY. */
    srl_buf_t rows = {0};
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        srl_entity_t e;
        char key[256];
        uint8_t *buf;
        size_t len;
        make_assessment(i, i + 1, &e);
        if (!srl_codec_encode(reg, &e, &buf, &len, err, sizeof(err)) ||
            srl_key_build(&e, key, sizeof(key)) < 0 ||
            !srl_rows_format(&rows, &e, false, NULL, err, sizeof(err)))
            die("encode", err);
        produce(rk, topic, key, buf, len, i + 1);
        free(buf);
        srl_entity_clear(&e);
    }
    rd_kafka_flush(rk, 120000);
    printf("wrote %ld assessments to %s in %.1f s\n", n, topic, now_s() - t0);

    /* Reference: raw COPY of the same rows into the same table. */
    char dsn_copy[600], dsn_spoke[600];
    char name_copy[64], name_spoke[64];
    snprintf(name_copy, sizeof(name_copy), "bench_cons_copy_%ld", (long)getpid());
    snprintf(name_spoke, sizeof(name_spoke), "bench_cons_spoke_%ld", (long)getpid());
    make_store(base, name_spoke, dsn_spoke, sizeof(dsn_spoke));
    double copy_s = 0;
    if (!steady_only) {
        make_store(base, name_copy, dsn_copy, sizeof(dsn_copy));
        copy_s = raw_copy(dsn_copy, &rows);
    }
    srl_buf_free(&rows);
    /* The consumer's first sync into an empty spoke. */
    PGconn *c;
    PGresult *r;
    long rss_kb = 0;
    double rebuild_s = run_consumer(bin, dsn_spoke, prefix, kafka, "bench-spoke",
                                    "/tmp/bench_consumer_rebuild.log", &rss_kb);
    c = PQconnectdb(dsn_spoke);
    r = PQexec(c, "SELECT count(*) FROM vulnerability_assessments");
    long rows_spoke = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    PQfinish(c);
    printf("\nrebuild of %ld assessments (rows on the spoke: %ld)\n", n, rows_spoke);
    if (!steady_only)
        printf("  raw COPY into vulnerability_assessments   %6.2f s  %9.0f rows/s\n", copy_s,
               n / copy_s);
    printf("  sysrepl-consumer first sync (wall)        %6.2f s  %9.0f records/s", rebuild_s,
           n / rebuild_s);
    if (!steady_only)
        printf("  = %.2fx raw COPY", rebuild_s / copy_s);
    printf("  peak RSS %.1f MB\n", rss_kb / 1024.0);

    /* Steady state: mixed changes to existing keys. */
    t0 = now_s();
    int64_t v = n + 1;
    unsigned seed = 1;
    long ups = 0, dels = 0, stale = 0;
    for (long j = 0; j < changes; j++) {
        seed = seed * 1103515245u + 12345u;
        long i = (long)((seed >> 4) % (unsigned long)n);
        unsigned what = (seed >> 20) % 100;
        srl_entity_t e;
        char key[256];
        uint8_t *buf;
        size_t len;
        make_assessment(i, what < 5 ? 1 : v, &e); /* 5% stale: version 1 */
        srl_key_build(&e, key, sizeof(key));
        if (what >= 5 && what < 35) {
            produce(rk, topic, key, NULL, 0, v++);
            dels++;
        } else {
            if (!srl_codec_encode(reg, &e, &buf, &len, err, sizeof(err)))
                die("encode", err);
            produce(rk, topic, key, buf, len, what < 5 ? 1 : v);
            free(buf);
            if (what < 5)
                stale++;
            else
                ups++, v++;
        }
        srl_entity_clear(&e);
    }
    rd_kafka_flush(rk, 120000);
    printf("\nwrote %ld changes (%ld upserts, %ld deletes, %ld stale) in %.1f s\n", changes, ups,
           dels, stale, now_s() - t0);
    double steady_s = run_consumer(bin, dsn_spoke, prefix, kafka, "bench-spoke",
                                   "/tmp/bench_consumer_steady.log", &rss_kb);
    printf("  sysrepl-consumer steady state (wall, incl. start)  %6.2f s  %9.0f changes/s"
           "  peak RSS %.1f MB\n",
           steady_s, changes / steady_s, rss_kb / 1024.0);

    if (!getenv("SRL_BENCH_KEEP")) {
        if (!steady_only)
            drop_store(base, name_copy);
        drop_store(base, name_spoke);
    } else {
        printf("kept: %s, %s\n", dsn_copy, dsn_spoke);
    }
    srl_registry_free(reg);
    rd_kafka_destroy(rk);
    return 0;
}
