/*
 * store.c - the connection to the sysrepl store, its schema version and
 * migrations, settings and status numbers (see store.h for the tables).
 *
 * Every PostgreSQL error passes through srl_store_classify(), the one
 * place that decides whether a failure is worth retrying.
 */
#include <ctype.h>
#include <errno.h> /* program_invocation_short_name */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_private.h"

/* pg_advisory_xact_lock key of migrations: "sysrepl" in ASCII. */
#define SRL_STORE_MIGRATION_LOCK "32503159069175916"

void srl__store_errf(char *errstr, size_t errstr_size, const char *fmt, ...)
{
    if (!errstr || errstr_size == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errstr, errstr_size, fmt, ap);
    va_end(ap);
}

const char *srl_store_rc_name(srl_store_rc_t rc)
{
    switch (rc) {
    case SRL_STORE_OK:
        return "ok";
    case SRL_STORE_DONE:
        return "done";
    case SRL_STORE_NOT_FOUND:
        return "not found";
    case SRL_STORE_INVALID:
        return "invalid";
    case SRL_STORE_UNREACHABLE:
        return "unreachable";
    case SRL_STORE_RETRY:
        return "retry";
    case SRL_STORE_VERSION:
        return "version";
    case SRL_STORE_FATAL:
        return "fatal";
    }
    return "?";
}

bool srl_store_sqlstate_is_retriable(const char *sqlstate)
{
    if (!sqlstate || !sqlstate[0])
        return true; /* no SQLSTATE: the connection broke mid-command */
    return strncmp(sqlstate, "08", 2) == 0 || strncmp(sqlstate, "53", 2) == 0 ||
           strncmp(sqlstate, "57P", 3) == 0 || strcmp(sqlstate, "40001") == 0 ||
           strcmp(sqlstate, "40P01") == 0 || strcmp(sqlstate, "55P03") == 0;
}

/* Copy msg into buf as one line: newlines and tabs become spaces, trailing
 * space goes. libpq messages end with '\n' and may carry a hint line. */
static void one_line(char *buf, size_t size, const char *msg)
{
    size_t j = 0;
    bool space = false;
    for (size_t i = 0; msg && msg[i] && j + 1 < size; i++) {
        char ch = msg[i];
        if (ch == '\n' || ch == '\t' || ch == '\r') {
            space = true;
            continue;
        }
        if (space && j > 0)
            buf[j++] = ' ';
        space = false;
        if (j + 1 < size)
            buf[j++] = ch;
    }
    buf[j] = '\0';
}

srl_store_rc_t srl_store_classify(PGconn *conn, const PGresult *res, const char *what, char *errstr,
                                  size_t errstr_size)
{
    char msg[512];
    const char *sqlstate = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *text = res ? PQresultErrorMessage(res) : "";
    if (!text || !text[0])
        text = conn ? PQerrorMessage(conn) : "no connection";
    /* The primary message alone reads best; the rest of the verbose text
     * repeats "ERROR:" and the context. */
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    one_line(msg, sizeof(msg), primary ? primary : text);
    srl__store_errf(errstr, errstr_size, "%s: %s", what, msg);

    if (!conn || PQstatus(conn) == CONNECTION_BAD)
        return SRL_STORE_UNREACHABLE;
    if (sqlstate && strncmp(sqlstate, "08", 2) == 0)
        return SRL_STORE_UNREACHABLE;
    if (srl_store_sqlstate_is_retriable(sqlstate))
        return SRL_STORE_RETRY;
    if (strncmp(sqlstate, "22", 2) == 0 || strncmp(sqlstate, "23", 2) == 0)
        return SRL_STORE_INVALID;
    return SRL_STORE_FATAL;
}

srl_store_rc_t srl_store_exec(PGconn *conn, const char *sql, const char *what, char *errstr,
                              size_t errstr_size)
{
    PGresult *res = PQexec(conn, sql);
    srl_store_rc_t rc = SRL_STORE_OK;
    ExecStatusType s = PQresultStatus(res);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
        rc = srl_store_classify(conn, res, what ? what : sql, errstr, errstr_size);
    PQclear(res);
    return rc;
}

