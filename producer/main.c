/*
 * main.c - sysrepl-producer: the hub's outbox -> Avro records -> topics.
 *
 * Start: config (exit 1 naming the key), store (retried while unreachable;
 * a bad DSN, a store at another schema version or a spoke store: exit 3),
 * the producer lock (one producer per store: a second one waits and takes
 * over when the first dies), topics created or checked, writer schemas
 * published, topics written by another hub refused (exit 2), snapshot on
 * --snapshot or when every content topic is empty.
 *
 * The drain loop (one thread; two store sessions, work and lock): up to
 * PIPELINE_DEPTH batches in flight. Reads are asynchronous
 * on the work session: as soon as a read's result is taken, the next read
 * is sent, so the server runs it while this batch is encoded and
 * published. A batch's outbox rows are deleted (asynchronously, on the lock
 * session) once every record of it was delivered. Reads continue above the
 * highest version read. Transactions commit out of version order, so once
 * a second (and after a batch failed) a read takes the rows below the
 * lowest version in flight instead: rows that committed late, or whose
 * delivery failed. Such a row is published only if its content was not
 * changed since (outbox.c), so a late row never overwrites a newer record
 * of its key.
 *
 * Signals: SIGTERM and SIGINT ask for a clean stop (no new reads, wait up
 * to 30 s for what is in flight, delete what was delivered, exit 0); the
 * handler only sets a flag. kill -9 anywhere is safe: undeleted rows are
 * published again on the next start (duplicates are harmless, and a row
 * superseded meanwhile is not published again).
 *
 * Exit codes: 0 clean stop, 1 config or usage error, 2 refused to run
 * (a topic that would lose state, topics written by another hub), 3 store
 * unusable (bad DSN, authentication, schema version, not a hub), 4 an
 * unexpected fatal error.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "outbox.h"
#include "sink.h"
#include "sink_http.h"
#include "snapshot.h"
#include "sysrepl/codec.h"
#include "sysrepl/config.h"
#include "sysrepl/kafka.h"
#include "sysrepl/log.h"
#include "sysrepl/store.h"

enum { EXIT_OK = 0, EXIT_CONFIG = 1, EXIT_REFUSED = 2, EXIT_STORE = 3, EXIT_FATAL = 4 };

#define PIPELINE_DEPTH 3
#define SWEEP_INTERVAL_MS 1000   /* read below the batches in flight this often */
#define STOP_GRACE_MS 30000      /* how long a clean stop waits for deliveries */
#define STATE_INTERVAL_MS 1000   /* producer_state updates at most this often */
#define LOCK_CHECK_MS 1000
/* pg_try_advisory_lock key of the producer: "srlprod1" in ASCII. */
#define PRODUCER_LOCK_KEY "8318592452394528305"
#define NOTIFY_CHANNEL "sysrepl_outbox"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* ---- replication_log: important lines, queued by the log sink ---- */

#define LOGQ_MAX 256
typedef struct logq_entry {
    char level[8];
    char component[32];
    char message[1024];
} logq_entry_t;

