/*
 * sessions.c - the producer's two store sessions (see sessions.h).
 *
 * The work session reads the outbox, writes the bookkeeping and LISTENs on
 * sysrepl_outbox; the lock session holds the producer lock
 * (pg_try_advisory_lock: one producer per store) and runs the DELETEs of
 * delivered rows. Guarantees: the drain runs only while both sessions are
 * up and the lock is held; a lost session drops both, and the loop
 * reconnects with backoff and takes the lock again before reading on. A
 * second producer waits for the lock, logging the holder's pid once, and
 * takes over when the first one's session ends.
 */
#include "sessions.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "drain.h"
#include "stats.h"
#include "sysrepl/clock.h"
#include "sysrepl/log.h"

/* pg_try_advisory_lock key of the producer: "srlprod1" in ASCII. */
#define PRODUCER_LOCK_KEY "8318592452394528305"
#define NOTIFY_CHANNEL "sysrepl_outbox"

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

void srl__sessions_drop(producer_t *p)
{
    srl__drain_wal_close(p);
    srl_store_close(p->st);
    srl_store_close(p->lock);
    p->st = p->lock = NULL;
    p->store_ok = false;
    p->deleting = NULL; /* its DELETE died with the session: sent again */
    p->read_pending = false;
}

/* The store is a hub at our schema version and, when instance.id is set,
 * has that id (else its id becomes ours). A store that cannot be used
 * sets *exit_code; other failures return their class for a retry. */
static srl_store_rc_t check_store(producer_t *p, int *exit_code, char *err, size_t errsize)
{
    srl_store_settings_t s;
    srl_store_rc_t rc = srl_store_check_version(p->st, err, errsize);
    if (rc == SRL_STORE_VERSION) {
        srl_log(SRL_LOG_ERROR, "producer", "store refused", "reason=%s", srl_log_q(err));
        *exit_code = EXIT_STORE;
        return rc;
    }
    if (rc == SRL_STORE_OK)
        rc = srl_store_get_settings(p->st, &s, err, errsize);
    if (rc != SRL_STORE_OK)
        return rc;
    if (strcmp(s.role, "hub") != 0) {
        srl_log(SRL_LOG_ERROR, "producer", "store refused", "reason=%s",
                srl_log_q("store role is not hub (sysrepl init --role hub)"));
        *exit_code = EXIT_STORE;
        return SRL_STORE_FATAL;
    }
    if (p->instance_id[0] && strcmp(p->instance_id, s.instance_id) != 0) {
        srl_log(SRL_LOG_ERROR, "producer", "config refused", "key=instance.id reason=%s",
                srl_log_q("differs from the store's instance id"));
        *exit_code = EXIT_CONFIG;
        return SRL_STORE_FATAL;
    }
    snprintf(p->instance_id, sizeof(p->instance_id), "%s", s.instance_id);
    return SRL_STORE_OK;
}

/* Try the producer lock on the lock session: *taken tells whether it is
 * ours now. While another producer holds it, its pid is logged once. */
static srl_store_rc_t take_lock(producer_t *p, bool *taken, bool *waiting_logged, char *err,
                                size_t errsize)
{
    PGconn *conn = srl_store_conn(p->lock);
    PGresult *res = PQexec(conn, "SELECT pg_try_advisory_lock(" PRODUCER_LOCK_KEY ")");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        srl_store_rc_t rc = srl_store_classify(conn, res, "taking the producer lock", err, errsize);
        PQclear(res);
        return rc;
    }
    *taken = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (*taken || *waiting_logged)
        return SRL_STORE_OK;
    PGresult *who = PQexec(conn,
                           "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
                           " AND ((classid::bigint << 32) | objid::bigint) = " PRODUCER_LOCK_KEY);
    const char *pid = PQresultStatus(who) == PGRES_TUPLES_OK && PQntuples(who)
                          ? PQgetvalue(who, 0, 0)
                          : "?";
    char m[128];
    snprintf(m, sizeof(m), "waiting for the producer lock held by pid %s", pid);
    srl_log(SRL_LOG_INFO, "producer", m, "holder_pid=%s", pid);
    PQclear(who);
    *waiting_logged = true;
    return SRL_STORE_OK;
}

/* Connect both sessions, check the store, try the lock and, once it is
 * ours, ready the work session: JIT off (it compiles the batch query anew
 * each time for tens of ms; the query is an index lookup per row) and
 * LISTEN for new outbox rows. */