srl_store_rc_t srl_store_copy_in(PGconn *conn, const char *sql, const char *data, size_t len,
                                 char *errstr, size_t errstr_size)
{
    /* "COPY <table>" names the statement in messages. */
    char what[96];
    const char *paren = strchr(sql, '(');
    snprintf(what, sizeof(what), "%.*s", paren ? (int)(paren - sql - 1) : 60, sql);
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        srl_store_rc_t rc = srl_store_classify(conn, res, what, errstr, errstr_size);
        PQclear(res);
        return rc;
    }
    PQclear(res);
    /* Large buffers go in slices: libpq copies what it is given into its
     * own output buffer, so one giant call would double the memory. */
    const size_t slice = 1 << 20;
    for (size_t off = 0; off < len; off += slice) {
        size_t n = len - off < slice ? len - off : slice;
        if (PQputCopyData(conn, data + off, (int)n) != 1)
            break;
    }
    PQputCopyEnd(conn, NULL);
    srl_store_rc_t rc = SRL_STORE_OK;
    while ((res = PQgetResult(conn)) != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK && rc == SRL_STORE_OK)
            rc = srl_store_classify(conn, res, what, errstr, errstr_size);
        PQclear(res);
    }
    if (rc == SRL_STORE_OK && PQstatus(conn) != CONNECTION_OK)
        rc = srl_store_classify(conn, NULL, what, errstr, errstr_size);
    return rc;
}

srl_store_rc_t srl__store_exec(srl_store_t *st, const char *sql, const char *what, char *errstr,
                               size_t errstr_size)
{
    return srl_store_exec(st->conn, sql, what, errstr, errstr_size);
}

void srl__store_rollback(srl_store_t *st)
{
    if (st && st->conn && PQstatus(st->conn) == CONNECTION_OK &&
        PQtransactionStatus(st->conn) != PQTRANS_IDLE)
        PQclear(PQexec(st->conn, "ROLLBACK"));
}

/* ------------------------------------------------------------------ */
/* connecting                                                           */

/* "host:port" the DSN points at, for messages when there is no
 * connection to ask. libpq's defaults: a Unix socket, port 5432. */
static void dsn_where(const char *dsn, char *buf, size_t size)
{
    const char *host = NULL, *hostaddr = NULL, *port = NULL;
    PQconninfoOption *opts = PQconninfoParse(dsn, NULL);
    for (PQconninfoOption *o = opts; o && o->keyword; o++) {
        if (!o->val || !o->val[0])
            continue;
        if (strcmp(o->keyword, "host") == 0)
            host = o->val;
        else if (strcmp(o->keyword, "hostaddr") == 0)
            hostaddr = o->val;
        else if (strcmp(o->keyword, "port") == 0)
            port = o->val;
    }
    if (!host)
        host = hostaddr ? hostaddr : getenv("PGHOST");
    if (!port)
        port = getenv("PGPORT");
    snprintf(buf, size, "%s:%s", host ? host : "/var/run/postgresql", port ? port : "5432");
    PQconninfoFree(opts);
}

/* Failures that waiting will not cure: the server answered and said no,
 * or TLS failed on what the client was given: a server certificate the
 * sslrootcert does not verify ("SSL error: certificate verify failed"),
 * one for another host name ('server certificate for "x" does not match
 * host name "y"'), an unreadable root certificate file, a server without
 * TLS under sslmode=require or stricter. Retrying those would only hide
 * them behind "store unreachable, waiting". */
static bool connect_failure_is_fatal(const char *msg)
{
    static const char *const fatal[] = {"authentication failed",
                                        "does not exist",
                                        "pg_hba.conf", /* no entry, or one that rejects */
                                        "password",
                                        "permission denied",
                                        "not permitted",
                                        "certificate",
                                        "SSL was required",
                                        NULL};
    for (int i = 0; fatal[i]; i++)
        if (strstr(msg, fatal[i]))
            return true;
    return false;
}