static struct {
    pthread_mutex_t mu;
    logq_entry_t items[LOGQ_MAX];
    size_t count;
    size_t dropped;
} logq = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* The log sink runs under the log mutex, on any thread (librdkafka's too):
 * it only queues; the loop writes the queue to replication_log. */
static void log_sink(void *ctx, srl_log_level_t lvl, const char *component, const char *msg,
                     const char *kv)
{
    (void)ctx;
    if (lvl < SRL_LOG_INFO || strcmp(component, "producer") != 0)
        return;
    pthread_mutex_lock(&logq.mu);
    if (logq.count < LOGQ_MAX) {
        logq_entry_t *e = &logq.items[logq.count++];
        snprintf(e->level, sizeof(e->level), "%s", srl_log_level_name(lvl));
        snprintf(e->component, sizeof(e->component), "%s", component);
        snprintf(e->message, sizeof(e->message), "%s%s%s", msg, kv[0] ? " " : "", kv);
    } else {
        logq.dropped++;
    }
    pthread_mutex_unlock(&logq.mu);
}

/* ---- the producer ---- */

typedef struct producer {
    srl_config_t *cfg;
    char instance_id[128];
    unsigned kind_mask;
    int batch_size;
    int64_t poll_interval_ms;
    int64_t stats_interval_ms;
    bool once;        /* exit 0 when the outbox is empty */
    FILE *ack_log;    /* --ack-log: "version wallclock_us" per delivered record */

    srl_store_t *st;   /* work session: outbox reads, deletes, LISTEN */
    srl_store_t *lock; /* the session holding the producer lock; also runs the
                        * DELETEs, asynchronously, while st reads on */
    srl_outbox_batch_t *deleting; /* the ring's head while its DELETE runs */
    int64_t delete_started_us;
    bool store_ok;
    srl_registry_t *reg;
    srl_sink_t *sink;
    bool sink_broken; /* a fatal delivery error: make a new sink when idle */

    srl_outbox_batch_t *ring[PIPELINE_DEPTH];
    size_t ring_head, ring_count;
    int64_t cursor;       /* next read: versions above this */
    bool read_pending;    /* a read was sent on st and not taken yet */
    int64_t read_below;   /* its range (see next_read_range) */
    bool read_from_start;
    int64_t read_sent_us;
    int64_t last_sweep_ms;
    bool sweep_now;       /* after a failed batch: read below the batches in flight */
    bool more;            /* the last read was full: read again at once */
    bool notified;
    int64_t next_poll_ms;
    bool idle_seen;       /* --once: a read from the start found nothing */

    /* numbers (stats line, producer_state) */
    int64_t delivered, superseded, not_replicated, tombstones, batches, failed_batches;
    int64_t last_delivered_version;
    int64_t produce_us;
    int64_t wait_us;      /* asleep in poll(): Kafka acks, DELETEs, no work */
    int64_t query_us;     /* reads on the server: sent to taken (overlapping) */
    srl_outbox_timing_t timing;
    int64_t stats_at_ms, stats_delivered;
    int64_t state_at_ms, state_delivered;
    bool state_dirty;
    char last_error[512];
    bool error_dirty;
    int64_t lock_check_ms;
} producer_t;

static int64_t now_ms(void)
{
    return srl_now_us() / 1000;
}

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void note_error(producer_t *p, const char *what, const char *why)
{
    snprintf(p->last_error, sizeof(p->last_error), "%s: %.480s", what, why);
    p->error_dirty = true;
}

/* Sleep up to ms, waking early on a stop request. */
static void nap(int64_t ms)
{
    while (ms > 0 && !stop_requested) {
        int step = ms > 200 ? 200 : (int)ms;
        poll(NULL, 0, step);
        ms -= step;
    }
}

/* Server notices (and libpq's own, e.g. "terminating connection due to
 * administrator command") go to the log, not raw to stderr. */
static void on_pg_notice(void *arg, const char *message)
{
    (void)arg;
    char m[512];
    snprintf(m, sizeof(m), "%s", message);
    size_t n = strlen(m);
    while (n > 0 && (m[n - 1] == '\n' || m[n - 1] == ' '))
        m[--n] = '\0';
    srl_log(SRL_LOG_WARN, "producer", "store notice", "detail=%s", srl_log_q(m));
}

static void store_drop(producer_t *p)
{
    srl_store_close(p->st);
    srl_store_close(p->lock);
    p->st = p->lock = NULL;
    p->store_ok = false;
    p->deleting = NULL; /* its DELETE died with the session: sent again */
    p->read_pending = false;
}

/* Connect both sessions, check the store, take the lock (waiting while
 * another producer holds it), LISTEN. Retries unreachable stores forever;
 * returns false with an exit code on a store that cannot be used, or when
 * a stop was requested (*exit_code 0). */
static bool store_connect(producer_t *p, bool first, int *exit_code)
{
    const char *dsn = srl_config_get_str(p->cfg, "store.dsn");
    char err[512];
    int64_t backoff = 500;
    bool waiting_logged = false;
    *exit_code = EXIT_OK;
    store_drop(p);
    while (!stop_requested) {
        srl_store_rc_t rc = SRL_STORE_OK;
        p->st = srl_store_connect(dsn, &rc, err, sizeof(err));
        if (p->st)
            p->lock = srl_store_connect(dsn, &rc, err, sizeof(err));
        if (p->st && p->lock) {
            PQsetNoticeProcessor(srl_store_conn(p->st), on_pg_notice, NULL);
            PQsetNoticeProcessor(srl_store_conn(p->lock), on_pg_notice, NULL);
            rc = srl_store_check_version(p->st, err, sizeof(err));
            if (rc == SRL_STORE_VERSION) {
                srl_log(SRL_LOG_ERROR, "producer", "store refused", "reason=%s", srl_log_q(err));
                *exit_code = EXIT_STORE;
                return false;
            }
        }
        if (rc == SRL_STORE_OK && p->st && p->lock) {
            srl_store_settings_t s;
            rc = srl_store_get_settings(p->st, &s, err, sizeof(err));
            if (rc == SRL_STORE_OK) {
                if (strcmp(s.role, "hub") != 0) {
                    srl_log(SRL_LOG_ERROR, "producer", "store refused",
                            "reason=%s", srl_log_q("store role is not hub (sysrepl init --role hub)"));
                    *exit_code = EXIT_STORE;
                    return false;
                }
                if (p->instance_id[0] && strcmp(p->instance_id, s.instance_id) != 0) {
                    srl_log(SRL_LOG_ERROR, "producer", "config refused",
                            "key=instance.id reason=%s",
                            srl_log_q("differs from the store's instance id"));
                    *exit_code = EXIT_CONFIG;
                    return false;
                }
                snprintf(p->instance_id, sizeof(p->instance_id), "%s", s.instance_id);
            }
        }
        if (rc == SRL_STORE_OK && p->st && p->lock) {
            PGresult *res = PQexec(srl_store_conn(p->lock),
                                   "SELECT pg_try_advisory_lock(" PRODUCER_LOCK_KEY ")");
            if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                rc = srl_store_classify(srl_store_conn(p->lock), res, "taking the producer lock",
                                        err, sizeof(err));
                PQclear(res);
            } else if (PQgetvalue(res, 0, 0)[0] != 't') {
                PQclear(res);
                if (!waiting_logged) {
                    PGresult *who = PQexec(srl_store_conn(p->lock),
                                           "SELECT pid FROM pg_locks WHERE locktype = 'advisory'"
                                           " AND granted AND ((classid::bigint << 32) | objid::bigint) = " PRODUCER_LOCK_KEY);
                    const char *pid = PQresultStatus(who) == PGRES_TUPLES_OK && PQntuples(who)
                                          ? PQgetvalue(who, 0, 0)
                                          : "?";
                    char m[128];
                    snprintf(m, sizeof(m), "waiting for the producer lock held by pid %s", pid);
                    srl_log(SRL_LOG_INFO, "producer", m, "holder_pid=%s", pid);
                    PQclear(who);
                    waiting_logged = true;
                }
                store_drop(p);
                nap(1000);
                continue;
            } else {
                PQclear(res);
                /* JIT compiles the batch query anew each time for tens of
                 * ms; the query is an index lookup per row. */
                PGconn *conn = srl_store_conn(p->st);
                if ((rc = srl_store_exec(conn, "SET jit = off", NULL, err, sizeof(err))) ==
                        SRL_STORE_OK &&
                    (rc = srl_store_exec(conn, "LISTEN " NOTIFY_CHANNEL, NULL, err, sizeof(err))) ==
                        SRL_STORE_OK) {
                    p->store_ok = true;
                    srl_log(SRL_LOG_INFO, "producer", first ? "store connected, lock taken"
                                                             : "store reconnected, lock taken",
                            "store=%s", srl_log_q(srl_store_where(p->st)));
                    return true;
                }
            }
        }
        if (rc == SRL_STORE_FATAL && first) {
            srl_log(SRL_LOG_ERROR, "producer", "cannot use the store", "key=store.dsn reason=%s",
                    srl_log_q(err));
            *exit_code = EXIT_STORE;
            return false;
        }
        srl_log(SRL_LOG_WARN, "producer", "store unavailable, retrying",
                "reason=%s retry_in_ms=%" PRId64, srl_log_q(err), backoff);
        note_error(p, "store", err);
        store_drop(p);
        nap(backoff);
        backoff = backoff * 2 > 30000 ? 30000 : backoff * 2;
    }
    return false;
}

