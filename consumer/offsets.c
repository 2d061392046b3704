/*
 * offsets.c - every statement on consumer_offsets (see offsets.h).
 */
#include "offsets.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool srl_offsets_upsert_sql(srl_buf_t *sql, PGconn *conn, const srl_offset_update_t *offs, size_t n,
                            bool lag_columns)
{
    if (n == 0)
        return true;
    bool ok = srl_buf_addf(sql,
                           "INSERT INTO sysrepl.consumer_offsets (topic, partition, next_offset,"
                           " updated_at, caught_up_at%s) VALUES ",
                           lag_columns ? ", high_watermark, lag_seconds" : "");
    for (size_t i = 0; ok && i < n; i++) {
        char *topic = PQescapeLiteral(conn, offs[i].topic, strlen(offs[i].topic));
        if (!topic)
            return false;
        char caught[64] = "NULL::timestamptz";
        if (offs[i].caught_up_ms > 0)
            snprintf(caught, sizeof(caught), "to_timestamp(%" PRId64 " / 1000.0)",
                     offs[i].caught_up_ms);
        ok = srl_buf_addf(sql, "%s(%s, %d, %" PRId64 ", now(), %s", i ? ", " : "", topic,
                          (int)offs[i].partition, offs[i].next_offset, caught);
        PQfreemem(topic);
        if (ok && lag_columns) {
            char hw[32] = "NULL", lag[40] = "NULL";
            if (offs[i].high_watermark >= 0)
                snprintf(hw, sizeof(hw), "%" PRId64, offs[i].high_watermark);
            if (offs[i].lag_seconds >= 0)
                snprintf(lag, sizeof(lag), "%.3f", offs[i].lag_seconds);
            ok = srl_buf_addf(sql, ", %s::bigint, %s::float8", hw, lag);
        }
        ok = ok && srl_buf_addf(sql, ")");
    }
    /* greatest() ignores NULL: no evidence leaves caught_up_at alone, and
     * older evidence never moves it back. */
    ok = ok && srl_buf_addf(sql,
                            " ON CONFLICT (topic, partition) DO UPDATE SET"
                            " next_offset = EXCLUDED.next_offset, updated_at = now(),"
                            " caught_up_at = greatest(EXCLUDED.caught_up_at,"
                            " consumer_offsets.caught_up_at)%s;",
                            lag_columns ? ", high_watermark = coalesce(EXCLUDED.high_watermark,"
                                          " consumer_offsets.high_watermark),"
                                          " lag_seconds = coalesce(EXCLUDED.lag_seconds,"
                                          " consumer_offsets.lag_seconds)"
                                        : "");
    return ok;
}

bool srl_offsets_forget_topic_sql(srl_buf_t *sql, PGconn *conn, const char *topic)
{
    char *lit = PQescapeLiteral(conn, topic, strlen(topic));
    if (!lit)
        return false;
    bool ok = srl_buf_addf(sql, "DELETE FROM sysrepl.consumer_offsets WHERE topic = %s;", lit);
    PQfreemem(lit);
    return ok;
}

srl_store_rc_t srl_offsets_read(PGconn *conn, srl_offset_row_t **rows, size_t *n, char *errstr,
                                size_t errstr_size)
{
    *rows = NULL;
    *n = 0;
    PGresult *res = PQexec(conn, "SELECT topic, partition, next_offset,"
                                 " (extract(epoch FROM caught_up_at) * 1000)::bigint"
                                 " FROM sysrepl.consumer_offsets");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        srl_store_rc_t rc = srl_store_classify(conn, res, "reading consumer_offsets", errstr,
                                               errstr_size);
        PQclear(res);
        return rc;
    }
    int nt = PQntuples(res);
    srl_offset_row_t *out = calloc(nt > 0 ? (size_t)nt : 1, sizeof(*out));
    if (!out) {
        PQclear(res);
        snprintf(errstr, errstr_size, "out of memory");
        return SRL_STORE_FATAL;
    }
    for (int r = 0; r < nt; r++) {
        /* server-formatted integers: no partial parses to reject */
        snprintf(out[r].topic, sizeof(out[r].topic), "%s", PQgetvalue(res, r, 0));
        out[r].partition = (int32_t)strtol(PQgetvalue(res, r, 1), NULL, 10);
        out[r].next_offset = strtoll(PQgetvalue(res, r, 2), NULL, 10);
        out[r].caught_up_ms = PQgetisnull(res, r, 3) ? 0 : strtoll(PQgetvalue(res, r, 3), NULL, 10);
    }
    PQclear(res);
    *rows = out;
    *n = (size_t)nt;
    return SRL_STORE_OK;
}

bool srl_offsets_have_lag_columns(PGconn *conn)
{
    PGresult *res = PQexec(conn, "SELECT count(*) FROM information_schema.columns WHERE"
                                 " table_name = 'consumer_offsets' AND column_name IN"
                                 " ('high_watermark', 'lag_seconds')"
                                 " AND table_schema = 'sysrepl'");
    bool yes = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
               strcmp(PQgetvalue(res, 0, 0), "2") == 0;
    PQclear(res);
    return yes;
}