/* application_name of this process's sessions unless the DSN (or
 * PGAPPNAME) sets one; "" until srl_store_set_application_name: then the
 * executable's name. Written once at start, before any thread connects. */
static char app_name[64];

void srl_store_set_application_name(const char *program, const char *instance_id)
{
    /* PostgreSQL keeps 63 bytes of it; a long instance id is cut there. */
    if (instance_id && instance_id[0])
        snprintf(app_name, sizeof(app_name), "%s/%s", program, instance_id);
    else
        snprintf(app_name, sizeof(app_name), "%s", program);
}

/* Put the schema sysrepl in front of the session's search_path, so every
 * name of sysrepl's own (outbox, tombstones, settings, ...) resolves in it
 * and the content tables where the DSN, the role or the database put them
 * (normally public). Done with a statement rather than a DSN option so an
 * `options` in the DSN still applies: the path the DBA configured is kept
 * behind ours. A schema that does not exist yet (a store below version 5)
 * is skipped by PostgreSQL until it is created. */
static srl_store_rc_t set_search_path(PGconn *conn, char *errstr, size_t errstr_size)
{
    return srl_store_exec(conn,
                          "SELECT pg_catalog.set_config('search_path', CASE"
                          " WHEN pg_catalog.current_setting('search_path') = '' THEN 'sysrepl'"
                          " ELSE 'sysrepl, ' || pg_catalog.current_setting('search_path') END,"
                          " false)",
                          "setting search_path", errstr, errstr_size);
}

srl_store_t *srl_store_connect(const char *dsn, srl_store_rc_t *rc, char *errstr,
                               size_t errstr_size)
{
    srl_store_rc_t dummy;
    if (!rc)
        rc = &dummy;
    char *parse_err = NULL;
    PQconninfoOption *opts = PQconninfoParse(dsn ? dsn : "", &parse_err);
    if (!opts) {
        char msg[256];
        one_line(msg, sizeof(msg), parse_err ? parse_err : "out of memory");
        srl__store_errf(errstr, errstr_size, "invalid store DSN: %s", msg);
        PQfreemem(parse_err);
        *rc = SRL_STORE_FATAL;
        return NULL;
    }
    PQconninfoFree(opts);

    srl_store_t *st = calloc(1, sizeof(*st));
    if (!st) {
        srl__store_errf(errstr, errstr_size, "out of memory");
        *rc = SRL_STORE_FATAL;
        return NULL;
    }
    dsn_where(dsn, st->where, sizeof(st->where));
    /* Defaults first: the expanded DSN overrides them. */
    const char *keys[] = {"connect_timeout", "fallback_application_name", "client_encoding",
                          "dbname", NULL};
    const char *vals[] = {"10", app_name[0] ? app_name : program_invocation_short_name, "UTF8", dsn,
                          NULL};
    st->conn = PQconnectdbParams(keys, vals, 1);
    if (!st->conn || PQstatus(st->conn) != CONNECTION_OK) {
        char msg[512];
        const char *m = st->conn ? PQerrorMessage(st->conn) : "out of memory";
        /* libpq says 'connection to server at "h" (addr), port p failed: X';
         * we name host and port ourselves, so keep X. */
        const char *failed = strstr(m, " failed: ");
        one_line(msg, sizeof(msg), failed ? failed + 9 : m);
        srl__store_errf(errstr, errstr_size, "cannot connect to PostgreSQL at %s: %s", st->where,
                        msg);
        *rc = connect_failure_is_fatal(msg) ? SRL_STORE_FATAL : SRL_STORE_UNREACHABLE;
        srl_store_close(st);
        return NULL;
    }
    if (PQhost(st->conn) && PQport(st->conn)) {
        const char *h = PQhost(st->conn);
        snprintf(st->where, sizeof(st->where), "%s:%s", h[0] ? h : "localhost", PQport(st->conn));
    }
    *rc = set_search_path(st->conn, errstr, errstr_size);
    if (*rc != SRL_STORE_OK) {
        srl_store_close(st);
        return NULL;
    }
    return st;
}

void srl_store_close(srl_store_t *st)
{
    if (!st)
        return;
    if (st->conn)
        PQfinish(st->conn);
    free(st);
}