/* Make the sink, retrying a broker that does not answer; publish the
 * writer schemas (waiting for their delivery). */
static bool sink_open(producer_t *p, int *exit_code)
{
    char err[512];
    int64_t backoff = 1000;
    *exit_code = EXIT_OK;
    while (!stop_requested) {
        bool retriable = false;
        if (srl_config_get_enum(p->cfg, "transport") == SRL_TRANSPORT_HTTP) {
            /* The bridge is retried by the sink itself; a config that
             * cannot work (no bridge.url, no key) is refused here. */
            p->sink = srl_sink_http_new(p->cfg, err, sizeof(err));
            if (!p->sink) {
                srl_log(SRL_LOG_ERROR, "producer", "config refused", "reason=%s", srl_log_q(err));
                *exit_code = EXIT_CONFIG;
                return false;
            }
        } else {
            p->sink = srl_sink_kafka_new(p->cfg, 30000, &retriable, err, sizeof(err));
        }
        if (p->sink) {
            bool ok = true;
            for (int k = 0; k < SRL_KIND_COUNT && ok; k++) {
                if (!p->sink->ops->publish_schema)
                    break;
                ok = p->sink->ops->publish_schema(
                    p->sink, srl_registry_writer_fingerprint(p->reg, (srl_kind_t)k),
                    srl_registry_writer_json(p->reg, (srl_kind_t)k), 30000, err, sizeof(err));
            }
            if (ok)
                return true;
            retriable = true;
            p->sink->ops->close(p->sink);
            p->sink = NULL;
        }
        if (!retriable) {
            srl_log(SRL_LOG_ERROR, "producer", "refused to start", "reason=%s", srl_log_q(err));
            *exit_code = EXIT_REFUSED;
            return false;
        }
        srl_log(SRL_LOG_WARN, "producer", "Kafka unavailable, retrying",
                "reason=%s retry_in_ms=%" PRId64, srl_log_q(err), backoff);
        note_error(p, "kafka", err);
        nap(backoff);
        backoff = backoff * 2 > 30000 ? 30000 : backoff * 2;
    }
    return false;
}

