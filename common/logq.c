/*
 * logq.c - the replication-log queue (see sysrepl/logq.h).
 *
 * Two arrays of lines: the sink fills one under the queue's mutex, a take
 * swaps them, so the lines are escaped and formatted outside the lock and
 * a sink never waits for the store.
 */
#include "sysrepl/logq.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct logq_line {
    srl_log_level_t lvl;
    char text[1024];
} logq_line_t;

struct srl_logq {
    char component[32];
    srl_log_level_t min_level;
    pthread_mutex_t mu;
    logq_line_t *lines; /* filled by the sink, under mu */
    size_t count;       /* under mu */
    size_t dropped;     /* under mu: lines lost to a full queue since the last take */
    logq_line_t *spare; /* the other array: the taker's, outside mu */
};

srl_logq_t *srl_logq_new(const char *component, srl_log_level_t min_level)
{
    /* The component goes into the INSERTs as a literal: a plain word only. */
    size_t len = strspn(component, "abcdefghijklmnopqrstuvwxyz_-");
    if (len == 0 || component[len] != '\0' || len >= sizeof(((srl_logq_t *)0)->component))
        return NULL;
    srl_logq_t *q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    q->lines = calloc(SRL_LOGQ_MAX, sizeof(*q->lines));
    q->spare = calloc(SRL_LOGQ_MAX, sizeof(*q->spare));
    if (!q->lines || !q->spare) {
        free(q->lines);
        free(q->spare);
        free(q);
        return NULL;
    }
    snprintf(q->component, sizeof(q->component), "%s", component);
    q->min_level = min_level;
    pthread_mutex_init(&q->mu, NULL);
    return q;
}

void srl_logq_free(srl_logq_t *q)
{
    if (!q)
        return;
    pthread_mutex_destroy(&q->mu);
    free(q->lines);
    free(q->spare);
    free(q);
}

void srl_logq_sink(void *ctx, srl_log_level_t lvl, const char *component, const char *msg,
                   const char *kv)
{
    srl_logq_t *q = ctx;
    /* The daemon's own events: not the periodic stats line, nor
     * librdkafka's chatter (which stays in the process log). */
    if (lvl < q->min_level || strcmp(component, q->component) != 0 || strcmp(msg, "stats") == 0)
        return;
    pthread_mutex_lock(&q->mu);
    if (q->count < SRL_LOGQ_MAX) {
        logq_line_t *l = &q->lines[q->count++];
        l->lvl = lvl;
        snprintf(l->text, sizeof(l->text), "%s%s%s", msg, kv && kv[0] ? " " : "", kv ? kv : "");
    } else {
        q->dropped++;
    }
    pthread_mutex_unlock(&q->mu);
}

bool srl_logq_pending(srl_logq_t *q)
{
    if (!q)
        return false;
    pthread_mutex_lock(&q->mu);
    bool any = q->count > 0 || q->dropped > 0;
    pthread_mutex_unlock(&q->mu);
    return any;
}

static bool add_insert(srl_buf_t *sql, PGconn *conn, const char *component, srl_log_level_t lvl,
                       const char *text)
{
    char *lit = PQescapeLiteral(conn, text, strlen(text));
    if (!lit)
        return true; /* a line libpq cannot escape (bad encoding): skipped */
    char head[160];
    int m = snprintf(
        head, sizeof(head),
        "INSERT INTO sysrepl.replication_log (level, component, message) VALUES ('%s', '%s', ",
        srl_log_level_name(lvl), component);
    bool ok = m > 0 && (size_t)m < sizeof(head) && srl_buf_add(sql, head, (size_t)m) &&
              srl_buf_add(sql, lit, strlen(lit)) && srl_buf_add(sql, ");", 2);
    PQfreemem(lit);
    return ok;
}

bool srl_logq_take_sql(srl_logq_t *q, PGconn *conn, srl_buf_t *sql)
{
    if (!q)
        return true;
    pthread_mutex_lock(&q->mu);
    logq_line_t *lines = q->lines;
    size_t n = q->count, dropped = q->dropped;
    q->lines = q->spare;
    q->count = 0;
    q->dropped = 0;
    pthread_mutex_unlock(&q->mu);
    bool ok = true;
    for (size_t i = 0; ok && i < n; i++)
        ok = add_insert(sql, conn, q->component, lines[i].lvl, lines[i].text);
    if (ok && dropped) {
        char text[128];
        snprintf(text, sizeof(text),
                 "replication_log lines dropped dropped=%zu reason=\"queue full\"", dropped);
        ok = add_insert(sql, conn, q->component, SRL_LOG_WARN, text);
    }
    /* Only this thread takes, so the array is ours until the next take. */
    q->spare = lines;
    return ok;
}

srl_store_rc_t srl_logq_flush(srl_logq_t *q, PGconn *conn, char *errstr, size_t errstr_size)
{
    srl_buf_t sql = {0};
    srl_store_rc_t rc = SRL_STORE_OK;
    if (!srl_logq_take_sql(q, conn, &sql) || !srl_buf_add(&sql, "", 1)) {
        snprintf(errstr, errstr_size, "writing replication_log: out of memory");
        rc = SRL_STORE_FATAL;
        goto cleanup;
    }
    if (sql.len > 1)
        rc = srl_store_exec(conn, sql.data, "writing replication_log", errstr, errstr_size);
cleanup:
    srl_buf_free(&sql);
    return rc;
}