PGconn *srl_store_conn(srl_store_t *st)
{
    return st ? st->conn : NULL;
}

const char *srl_store_where(const srl_store_t *st)
{
    return st ? st->where : "";
}

/* ------------------------------------------------------------------ */
/* schema version and migrations                                        */

int srl_store_expected_version(void)
{
    return srl__migration_count;
}

srl_store_rc_t srl_store_schema_version(srl_store_t *st, int *version, char *errstr,
                                        size_t errstr_size)
{
    srl_store_rc_t rc = SRL_STORE_OK;
    *version = 0;
    /* pg_class, not to_regclass(): after waiting for another session's
     * migration this session's catalog cache may not have seen the new
     * table yet (an advisory lock does not process invalidations).
     * schema_version is in sysrepl from version 5 on, in the store's first
     * schema before: both are on the session's search_path (see
     * set_search_path), and so is the unqualified name below. */
    PGresult *res = PQexec(st->conn, "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c"
                                     " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
                                     " WHERE c.relname = 'schema_version'"
                                     " AND n.nspname = ANY (pg_catalog.current_schemas(false)))");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = srl_store_classify(st->conn, res, "reading the schema version", errstr, errstr_size);
        goto cleanup;
    }
    if (strcmp(PQgetvalue(res, 0, 0), "t") != 0)
        goto cleanup; /* an empty database */
    PQclear(res);
    res = PQexec(st->conn, "SELECT version FROM schema_version");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = srl_store_classify(st->conn, res, "reading the schema version", errstr, errstr_size);
        goto cleanup;
    }
    if (PQntuples(res) == 1)
        *version = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
cleanup:
    PQclear(res);
    return rc;
}

static srl_store_rc_t version_verdict(int have, char *errstr, size_t errstr_size, bool migrating)
{
    int want = srl_store_expected_version();
    if (have == want)
        return SRL_STORE_OK;
    if (have > want) {
        srl__store_errf(errstr, errstr_size,
                        "store is at schema version %d, this build expects %d (upgrade sysrepl)",
                        have, want);
        return SRL_STORE_VERSION;
    }
    if (migrating)
        return SRL_STORE_OK;
    if (have == 0)
        srl__store_errf(errstr, errstr_size, "store has no sysrepl schema (run sysrepl init)");
    else
        srl__store_errf(errstr, errstr_size,
                        "store is at schema version %d, this build expects %d (run sysrepl init)",
                        have, want);
    return SRL_STORE_VERSION;
}

srl_store_rc_t srl_store_check_version(srl_store_t *st, char *errstr, size_t errstr_size)
{
    int have;
    srl_store_rc_t rc = srl_store_schema_version(st, &have, errstr, errstr_size);
    if (rc != SRL_STORE_OK)
        return rc;
    return version_verdict(have, errstr, errstr_size, false);
}

/* Apply migration m in its own transaction; a concurrent init holding the
 * lock may have applied it already, so the version is re-read under it. */
static srl_store_rc_t apply_migration(srl_store_t *st, const srl__migration_t *m, bool *ran,
                                      char *errstr, size_t errstr_size)
{
    char what[160];
    int have;
    *ran = false;
    srl_store_rc_t rc = srl__store_exec(st, "BEGIN", "BEGIN", errstr, errstr_size);
    if (rc != SRL_STORE_OK)
        return rc;
    rc = srl__store_exec(st, "SELECT pg_advisory_xact_lock(" SRL_STORE_MIGRATION_LOCK ")",
                         "taking the migration lock", errstr, errstr_size);
    if (rc == SRL_STORE_OK)
        rc = srl_store_schema_version(st, &have, errstr, errstr_size);
    if (rc == SRL_STORE_OK)
        rc = version_verdict(have, errstr, errstr_size, true);
    if (rc != SRL_STORE_OK || have >= m->version)
        goto cleanup;
    snprintf(what, sizeof(what), "migration %s", m->name);
    rc = srl__store_exec(st, m->sql, what, errstr, errstr_size);
    if (rc != SRL_STORE_OK)
        goto cleanup;
    char sql[200];
    /* Unqualified: migrations 1 to 4 keep schema_version in the store's
     * first schema, 5 moves it to sysrepl (both on the search_path). */
    snprintf(sql, sizeof(sql),
             "INSERT INTO schema_version (version) VALUES (%d) ON CONFLICT (only_row) "
             "DO UPDATE SET version = EXCLUDED.version, applied_at = now()",
             m->version);
    rc = srl__store_exec(st, sql, what, errstr, errstr_size);
    if (rc == SRL_STORE_OK)
        rc = srl__store_exec(st, "COMMIT", what, errstr, errstr_size);
    if (rc == SRL_STORE_OK)
        *ran = true;
cleanup:
    srl__store_rollback(st);
    return rc;
}