/* Write queued log lines, producer_state and the error to the store. */
static void store_bookkeeping(producer_t *p, bool force)
{
    int64_t now = now_ms();
    if (!p->store_ok || p->read_pending)
        return; /* the work session is busy with a read */
    PGconn *conn = srl_store_conn(p->st);
    logq_entry_t items[32];
    size_t n = 0;
    pthread_mutex_lock(&logq.mu);
    n = logq.count < 32 ? logq.count : 32;
    memcpy(items, logq.items, n * sizeof(items[0]));
    memmove(logq.items, logq.items + n, (logq.count - n) * sizeof(items[0]));
    logq.count -= n;
    pthread_mutex_unlock(&logq.mu);
    /* cppcheck-suppress knownConditionTrueFalse ; logq.count is filled by other threads */
    for (size_t i = 0; i < n; i++) {
        const char *params[3] = {items[i].level, items[i].component, items[i].message};
        PQclear(PQexecParams(conn,
                             "INSERT INTO replication_log (level, component, message)"
                             " VALUES ($1, $2, $3)",
                             3, NULL, params, NULL, NULL, 0));
    }
    if (p->error_dirty) {
        const char *params[1] = {p->last_error};
        PQclear(PQexecParams(conn,
                             "UPDATE producer_state SET last_error = $1, last_error_at = now(),"
                             " updated_at = now()",
                             1, NULL, params, NULL, NULL, 0));
        p->error_dirty = false;
    }
    if ((p->state_dirty && now - p->state_at_ms >= STATE_INTERVAL_MS) || (force && p->state_dirty)) {
        char v[32], rate[32];
        double secs = (now - p->state_at_ms) / 1000.0;
        snprintf(v, sizeof(v), "%" PRId64, p->last_delivered_version);
        snprintf(rate, sizeof(rate), "%.1f",
                 secs > 0 ? (double)(p->delivered - p->state_delivered) / secs : 0.0);
        const char *params[2] = {v, rate};
        PQclear(PQexecParams(conn,
                             "UPDATE producer_state SET last_delivered_version ="
                             " greatest(last_delivered_version, $1::bigint), delivered_at = now(),"
                             " rate = $2, updated_at = now()",
                             2, NULL, params, NULL, NULL, 0));
        p->state_at_ms = now;
        p->state_delivered = p->delivered;
        p->state_dirty = false;
    }
}

static void log_stats(producer_t *p, const char *msg)
{
    int64_t now = now_ms();
    double secs = (now - p->stats_at_ms) / 1000.0;
    srl_log(SRL_LOG_INFO, "producer", msg,
            "delivered=%" PRId64 " rate=%.0f superseded=%" PRId64 " not_replicated=%" PRId64
            " tombstones=%" PRId64 " batches=%" PRId64 " failed_batches=%" PRId64
            " in_flight=%zu last_version=%" PRId64 " read_ms=%" PRId64 " encode_ms=%" PRId64
            " produce_ms=%" PRId64 " delete_ms=%" PRId64 " wait_ms=%" PRId64
            " query_ms=%" PRId64,
            p->delivered, secs > 0 ? (double)(p->delivered - p->stats_delivered) / secs : 0.0,
            p->superseded, p->not_replicated, p->tombstones, p->batches, p->failed_batches,
            p->sink ? p->sink->ops->in_flight(p->sink) : 0, p->last_delivered_version,
            p->timing.read_us / 1000, p->timing.encode_us / 1000, p->produce_us / 1000,
            p->timing.delete_us / 1000, p->wait_us / 1000, p->query_us / 1000);
    p->stats_at_ms = now;
    p->stats_delivered = p->delivered;
}

/* Retire completed batches at the head of the ring, in order. */
static void retire(producer_t *p)
{
    char err[512];
    while (p->ring_count > 0) {
        srl_outbox_batch_t *b = p->ring[p->ring_head];
        if (b->sink.pending > 0)
            break;
        if (b->sink.failed) {
            /* Not deleted: the next read below the batches in flight takes
             * these rows again, with the content current by then. */
            p->failed_batches++;
            p->sweep_now = true;
            if (b->sink.failed_fatal)
                p->sink_broken = true;
            srl_log(SRL_LOG_ERROR, "producer", "batch not delivered; will publish again",
                    "records=%zu failed=%zu reason=%s", b->sink.count, b->sink.failed,
                    srl_log_q(b->sink.error));
            note_error(p, "delivery", b->sink.error);
        } else {
            if (!p->store_ok)
                break;
            /* Delete on the lock session without waiting: the next batch
             * is read meanwhile. One DELETE at a time, in ring order. */
            PGconn *dconn = srl_store_conn(p->lock);
            srl_store_rc_t rc = SRL_STORE_OK;
            bool done = false;
            if (p->deleting != b) {
                if (p->ack_log) {
                    int64_t t = wall_us();
                    for (size_t i = 0; i < b->sink.count; i++)
                        fprintf(p->ack_log, "%" PRId64 " %" PRId64 "\n",
                                b->sink.records[i].version, t);
                }
                rc = srl_outbox_delete_send(dconn, b->versions, b->version_count, err,
                                            sizeof(err));
                p->deleting = b;
                p->delete_started_us = srl_now_us();
            }
            if (rc == SRL_STORE_OK)
                rc = srl_outbox_delete_poll(dconn, &done, err, sizeof(err));
            if (rc != SRL_STORE_OK) {
                srl_log(SRL_LOG_WARN, "producer", "deleting delivered outbox rows failed",
                        "reason=%s", srl_log_q(err));
                note_error(p, "store", err);
                p->store_ok = false;
                p->deleting = NULL;
                break;
            }
            if (!done)
                break;
            p->deleting = NULL;
            p->timing.delete_us += srl_now_us() - p->delete_started_us;
            p->delivered += (int64_t)b->sink.count;
            p->superseded += (int64_t)b->superseded;
            p->not_replicated += (int64_t)b->not_replicated;
            p->tombstones += (int64_t)b->tombstones;
            p->batches++;
            if (b->max_published > p->last_delivered_version)
                p->last_delivered_version = b->max_published;
            if (b->sink.count)
                p->state_dirty = true;
            if (b->not_replicated)
                srl_log(SRL_LOG_DEBUG, "producer", "outbox rows of kinds not replicated removed",
                        "rows=%zu", b->not_replicated);
        }
        srl_outbox_batch_clear(b);
        free(b);
        p->ring[p->ring_head] = NULL;
        p->ring_head = (p->ring_head + 1) % PIPELINE_DEPTH;
        p->ring_count--;
    }
}

