/*
 * store_wal.c - the hub store's side of WAL capture (see store.h): the
 * replication slot the producer reads, and switching the outbox triggers
 * off once the slot holds every change.
 */
#include <stdio.h>
#include <string.h>

#include "store_private.h"
#include "sysrepl/store.h"

/* The store's slot: "sysrepl_<database oid>". */
static srl_store_rc_t slot_name(PGconn *conn, char *name, size_t size, char *errstr,
                                size_t errstr_size)
{
    PGresult *res = PQexec(
        conn, "SELECT 'sysrepl_' || oid FROM pg_database WHERE datname = current_database()");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        srl_store_rc_t rc = srl_store_classify(conn, res, "naming the replication slot", errstr,
                                               errstr_size);
        PQclear(res);
        return rc;
    }
    snprintf(name, size, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return SRL_STORE_OK;
}

srl_store_rc_t srl_store_wal_available(PGconn *conn, bool *available, char *errstr,
                                       size_t errstr_size)
{
    PGresult *res = PQexec(conn, "SELECT current_setting('wal_level')");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        srl_store_rc_t rc = srl_store_classify(conn, res, "reading wal_level", errstr, errstr_size);
        PQclear(res);
        return rc;
    }
    *available = strcmp(PQgetvalue(res, 0, 0), "logical") == 0;
    PQclear(res);
    return SRL_STORE_OK;
}

/* Make the slot if it does not exist (*created); one the server
 * invalidated (wal_status lost) is dropped and made again (*lost). */
static srl_store_rc_t ensure_slot(PGconn *conn, const char *slot, bool *created, bool *lost,
                                  char *errstr, size_t errstr_size)
{
    const char *params[1] = {slot};
    *created = *lost = false;
    PGresult *res = PQexecParams(conn,
                                 "SELECT coalesce(wal_status, '') FROM pg_replication_slots"
                                 " WHERE slot_name = $1",
                                 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        srl_store_rc_t rc = srl_store_classify(conn, res, "reading the replication slot", errstr,
                                               errstr_size);
        PQclear(res);
        return rc;
    }
    bool exists = PQntuples(res) == 1;
    *lost = exists && strcmp(PQgetvalue(res, 0, 0), "lost") == 0;
    PQclear(res);
    if (exists && !*lost)
        return SRL_STORE_OK;
    if (*lost) {
        res = PQexecParams(conn, "SELECT pg_drop_replication_slot($1)", 1, NULL, params, NULL, NULL,
                           0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            srl_store_rc_t rc = srl_store_classify(conn, res, "dropping the lost replication slot",
                                                   errstr, errstr_size);
            PQclear(res);
            return rc;
        }
        PQclear(res);
    }
    res = PQexecParams(conn, "SELECT pg_create_logical_replication_slot($1, 'pgoutput')", 1, NULL,
                       params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        srl_store_rc_t rc = srl_store_classify(conn, res, "creating the replication slot", errstr,
                                               errstr_size);
        PQclear(res);
        return rc;
    }
    PQclear(res);
    *created = true;
    return SRL_STORE_OK;
}

/* Whether the content tables' triggers are not yet as WAL capture wants
 * them: an outbox trigger enabled, or a WAL delete trigger disabled. */
static const char triggers_sql[] =
    "SELECT count(*) FROM pg_trigger"
    " WHERE tgrelid IN ('assessment_types'::regclass, 'vulnerability_assessments'::regclass,"
    "                   'policies'::regclass)"
    "   AND ((tgname IN ('sysrepl_capture_insert', 'sysrepl_capture_update',"
    "                    'sysrepl_capture_delete') AND tgenabled <> 'D')"
    "     OR (tgname IN ('sysrepl_wal_delete', 'sysrepl_wal_rekey') AND tgenabled = 'D'))";

#define SWITCH_TRIGGERS(t)                                                             \
    " ALTER TABLE " t " DISABLE TRIGGER sysrepl_capture_insert,"                       \
    " DISABLE TRIGGER sysrepl_capture_update, DISABLE TRIGGER sysrepl_capture_delete," \
    " ENABLE TRIGGER sysrepl_wal_delete, ENABLE TRIGGER sysrepl_wal_rekey;"