srl_store_rc_t srl_store_migrate(srl_store_t *st, int *applied, char *errstr, size_t errstr_size)
{
    int have, count = 0;
    srl_store_rc_t rc = srl_store_schema_version(st, &have, errstr, errstr_size);
    if (rc == SRL_STORE_OK)
        rc = version_verdict(have, errstr, errstr_size, true);
    for (int i = 0; rc == SRL_STORE_OK && i < srl__migration_count; i++) {
        bool ran;
        if (srl__migrations[i].version <= have)
            continue;
        rc = apply_migration(st, &srl__migrations[i], &ran, errstr, errstr_size);
        count += ran;
    }
    if (applied)
        *applied = count;
    return rc;
}

/* ------------------------------------------------------------------ */
/* settings                                                             */

srl_store_rc_t srl_store_get_settings(srl_store_t *st, srl_store_settings_t *out, char *errstr,
                                      size_t errstr_size)
{
    memset(out, 0, sizeof(*out));
    PGresult *res = PQexec(st->conn, "SELECT instance_id, role FROM sysrepl.settings");
    srl_store_rc_t rc = SRL_STORE_OK;
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        rc = srl_store_classify(st->conn, res, "reading settings", errstr, errstr_size);
    else if (PQntuples(res) == 1) {
        snprintf(out->instance_id, sizeof(out->instance_id), "%s", PQgetvalue(res, 0, 0));
        snprintf(out->role, sizeof(out->role), "%s", PQgetvalue(res, 0, 1));
    }
    PQclear(res);
    return rc;
}

srl_store_rc_t srl_store_set_settings(srl_store_t *st, const char *instance_id, const char *role,
                                      char *errstr, size_t errstr_size)
{
    if (!instance_id || !instance_id[0] ||
        strlen(instance_id) >= sizeof(((srl_store_settings_t *)0)->instance_id)) {
        srl__store_errf(errstr, errstr_size, "instance.id: must be 1..127 characters");
        return SRL_STORE_INVALID;
    }
    if (!role || (strcmp(role, "hub") != 0 && strcmp(role, "spoke") != 0)) {
        srl__store_errf(errstr, errstr_size, "role: expected hub or spoke, got \"%s\"",
                        role ? role : "");
        return SRL_STORE_INVALID;
    }
    const char *params[] = {instance_id, role};
    PGresult *res = PQexecParams(
        st->conn,
        "INSERT INTO sysrepl.settings (instance_id, role) VALUES ($1, $2) ON CONFLICT (only_row) "
        "DO UPDATE SET instance_id = EXCLUDED.instance_id, role = EXCLUDED.role, "
        "updated_at = now()",
        2, NULL, params, NULL, NULL, 0);
    srl_store_rc_t rc = SRL_STORE_OK;
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        rc = srl_store_classify(st->conn, res, "writing settings", errstr, errstr_size);
    PQclear(res);
    return rc;
}

/* ------------------------------------------------------------------ */
/* counts and status                                                    */