/* The range of the next read: 0 for "above the cursor", else the version
 * to read below (the lowest in flight). holding_min: the lowest version of
 * a result taken but not yet in the ring (0: none). */
static int64_t next_read_range(producer_t *p, int64_t holding_min, bool *from_start)
{
    int64_t now = now_ms(), below = 0;
    size_t in_flight = p->ring_count + (holding_min ? 1 : 0);
    if (in_flight == 0) {
        p->cursor = 0; /* pipeline empty: read from the lowest version */
        p->last_sweep_ms = now;
        p->sweep_now = false;
    } else if (p->sweep_now || now - p->last_sweep_ms >= SWEEP_INTERVAL_MS) {
        below = holding_min ? holding_min : INT64_MAX;
        for (size_t i = 0; i < p->ring_count; i++) {
            const srl_outbox_batch_t *r = p->ring[(p->ring_head + i) % PIPELINE_DEPTH];
            if (r->min_version < below)
                below = r->min_version;
        }
        p->last_sweep_ms = now;
        p->sweep_now = false;
    }
    *from_start = p->cursor == 0 && below == 0;
    return below;
}

/* Whether a read may be sent now, with slots_used batches in flight. */
static bool may_read(producer_t *p, size_t slots_used, bool stopping)
{
    int64_t now = now_ms();
    bool sweep_due = slots_used > 0 &&
                     (p->sweep_now || now - p->last_sweep_ms >= SWEEP_INTERVAL_MS);
    bool want = p->more || p->notified || now >= p->next_poll_ms || sweep_due;
    return p->store_ok && !p->read_pending && !stopping && slots_used < PIPELINE_DEPTH &&
           want && !p->sink_broken && !(p->once && p->idle_seen);
}

static void read_failed(producer_t *p, srl_store_rc_t rc, const char *err)
{
    srl_log(SRL_LOG_WARN, "producer", "reading the outbox failed", "reason=%s", srl_log_q(err));
    note_error(p, "store", err);
    if (rc == SRL_STORE_FATAL)
        nap(1000); /* a bug or a permission: do not spin */
    p->store_ok = false;
    p->read_pending = false;
}

/* Send the next read; the work session is idle before it, so the once-a-
 * second bookkeeping runs there first. */
static void issue_read(producer_t *p, int64_t holding_min)
{
    char err[512];
    store_bookkeeping(p, false);
    bool from_start;
    int64_t below = next_read_range(p, holding_min, &from_start);
    srl_store_rc_t rc = srl_outbox_read_send(srl_store_conn(p->st), p->cursor, below,
                                             p->batch_size, err, sizeof(err));
    if (rc != SRL_STORE_OK) {
        read_failed(p, rc, err);
        return;
    }
    p->read_pending = true;
    p->read_below = below;
    p->read_from_start = from_start;
    p->read_sent_us = srl_now_us();
    p->notified = false;
}

/* Take the pending read's result if it is there: send the next read at
 * once (the server runs it while this one is encoded and published), then
 * build, publish and queue the batch. */