static srl_store_rc_t connect_once(producer_t *p, bool *locked, bool *waiting_logged,
                                   int *exit_code, char *err, size_t errsize)
{
    const char *dsn = srl_config_str(p->cfg, SRL_KEY_STORE_DSN);
    srl_store_rc_t rc = SRL_STORE_OK;
    p->st = srl_store_connect(dsn, &rc, err, errsize);
    if (p->st)
        p->lock = srl_store_connect(dsn, &rc, err, errsize);
    if (!p->st || !p->lock)
        return rc;
    PQsetNoticeProcessor(srl_store_conn(p->st), on_pg_notice, NULL);
    PQsetNoticeProcessor(srl_store_conn(p->lock), on_pg_notice, NULL);
    if ((rc = check_store(p, exit_code, err, errsize)) != SRL_STORE_OK ||
        (rc = take_lock(p, locked, waiting_logged, err, errsize)) != SRL_STORE_OK || !*locked)
        return rc;
    PGconn *conn = srl_store_conn(p->st);
    if ((rc = srl_store_exec(conn, "SET jit = off", NULL, err, errsize)) != SRL_STORE_OK)
        return rc;
    return srl_store_exec(conn, "LISTEN " NOTIFY_CHANNEL, NULL, err, errsize);
}

bool srl__sessions_connect(producer_t *p, bool first, int *exit_code)
{
    char err[512];
    int64_t backoff = 500;
    bool waiting_logged = false;
    *exit_code = EXIT_OK;
    srl__sessions_drop(p);
    while (!*p->stop) {
        bool locked = false;
        srl_store_rc_t rc = connect_once(p, &locked, &waiting_logged, exit_code, err, sizeof(err));
        if (*exit_code)
            return false;
        if (rc == SRL_STORE_OK && locked && !srl__drain_capture_prepare(p, exit_code)) {
            if (*exit_code)
                return false;
            srl__sessions_drop(p);
            srl__producer_nap(p, backoff);
            backoff = backoff * 2 > 30000 ? 30000 : backoff * 2;
            continue;
        }
        if (rc == SRL_STORE_OK && locked) {
            p->store_ok = true;
            srl_log(SRL_LOG_INFO, "producer",
                    first ? "store connected, lock taken" : "store reconnected, lock taken",
                    "store=%s", srl_log_q(srl_store_where(p->st)));
            return true;
        }
        if (rc == SRL_STORE_OK) { /* another producer holds the lock */
            srl__sessions_drop(p);
            srl__producer_nap(p, 1000);
            continue;
        }
        if (rc == SRL_STORE_FATAL && first) {
            srl_log(SRL_LOG_ERROR, "producer", "cannot use the store", "key=store.dsn reason=%s",
                    srl_log_q(err));
            *exit_code = EXIT_STORE;
            return false;
        }
        srl_log(SRL_LOG_WARN, "producer", "store unavailable, retrying",
                "reason=%s retry_in_ms=%" PRId64, srl_log_q(err), backoff);
        srl__stats_error(p, "store", err);
        srl__sessions_drop(p);
        srl__producer_nap(p, backoff);
        backoff = backoff * 2 > 30000 ? 30000 : backoff * 2;
    }
    return false;
}

void srl__sessions_serve(producer_t *p)
{
    PGconn *conn = srl_store_conn(p->st);
    if (!PQconsumeInput(conn)) {
        srl_log(SRL_LOG_WARN, "producer", "store connection lost", "reason=%s",
                srl_log_q(PQerrorMessage(conn)));
        srl__stats_error(p, "store", PQerrorMessage(conn));
        p->store_ok = false;
        return;
    }
    PGnotify *n;
    while ((n = PQnotifies(conn)) != NULL) {
        p->notified = true;
        PQfreemem(n);
    }
}

void srl__sessions_check_lock(producer_t *p)
{
    int64_t now = srl_clock_mono_ms();
    if (!p->store_ok || p->deleting || now - p->lock_check_ms < LOCK_CHECK_MS)
        return; /* a running DELETE proves the session alive */
    p->lock_check_ms = now;
    PGresult *res = PQexec(srl_store_conn(p->lock), "SELECT 1");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        srl_log(SRL_LOG_WARN, "producer", "lost the session holding the producer lock", "reason=%s",
                srl_log_q(PQerrorMessage(srl_store_conn(p->lock))));
        p->store_ok = false;
    }
    PQclear(res);
}