srl_store_rc_t srl_store_count(srl_store_t *st, int64_t counts[SRL_KIND_COUNT], char *errstr,
                               size_t errstr_size)
{
    PGresult *res = PQexec(st->conn, "SELECT (SELECT count(*) FROM assessment_types),"
                                     " (SELECT count(*) FROM vulnerability_assessments),"
                                     " (SELECT count(*) FROM policies)");
    srl_store_rc_t rc = SRL_STORE_OK;
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        rc = srl_store_classify(st->conn, res, "counting content", errstr, errstr_size);
    else
        for (int k = 0; k < SRL_KIND_COUNT; k++)
            counts[k] = strtoll(PQgetvalue(res, 0, k), NULL, 10);
    PQclear(res);
    return rc;
}

static int64_t col_i64(const PGresult *res, int col)
{
    return PQgetisnull(res, 0, col) ? 0 : strtoll(PQgetvalue(res, 0, col), NULL, 10);
}

static void col_str(const PGresult *res, int col, char *buf, size_t size)
{
    snprintf(buf, size, "%s", PQgetisnull(res, 0, col) ? "" : PQgetvalue(res, 0, col));
}

#define EPOCH_MS(expr) "(extract(epoch FROM " expr ") * 1000)::bigint"

srl_store_rc_t srl_store_get_status(srl_store_t *st, srl_store_status_t *out, char *errstr,
                                    size_t errstr_size)
{
    memset(out, 0, sizeof(*out));
    out->outbox_oldest_age_ms = -1;
    srl_store_rc_t rc = srl_store_schema_version(st, &out->schema_version, errstr, errstr_size);
    if (rc != SRL_STORE_OK)
        return rc;
    rc = version_verdict(out->schema_version, errstr, errstr_size, false);
    if (rc != SRL_STORE_OK)
        return rc;
    rc = srl_store_get_settings(st, &out->settings, errstr, errstr_size);
    if (rc == SRL_STORE_OK)
        rc = srl_store_count(st, out->counts, errstr, errstr_size);
    if (rc != SRL_STORE_OK)
        return rc;

    /* One round trip for the rest; every sub-select returns one row. */
    PGresult *res = PQexec(
        st->conn,
        "SELECT (SELECT count(*) FROM sysrepl.outbox),"
        " (SELECT " EPOCH_MS(
            "now() - min(created_at)") " FROM sysrepl.outbox),"
                                       " (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM sysrepl.sysrepl_version),"
                                       " p.last_delivered_version, " EPOCH_MS(
                                           "p.delivered_at") ", p.rate, p.last_error,"
                                                             " l.at_ms, l.level, l.component, l.message,"
                                                             " (SELECT count(*) FROM sysrepl.consumer_offsets),"
                                                             " (SELECT CASE WHEN count(*) = count(caught_up_at) THEN " EPOCH_MS(
                                                                 "min(caught_up_at)") " END FROM sysrepl.consumer_offsets),"
                                                                                      " (SELECT count(*) FROM sysrepl.dead_letters), d.at_ms, d.reason,"
                                                                                      " (SELECT sum(greatest(high_watermark - next_offset, 0)) FROM sysrepl.consumer_offsets),"
                                                                                      " (SELECT max(lag_seconds) FROM sysrepl.consumer_offsets)"
                                                                                      " FROM sysrepl.producer_state p"
                                                                                      " LEFT JOIN (SELECT " EPOCH_MS(
                                                                                          "at") " AS at_ms, level, component, message"
                                                                                                "            FROM sysrepl.replication_log ORDER BY id DESC LIMIT 1) l ON true"
                                                                                                " LEFT JOIN (SELECT " EPOCH_MS(
                                                                                                    "created_at") " AS at_ms, reason"
                                                                                                                  "            FROM sysrepl.dead_letters ORDER BY id DESC LIMIT 1) d ON true");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        rc = PQresultStatus(res) != PGRES_TUPLES_OK
                 ? srl_store_classify(st->conn, res, "reading status", errstr, errstr_size)
                 : SRL_STORE_FATAL;
        if (rc == SRL_STORE_FATAL && PQresultStatus(res) == PGRES_TUPLES_OK)
            srl__store_errf(errstr, errstr_size, "reading status: producer_state has no row");
        PQclear(res);
        return rc;
    }
    out->outbox_depth = col_i64(res, 0);
    if (!PQgetisnull(res, 0, 1))
        out->outbox_oldest_age_ms = col_i64(res, 1);
    out->last_version = col_i64(res, 2);
    out->producer_last_delivered_version = col_i64(res, 3);
    out->producer_delivered_at_ms = col_i64(res, 4);
    out->producer_rate = PQgetisnull(res, 0, 5) ? 0.0 : strtod(PQgetvalue(res, 0, 5), NULL);
    col_str(res, 6, out->producer_last_error, sizeof(out->producer_last_error));
    out->last_log_at_ms = col_i64(res, 7);
    col_str(res, 8, out->last_log_level, sizeof(out->last_log_level));
    col_str(res, 9, out->last_log_component, sizeof(out->last_log_component));
    col_str(res, 10, out->last_log_message, sizeof(out->last_log_message));
    out->consumer_partitions = col_i64(res, 11);
    out->consumer_oldest_caught_up_ms = col_i64(res, 12);
    out->dead_letters = col_i64(res, 13);
    out->newest_dead_letter_at_ms = col_i64(res, 14);
    col_str(res, 15, out->newest_dead_letter_reason, sizeof(out->newest_dead_letter_reason));
    out->consumer_lag_records = col_i64(res, 16);
    out->consumer_lag_seconds = PQgetisnull(res, 0, 17) ? 0.0
                                                        : strtod(PQgetvalue(res, 0, 17), NULL);
    PQclear(res);
    /* WAL capture: the store's slot, if any (docs/producer.md). */
    out->capture_lag_bytes = -1;
    res = PQexec(st->conn,
                 "SELECT slot_name, active, coalesce(wal_status, ''),"
                 " coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn), 0)::bigint"
                 " FROM pg_replication_slots WHERE database = current_database()"
                 " AND slot_name LIKE 'sysrepl\\_%' ORDER BY slot_name LIMIT 1");
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        col_str(res, 0, out->capture_slot, sizeof(out->capture_slot));
        out->capture_slot_active = PQgetvalue(res, 0, 1)[0] == 't';
        col_str(res, 2, out->capture_wal_status, sizeof(out->capture_wal_status));
        out->capture_lag_bytes = col_i64(res, 3);
    }
    PQclear(res);
    return SRL_STORE_OK;
}