static void take_read(producer_t *p, bool stopping)
{
    char err[512];
    PGresult *res = NULL;
    srl_store_rc_t rc = srl_outbox_read_take(srl_store_conn(p->st), false, &res, err,
                                             sizeof(err));
    if (rc != SRL_STORE_OK) {
        read_failed(p, rc, err);
        return;
    }
    if (!res)
        return; /* still running */
    p->read_pending = false;
    p->query_us += srl_now_us() - p->read_sent_us;
    if (stopping) {
        PQclear(res); /* not published: the rows stay for the next start */
        return;
    }
    int64_t lo, hi;
    int rows = PQntuples(res);
    srl_outbox_result_range(res, &lo, &hi);
    if (p->read_below == 0) {
        p->more = rows == p->batch_size;
        /* --once: no waiting for a poll; the next read (from the start
         * once the pipeline is empty) decides whether the outbox is empty. */
        if (!p->more)
            p->next_poll_ms = now_ms() + (p->once ? 0 : p->poll_interval_ms);
        if (rows > 0)
            p->cursor = hi;
    }
    if (rows == 0) {
        if (p->read_from_start)
            p->idle_seen = true;
        PQclear(res);
        return;
    }
    if (may_read(p, p->ring_count + 1, stopping))
        issue_read(p, lo);

    srl_outbox_batch_t *b = calloc(1, sizeof(*b));
    if (!b) {
        PQclear(res);
        return;
    }
    rc = srl_outbox_batch_build(res, p->reg, p->kind_mask, p->instance_id, b, &p->timing, err,
                                sizeof(err));
    if (rc != SRL_STORE_OK) {
        free(b);
        srl_log(SRL_LOG_ERROR, "producer", "building a batch failed", "reason=%s",
                srl_log_q(err));
        note_error(p, "producer", err);
        p->sweep_now = true; /* its rows are read again */
        return;
    }
    if (b->unpublishable)
        note_error(p, "codec", err);
    if (b->sink.count > 0) {
        int64_t t0 = srl_now_us();
        b->sink.published_us = t0;
        if (!p->sink->ops->publish(p->sink, &b->sink, err, sizeof(err)))
            srl_log(SRL_LOG_ERROR, "producer", "publishing a batch failed", "reason=%s",
                    srl_log_q(err));
        p->produce_us += srl_now_us() - t0;
    }
    size_t slot = (p->ring_head + p->ring_count) % PIPELINE_DEPTH;
    p->ring[slot] = b;
    p->ring_count++;
}

/* Serve the store socket: notifications, a broken connection. */
static void serve_store_socket(producer_t *p)
{
    PGconn *conn = srl_store_conn(p->st);
    if (!PQconsumeInput(conn)) {
        srl_log(SRL_LOG_WARN, "producer", "store connection lost", "reason=%s",
                srl_log_q(PQerrorMessage(conn)));
        note_error(p, "store", PQerrorMessage(conn));
        p->store_ok = false;
        return;
    }
    PGnotify *n;
    while ((n = PQnotifies(conn)) != NULL) {
        p->notified = true;
        PQfreemem(n);
    }
}

/* The lock session is alive (and so the lock is ours). */
static void check_lock(producer_t *p)
{
    int64_t now = now_ms();
    if (!p->store_ok || p->deleting || now - p->lock_check_ms < LOCK_CHECK_MS)
        return; /* a running DELETE proves the session alive */
    p->lock_check_ms = now;
    PGresult *res = PQexec(srl_store_conn(p->lock), "SELECT 1");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        srl_log(SRL_LOG_WARN, "producer", "lost the session holding the producer lock",
                "reason=%s", srl_log_q(PQerrorMessage(srl_store_conn(p->lock))));
        p->store_ok = false;
    }
    PQclear(res);
}