srl_store_rc_t srl_store_wal_engage(PGconn *conn, char *slot, size_t slot_size, bool *created,
                                    bool *lost, char *errstr, size_t errstr_size)
{
    srl_store_rc_t rc = slot_name(conn, slot, slot_size, errstr, errstr_size);
    if (rc != SRL_STORE_OK)
        return rc;
    PGresult *res = PQexec(conn, triggers_sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = srl_store_classify(conn, res, "reading the outbox triggers", errstr, errstr_size);
        PQclear(res);
        return rc;
    }
    bool enabled = strcmp(PQgetvalue(res, 0, 0), "0") != 0;
    PQclear(res);
    rc = ensure_slot(conn, slot, created, lost, errstr, errstr_size);
    if (rc != SRL_STORE_OK)
        return rc;
    /* Capturing from the WAL already, and the slot had to be made: it was
     * dropped, so changes since may be missing, as with a lost one. */
    if (!enabled && *created)
        *lost = true;
    if (!enabled)
        return SRL_STORE_OK;
    /* The slot exists: every change committed from here on is in it. A
     * change committed between the slot and this statement is in both,
     * and published twice with one version: harmless. Deletes switch from
     * outbox rows to WAL messages in the same transaction. */
    /* lock_timeout: a writer holding one table while this waits for it
     * must never be the one a deadlock check aborts; this gives up first
     * (the caller retries). */
    res = PQexec(conn,
                 "BEGIN; SET LOCAL lock_timeout = '200ms';" SWITCH_TRIGGERS("assessment_types")
                     SWITCH_TRIGGERS("vulnerability_assessments")
                         SWITCH_TRIGGERS("policies") " COMMIT");
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        rc = srl_store_classify(conn, res,
                                "switching the outbox triggers off (the role must own the content"
                                " tables)",
                                errstr, errstr_size);
        PQclear(res);
        PQclear(PQexec(conn, "ROLLBACK"));
        if (rc == SRL_STORE_FATAL || rc == SRL_STORE_OK) {
            /* The switch will not happen: a slot made for it would only
             * keep WAL forever. */
            const char *params[1] = {slot};
            PQclear(PQexecParams(conn,
                                 "SELECT pg_drop_replication_slot(slot_name)"
                                 " FROM pg_replication_slots WHERE slot_name = $1 AND NOT active",
                                 1, NULL, params, NULL, NULL, 0));
        }
        return rc == SRL_STORE_OK ? SRL_STORE_FATAL : rc;
    }
    PQclear(res);
    return SRL_STORE_OK;
}

#define OUTBOX_TRIGGERS(t)                                                           \
    " ALTER TABLE " t " ENABLE TRIGGER sysrepl_capture_insert,"                      \
    " ENABLE TRIGGER sysrepl_capture_update, ENABLE TRIGGER sysrepl_capture_delete," \
    " DISABLE TRIGGER sysrepl_wal_delete, DISABLE TRIGGER sysrepl_wal_rekey;"

srl_store_rc_t srl_store_wal_disengage(PGconn *conn, bool *dropped, char *errstr,
                                       size_t errstr_size)
{
    char slot[64];
    *dropped = false;
    srl_store_rc_t rc = slot_name(conn, slot, sizeof(slot), errstr, errstr_size);
    if (rc != SRL_STORE_OK)
        return rc;
    PGresult *res = PQexec(conn,
                           "BEGIN; SET LOCAL lock_timeout = '5s';" OUTBOX_TRIGGERS(
                               "assessment_types") OUTBOX_TRIGGERS("vulnerability_assessments")
                               OUTBOX_TRIGGERS("policies") " COMMIT");
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        rc = srl_store_classify(conn, res, "switching the outbox triggers on", errstr, errstr_size);
        PQclear(res);
        PQclear(PQexec(conn, "ROLLBACK"));
        return rc == SRL_STORE_OK ? SRL_STORE_FATAL : rc;
    }
    PQclear(res);
    const char *params[1] = {slot};
    res = PQexecParams(conn,
                       "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
                       " WHERE slot_name = $1",
                       1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = srl_store_classify(conn, res, "dropping the replication slot", errstr, errstr_size);
        PQclear(res);
        return rc == SRL_STORE_OK ? SRL_STORE_FATAL : rc;
    }
    *dropped = PQntuples(res) > 0;
    PQclear(res);
    return SRL_STORE_OK;
}