/* ------------------------------------------------------------------ */
/* retention                                                            */

/* Rows per DELETE: short statements, so a first purge of a large backlog
 * never holds locks or a snapshot for long. */
#define PURGE_BATCH_ROWS 5000

srl_store_rc_t srl_store_purge_replication_log(srl_store_t *st, int64_t retention_ms,
                                               int64_t max_rows, int64_t *deleted, char *errstr,
                                               size_t errstr_size)
{
    int64_t total = 0;
    srl_store_rc_t rc = SRL_STORE_OK;
    if (deleted)
        *deleted = 0;
    if (retention_ms <= 0 || max_rows <= 0)
        return SRL_STORE_OK;
    char age[32], limit[32];
    snprintf(age, sizeof(age), "%" PRId64, retention_ms);
    while (total < max_rows) {
        int64_t n = max_rows - total < PURGE_BATCH_ROWS ? max_rows - total : PURGE_BATCH_ROWS;
        snprintf(limit, sizeof(limit), "%" PRId64, n);
        const char *params[2] = {age, limit};
        /* The oldest rows first, through the index on at; each DELETE is
         * its own transaction (the session is idle between calls). */
        PGresult *res = PQexecParams(st->conn,
                                     "DELETE FROM sysrepl.replication_log WHERE id IN"
                                     " (SELECT id FROM sysrepl.replication_log"
                                     "  WHERE at < now() - $1::bigint * interval '1 millisecond'"
                                     "  ORDER BY at LIMIT $2::bigint)",
                                     2, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            rc = srl_store_classify(st->conn, res, "purging replication_log", errstr, errstr_size);
            PQclear(res);
            break;
        }
        int64_t got = strtoll(PQcmdTuples(res), NULL, 10);
        PQclear(res);
        total += got;
        if (got < n)
            break; /* nothing older is left */
    }
    if (deleted)
        *deleted = total;
    return rc;
}