static int run_loop(producer_t *p)
{
    int exit_code = EXIT_OK;
    int64_t stop_deadline = 0;
    p->stats_at_ms = p->state_at_ms = now_ms();
    for (;;) {
        int64_t now = now_ms();
        if (stop_requested && !stop_deadline) {
            stop_deadline = now + STOP_GRACE_MS;
            srl_log(SRL_LOG_INFO, "producer", "stopping: waiting for records in flight",
                    "in_flight=%zu", p->sink->ops->in_flight(p->sink));
        }
        if (!p->store_ok && !stop_requested) {
            if (!store_connect(p, false, &exit_code)) {
                if (exit_code)
                    return exit_code;
                continue; /* stop requested */
            }
        }
        p->sink->ops->poll(p->sink, 0);
        retire(p);
        if (stop_deadline && ((p->ring_count == 0 && !p->read_pending) || now >= stop_deadline))
            break;
        if (p->sink_broken && p->ring_count == 0 && strcmp(p->sink->ops->name, "http") == 0) {
            /* The bridge refused the batch for good (401/403, a record it
             * rejects): retrying cannot fix it. The rows stay in the
             * outbox; stop and let the operator (or systemd) act. */
            srl_log(SRL_LOG_ERROR, "producer", "stopping: the bridge refused delivery",
                    "reason=%s", srl_log_q(p->last_error));
            return EXIT_FATAL;
        }
        if (p->sink_broken && p->ring_count == 0) {
            srl_log(SRL_LOG_WARN, "producer", "recreating the Kafka producer after a fatal error",
                    NULL);
            p->sink->ops->close(p->sink);
            p->sink = NULL;
            p->sink_broken = false;
            if (!sink_open(p, &exit_code))
                return exit_code;
        }
        if (p->once && p->idle_seen && p->ring_count == 0 && !p->read_pending)
            break;
        check_lock(p);

        if (p->store_ok && p->read_pending)
            take_read(p, stop_deadline != 0);
        if (may_read(p, p->ring_count, stop_deadline != 0))
            issue_read(p, 0);

        if (p->stats_interval_ms > 0 && now - p->stats_at_ms >= p->stats_interval_ms)
            log_stats(p, "stats");
        if (!p->read_pending)
            store_bookkeeping(p, false);

        /* Sleep until Kafka or the store has something, or a timer. */
        struct pollfd fds[3];
        int nfds = 0;
        int kfd = p->sink->ops->wait_fd ? p->sink->ops->wait_fd(p->sink) : -1;
        if (kfd >= 0)
            fds[nfds++] = (struct pollfd){.fd = kfd, .events = POLLIN};
        int pfd = p->store_ok ? PQsocket(srl_store_conn(p->st)) : -1;
        if (pfd >= 0)
            fds[nfds++] = (struct pollfd){.fd = pfd, .events = POLLIN};
        if (p->deleting && p->store_ok)
            fds[nfds++] = (struct pollfd){.fd = PQsocket(srl_store_conn(p->lock)), .events = POLLIN};
        int64_t timeout = p->ring_count || p->read_pending ? 100 : p->next_poll_ms - now_ms();
        if (may_read(p, p->ring_count, stop_deadline != 0))
            timeout = 0;
        if (timeout > LOCK_CHECK_MS)
            timeout = LOCK_CHECK_MS;
        if (timeout < 0)
            timeout = 0;
        if (kfd < 0 && p->ring_count)
            timeout = 5;
        int64_t w0 = srl_now_us();
        if (poll(fds, (nfds_t)nfds, (int)timeout) < 0 && errno != EINTR)
            nap(10);
        p->wait_us += srl_now_us() - w0;
        if (pfd >= 0)
            serve_store_socket(p);
    }
    return exit_code;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: sysrepl-producer [-c FILE] [-X key=value]... [--snapshot] [--once]\n"
            "\n"
            "Publishes the hub store's changes (its outbox) to the Kafka topics.\n"
            "  -c, --config FILE  config file (key = value lines)\n"
            "  -X key=value       set a config key (wins over the file)\n"
            "  --snapshot         publish the full state first, and tombstone keys the\n"
            "                     topics hold but the store does not (also done on a first\n"
            "                     start against empty topics)\n"
            "  --once             exit 0 once the outbox is empty (tests, benchmarks)\n"
            "  --ack-log FILE     write \"version wallclock_us\" per delivered record (debug)\n"
            "  --print-config     print the effective config and exit\n"
            "  -h, --help         this help\n"
            "\n"
            "Exit codes: 0 stopped cleanly, 1 config or usage error, 2 refused to run (a topic\n"
            "that would lose state, topics of another hub), 3 store unusable, 4 fatal error.\n"
            "\n");
    srl_config_print_help(out, SRL_PROG_PRODUCER);
}

/* The kinds a replicate list covers, as (1u << kind) bits. */
static unsigned kind_mask_of(unsigned replicate)
{
    unsigned m = 0;
    if (replicate & SRL_REPLICATE_ASSESSMENTS)
        m |= 1u << SRL_KIND_ASSESSMENT_TYPE | 1u << SRL_KIND_ASSESSMENT;
    if (replicate & SRL_REPLICATE_POLICIES)
        m |= 1u << SRL_KIND_POLICY;
    return m;
}

int main(int argc, char **argv)
{
    producer_t p = {0};
    char err[512];
    int exit_code = EXIT_OK;
    bool snapshot = false, print_config = false;
    const char *ack_log = NULL;

    p.cfg = srl_config_new(SRL_PROG_PRODUCER);
    if (!p.cfg) {
        fprintf(stderr, "sysrepl-producer: out of memory\n");
        return EXIT_FATAL;
    }
    if (!srl_config_parse_args(p.cfg, &argc, argv, err, sizeof(err))) {
        fprintf(stderr, "sysrepl-producer: %s\n", err);
        exit_code = EXIT_CONFIG;
        goto cleanup;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--snapshot") == 0) {
            snapshot = true;
        } else if (strcmp(argv[i], "--once") == 0) {
            p.once = true;
        } else if (strcmp(argv[i], "--ack-log") == 0 && i + 1 < argc) {
            ack_log = argv[++i];
        } else if (strcmp(argv[i], "--print-config") == 0) {
            print_config = true;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            goto cleanup;
        } else {
            fprintf(stderr, "sysrepl-producer: unknown argument \"%s\" (see --help)\n", argv[i]);
            exit_code = EXIT_CONFIG;
            goto cleanup;
        }
    }
    if (print_config) {
        srl_config_write_effective(p.cfg, stdout);
        goto cleanup;
    }
    if (!srl_config_require(p.cfg, "store.dsn", err, sizeof(err))) {
        fprintf(stderr, "sysrepl-producer: %s\n", err);
        exit_code = EXIT_CONFIG;
        goto cleanup;
    }
    srl_log_set_level((srl_log_level_t)srl_config_get_enum(p.cfg, "log.level"));
    snprintf(p.instance_id, sizeof(p.instance_id), "%s", srl_config_get_str(p.cfg, "instance.id"));
    p.kind_mask = kind_mask_of(srl_config_get_list_mask(p.cfg, "replicate"));
    p.batch_size = (int)srl_config_get_int(p.cfg, "producer.batch_size");
    p.poll_interval_ms = srl_config_get_int(p.cfg, "producer.poll_interval_ms");
    p.stats_interval_ms = srl_config_get_int(p.cfg, "stats.interval_ms");
    if (ack_log && !(p.ack_log = fopen(ack_log, "w"))) {
        fprintf(stderr, "sysrepl-producer: --ack-log %s: %s\n", ack_log, strerror(errno));
        exit_code = EXIT_CONFIG;
        goto cleanup;
    }

    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    p.reg = srl_registry_new(err, sizeof(err));
    if (!p.reg) {
        srl_log(SRL_LOG_ERROR, "producer", "cannot load the schemas", "reason=%s", srl_log_q(err));
        exit_code = EXIT_FATAL;
        goto cleanup;
    }
    if (!store_connect(&p, true, &exit_code))
        goto cleanup;
    srl_log_set_sink(log_sink, NULL);
    srl_log(SRL_LOG_INFO, "producer", "starting",
            "instance=%s prefix=%s replicate=0x%x batch_size=%d version=%s", srl_log_q(p.instance_id),
            srl_log_q(srl_config_get_str(p.cfg, "topic.prefix")), p.kind_mask, p.batch_size,
            SRL_VERSION);
    if (!sink_open(&p, &exit_code))
        goto cleanup;

    /* Refuse topics another hub writes; notice empty topics. A check that
     * cannot be made (broker away) is retried. */
    bool all_empty = true;
    for (int k = 0; k < SRL_KIND_COUNT && !stop_requested; k++) {
        if (!(p.kind_mask & (1u << k)))
            continue;
        bool empty = false, refused = false;
        if (p.sink->ops->check_origin &&
            !p.sink->ops->check_origin(p.sink, (srl_kind_t)k, p.instance_id, &refused, err,
                                       sizeof(err))) {
            if (refused) {
                srl_log(SRL_LOG_ERROR, "producer", "refused to start", "reason=%s",
                        srl_log_q(err));
                fprintf(stderr, "sysrepl-producer: %s\n", err);
                exit_code = EXIT_REFUSED;
                goto cleanup;
            }
            srl_log(SRL_LOG_WARN, "producer", "checking the topics failed, retrying",
                    "reason=%s", srl_log_q(err));
            note_error(&p, "kafka", err);
            nap(2000);
            k--;
            continue;
        }
        if (!p.sink->ops->topic_empty) {
            all_empty = false;
        } else if (!p.sink->ops->topic_empty(p.sink, (srl_kind_t)k, &empty, err, sizeof(err))) {
            srl_log(SRL_LOG_WARN, "producer", "checking the topics failed, retrying",
                    "reason=%s", srl_log_q(err));
            nap(2000);
            k--;
            continue;
        } else if (!empty) {
            all_empty = false;
        }
    }
    if (stop_requested)
        goto cleanup;
    if (snapshot || all_empty) {
        srl_snapshot_stats_t ss;
        int64_t t0 = now_ms();
        srl_store_rc_t rc = srl_snapshot_run(p.st, p.sink, p.reg, p.kind_mask, p.instance_id,
                                             p.batch_size, all_empty, &stop_requested, &ss, err,
                                             sizeof(err));
        if (rc != SRL_STORE_OK) {
            srl_log(SRL_LOG_ERROR, "producer", "snapshot failed", "reason=%s", srl_log_q(err));
            note_error(&p, "snapshot", err);
            store_bookkeeping(&p, true);
            exit_code = stop_requested ? EXIT_OK : EXIT_FATAL;
            goto cleanup;
        }
        int64_t pub = 0, tomb = 0;
        for (int k = 0; k < SRL_KIND_COUNT; k++) {
            pub += ss.published[k];
            tomb += ss.tombstoned[k];
        }
        srl_log(SRL_LOG_INFO, "producer", "snapshot done",
                "reason=%s published=%" PRId64 " tombstoned=%" PRId64 " ms=%" PRId64,
                snapshot ? "requested" : "empty-topics", pub, tomb, now_ms() - t0);
    }
    store_bookkeeping(&p, true);
    exit_code = run_loop(&p);
    if (p.read_pending && p.store_ok) {
        PGresult *res = NULL;
        if (srl_outbox_read_take(srl_store_conn(p.st), true, &res, err, sizeof(err)) ==
            SRL_STORE_OK)
            PQclear(res);
        p.read_pending = false;
    }
    log_stats(&p, "stopped");
    store_bookkeeping(&p, true);

cleanup:
    srl_log_set_sink(NULL, NULL);
    if (p.sink)
        p.sink->ops->close(p.sink);
    for (size_t i = 0; i < PIPELINE_DEPTH; i++) {
        srl_outbox_batch_clear(p.ring[i]);
        free(p.ring[i]);
    }
    store_drop(&p);
    srl_registry_free(p.reg);
    if (p.ack_log)
        fclose(p.ack_log);
    srl_config_free(p.cfg);
    return exit_code;
}
