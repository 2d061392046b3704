/*
 * wal.c - the hub's changes read from its WAL (see wal.h).
 *
 * The replication protocol: CopyBoth after START_REPLICATION; the server
 * sends 'w' (XLogData: start, end, time, then one pgoutput message) and
 * 'k' (keepalive: end, time, reply-requested); we send 'r' (standby status:
 * written, flushed, applied, time, reply-requested). pgoutput protocol 1:
 * B(egin) R(elation) I U D T(runcate) Y(type) O(rigin) M(essage) C(ommit).
 */
#include "wal.h"

#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sysrepl/clock.h"
#include "sysrepl/model.h"
#include "sysrepl/rows.h"

/* Columns of the result: as outbox.c's batch query. */
#define COL_VERSION 0
#define COL_KIND 1
#define COL_KEY 2
#define COL_DELETED 3
#define COL_TYPE 4
#define COL_ASSESSMENT (COL_TYPE + SRL_ROWS_TYPE_NCOLS)
#define COL_POLICY (COL_ASSESSMENT + SRL_ROWS_ASSESSMENT_NCOLS)
#define NCOLS (COL_POLICY + SRL_ROWS_POLICY_NCOLS)
#define MAX_KIND_COLS 16
#define MAX_RELS 64

static const int kind_col0[SRL_KIND_COUNT] = {COL_TYPE, COL_ASSESSMENT, COL_POLICY};
static const char *const kind_table[SRL_KIND_COUNT] = {"assessment_types",
                                                       "vulnerability_assessments", "policies"};

/* Each kind's content column names in result order, from rows.h's lists;
 * is_array: the list reads it through array_to_json(). */
typedef struct kind_cols {
    int n;
    char names[MAX_KIND_COLS][48];
    bool is_array[MAX_KIND_COLS];
} kind_cols_t;

static kind_cols_t kcols[SRL_KIND_COUNT];
static bool kcols_ready;

static void parse_col_list(const char *list, kind_cols_t *kc)
{
    const char *p = list;
    kc->n = 0;
    while (*p && kc->n < MAX_KIND_COLS) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char item[96];
        snprintf(item, sizeof(item), "%.*s", (int)len, p);
        bool arr = strncmp(item, "array_to_json(", 14) == 0;
        const char *name = arr ? item + 14 : item;
        if (strncmp(name, "x.", 2) == 0)
            name += 2;
        snprintf(kc->names[kc->n], sizeof(kc->names[0]), "%.47s", name);
        char *paren = strchr(kc->names[kc->n], ')');
        if (paren)
            *paren = '\0';
        kc->is_array[kc->n] = arr;
        kc->n++;
        p = end ? end + 1 : p + len;
    }
}

static void kcols_init(void)
{
    if (kcols_ready)
        return;
    parse_col_list(SRL_ROWS_TYPE_COLS("x"), &kcols[SRL_KIND_ASSESSMENT_TYPE]);
    parse_col_list(SRL_ROWS_ASSESSMENT_COLS("x"), &kcols[SRL_KIND_ASSESSMENT]);
    parse_col_list(SRL_ROWS_POLICY_COLS("x"), &kcols[SRL_KIND_POLICY]);
    kcols_ready = true;
}

/* A relation the stream described: its kind (-1: not ours) and, per
 * column of the kind, the relation's column number (-1: absent). */
typedef struct rel {
    uint32_t relid;
    int kind;
    int ncols;
    int map[MAX_KIND_COLS];
    bool numeric_array[MAX_KIND_COLS]; /* int2[], int4[], int8[] */
    int vid, skind, sname;             /* assessments: the columns of the key */
} rel_t;

/* One decoded tuple: per relation column, its value. */
#define MAX_TUPLE_COLS 64
typedef struct tuple {
    int n;
    char kind[MAX_TUPLE_COLS]; /* 'n' null, 'u' unchanged TOAST, 't' text */
    const char *val[MAX_TUPLE_COLS];
    int len[MAX_TUPLE_COLS];
} tuple_t;

struct srl_wal {
    PGconn *conn;
    rel_t rels[MAX_RELS];
    int nrels;
    bool in_txn;
    bool skip_txn; /* the transaction is a consumer's apply */
    uint64_t last_commit_end;
    uint64_t sent_lsn;  /* the server's end of WAL sent, from keepalives */
    uint64_t confirmed; /* last position reported as flushed */
    int64_t confirmed_at_ms;
    uint64_t mark_lsn; /* highest SRL_WAL_MARK_PREFIX message seen */
};

/* ------------------------------------------------------------------ */
/* helpers                                                              */

const char *srl_wal_lsn_str(uint64_t lsn, char *buf, size_t size)
{
    snprintf(buf, size, "%X/%X", (unsigned)(lsn >> 32), (unsigned)lsn);
    return buf;
}

static bool parse_lsn(const char *s, uint64_t *out)
{
    unsigned hi, lo;
    if (sscanf(s, "%X/%X", &hi, &lo) != 2)
        return false;
    *out = ((uint64_t)hi << 32) | lo;
    return true;
}

typedef struct rd {
    const unsigned char *p, *end;
    bool bad;
} rd_t;

static uint64_t rd_u(rd_t *r, int bytes)
{
    if (r->bad || r->end - r->p < bytes) {
        r->bad = true;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v = (v << 8) | r->p[i];
    r->p += bytes;
    return v;
}

static const char *rd_str(rd_t *r)
{
    if (r->bad)
        return "";
    const unsigned char *z = memchr(r->p, '\0', (size_t)(r->end - r->p));
    if (!z) {
        r->bad = true;
        return "";
    }
    const char *s = (const char *)r->p;
    r->p = z + 1;
    return s;
}

static void put_u64(char *b, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        b[i] = (char)(v & 0xff);
        v >>= 8;
    }
}

/* Microseconds since 2000-01-01, the protocol's clock. */
static int64_t pg_now_us(void)
{
    return srl_clock_wall_us() - INT64_C(946684800000000);
}

static srl_store_rc_t conn_error(PGconn *conn, PGresult *res, const char *what, char *errstr,
                                 size_t errstr_size)
{
    return srl_store_classify(conn, res, what, errstr, errstr_size);
}

srl_wal_t *srl_wal_open(const char *dsn, const char *slot, srl_store_rc_t *rc, char *errstr,
                        size_t errstr_size)
{
    kcols_init();
    srl_wal_t *w = calloc(1, sizeof(*w));
    if (!w) {
        snprintf(errstr, errstr_size, "out of memory");
        *rc = SRL_STORE_FATAL;
        return NULL;
    }
    const char *keys[] = {"connect_timeout", "fallback_application_name", "dbname", "replication",
                          NULL};
    const char *vals[] = {"10", "sysrepl-producer (wal)", dsn, "database", NULL};
    w->conn = PQconnectdbParams(keys, vals, 1);
    if (!w->conn || PQstatus(w->conn) != CONNECTION_OK) {
        *rc = conn_error(w->conn, NULL, "connecting for replication", errstr, errstr_size);
        if (*rc == SRL_STORE_OK)
            *rc = SRL_STORE_UNREACHABLE;
        srl_wal_close(w);
        return NULL;
    }
    char sql[256];
    snprintf(sql, sizeof(sql),
             "START_REPLICATION SLOT \"%s\" LOGICAL 0/0 (proto_version '1',"
             " publication_names '" SRL_WAL_PUBLICATION "', messages 'true')",
             slot);
    PGresult *res = PQexec(w->conn, sql);
    if (PQresultStatus(res) != PGRES_COPY_BOTH) {
        *rc = conn_error(w->conn, res, "starting replication", errstr, errstr_size);
        if (*rc == SRL_STORE_OK)
            *rc = SRL_STORE_FATAL;
        PQclear(res);
        srl_wal_close(w);
        return NULL;
    }
    PQclear(res);
    if (PQsetnonblocking(w->conn, 1) != 0) {
        *rc = conn_error(w->conn, NULL, "starting replication", errstr, errstr_size);
        srl_wal_close(w);
        return NULL;
    }
    *rc = SRL_STORE_OK;
    return w;
}

void srl_wal_close(srl_wal_t *w)
{
    if (!w)
        return;
    if (w->conn)
        PQfinish(w->conn);
    free(w);
}

int srl_wal_socket(const srl_wal_t *w)
{
    return w ? PQsocket(w->conn) : -1;
}

srl_store_rc_t srl_wal_confirm(srl_wal_t *w, uint64_t lsn, bool force, char *errstr,
                               size_t errstr_size)
{
    int64_t now = srl_clock_mono_ms();
    if (lsn < w->confirmed)
        lsn = w->confirmed;
    /* A status at least every 10 s keeps wal_sender_timeout away; one is
     * due at once when the server asked for it (confirmed_at_ms = 0). */
    if (!force && now - w->confirmed_at_ms < (lsn == w->confirmed ? 10000 : 100))
        return SRL_STORE_OK;
    char msg[34];
    msg[0] = 'r';
    put_u64(msg + 1, lsn);
    put_u64(msg + 9, lsn);
    put_u64(msg + 17, 0);
    put_u64(msg + 25, (uint64_t)pg_now_us());
    msg[33] = force ? 1 : 0;
    if (PQputCopyData(w->conn, msg, sizeof(msg)) != 1 || PQflush(w->conn) < 0)
        return conn_error(w->conn, NULL, "confirming the replication position", errstr,
                          errstr_size);
    w->confirmed = lsn;
    w->confirmed_at_ms = now;
    return SRL_STORE_OK;
}

uint64_t srl_wal_mark_seen(const srl_wal_t *w)
{
    return w->mark_lsn;
}

bool srl_wal_between_transactions(const srl_wal_t *w, uint64_t *sent_lsn)
{
    *sent_lsn = w->sent_lsn;
    return !w->in_txn;
}

/* ------------------------------------------------------------------ */
/* decoding                                                             */

static rel_t *find_rel(srl_wal_t *w, uint32_t relid)
{
    for (int i = 0; i < w->nrels; i++)
        if (w->rels[i].relid == relid)
            return &w->rels[i];
    return NULL;
}

static bool decode_relation(srl_wal_t *w, rd_t *r, char *errstr, size_t errstr_size)
{
    uint32_t relid = (uint32_t)rd_u(r, 4);
    rd_str(r); /* namespace */
    const char *relname = rd_str(r);
    rd_u(r, 1); /* replica identity */
    int ncols = (int)rd_u(r, 2);
    rel_t *rel = find_rel(w, relid);
    if (!rel) {
        if (w->nrels == MAX_RELS) {
            snprintf(errstr, errstr_size, "more than %d relations in the replication stream",
                     MAX_RELS);
            return false;
        }
        rel = &w->rels[w->nrels++];
    }
    memset(rel, 0, sizeof(*rel));
    rel->relid = relid;
    rel->kind = -1;
    rel->ncols = ncols;
    for (int k = 0; k < SRL_KIND_COUNT; k++)
        if (strcmp(relname, kind_table[k]) == 0)
            rel->kind = k;
    for (int i = 0; i < MAX_KIND_COLS; i++)
        rel->map[i] = -1;
    rel->vid = rel->skind = rel->sname = -1;
    for (int c = 0; c < ncols && !r->bad; c++) {
        rd_u(r, 1); /* flags */
        const char *name = rd_str(r);
        uint32_t type = (uint32_t)rd_u(r, 4);
        rd_u(r, 4); /* typmod */
        if (rel->kind < 0)
            continue;
        const kind_cols_t *kc = &kcols[rel->kind];
        for (int i = 0; i < kc->n; i++)
            if (strcmp(kc->names[i], name) == 0) {
                rel->map[i] = c;
                rel->numeric_array[i] = type == 1005 || type == 1007 || type == 1016;
            }
        if (strcmp(name, "vulnerability_id") == 0)
            rel->vid = c;
        else if (strcmp(name, "scope_kind") == 0)
            rel->skind = c;
        else if (strcmp(name, "scope_name") == 0)
            rel->sname = c;
    }
    if (rel->kind >= 0 && !r->bad) {
        const kind_cols_t *kc = &kcols[rel->kind];
        for (int i = 0; i < kc->n; i++)
            if (rel->map[i] < 0) {
                snprintf(errstr, errstr_size, "table %s has no column %s in the replication stream",
                         relname, kc->names[i]);
                return false;
            }
    }
    return !r->bad;
}

static bool decode_tuple(rd_t *r, tuple_t *t)
{
    t->n = (int)rd_u(r, 2);
    if (t->n > MAX_TUPLE_COLS)
        return false;
    for (int i = 0; i < t->n && !r->bad; i++) {
        t->kind[i] = (char)rd_u(r, 1);
        t->val[i] = NULL;
        t->len[i] = 0;
        if (t->kind[i] == 't' || t->kind[i] == 'b') {
            uint32_t len = (uint32_t)rd_u(r, 4);
            if (r->bad || (size_t)(r->end - r->p) < len)
                return false;
            t->val[i] = (const char *)r->p;
            t->len[i] = (int)len;
            r->p += len;
        } else if (t->kind[i] != 'n' && t->kind[i] != 'u') {
            return false;
        }
    }
    return !r->bad;
}

/* Append s[0..n) to out as the inside of a JSON string. */
static bool json_chars(srl_buf_t *out, const char *s, int n)
{
    bool ok = true;
    for (int i = 0; i < n && ok; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            ok = srl_buf_add(out, "\\", 1) && srl_buf_add(out, &s[i], 1);
        else if (c < 0x20)
            ok = srl_buf_addf(out, "\\u%04x", c);
        else
            ok = srl_buf_add(out, &s[i], 1);
    }
    return ok;
}

/* A PostgreSQL array literal ({a,"b c",NULL}) as a JSON array (NUL-
 * terminated in out): of strings, or of numbers (numeric: an integer
 * array), as the outbox query's array_to_json() gives it. */
static bool array_to_json(srl_buf_t *out, const char *s, int len, bool numeric)
{
    int i = len >= 2 && s[0] == '{' ? 1 : 0;
    bool ok = srl_buf_add(out, "[", 1);
    for (bool first = true; ok && i < len && s[i] != '}'; first = false) {
        if (!first)
            ok = srl_buf_add(out, ",", 1);
        if (s[i] == '"') { /* quoted: backslash escapes */
            ok = ok && srl_buf_add(out, "\"", 1);
            for (i++; ok && i < len && s[i] != '"'; i++) {
                if (s[i] == '\\' && i + 1 < len)
                    i++;
                ok = json_chars(out, &s[i], 1);
            }
            i++; /* the closing quote */
            ok = ok && srl_buf_add(out, "\"", 1);
        } else {
            int st = i;
            while (i < len && s[i] != ',' && s[i] != '}')
                i++;
            if (i - st == 4 && strncmp(s + st, "NULL", 4) == 0)
                ok = ok && srl_buf_add(out, "null", 4);
            else if (numeric)
                ok = ok && srl_buf_add(out, s + st, (size_t)(i - st));
            else
                ok = ok && srl_buf_add(out, "\"", 1) && json_chars(out, s + st, i - st) &&
                     srl_buf_add(out, "\"", 1);
        }
        if (i < len && s[i] == ',')
            i++;
    }
    return ok && srl_buf_add(out, "]", 2); /* with the NUL */
}

/* The record key of a tuple: the name, or the assessment key as the
 * generated column computes it. */
static bool tuple_key(const rel_t *rel, const tuple_t *t, char *key, size_t size)
{
    if (rel->kind == SRL_KIND_ASSESSMENT) {
        if (rel->vid < 0 || rel->skind < 0 || rel->vid >= t->n || rel->skind >= t->n ||
            t->kind[rel->vid] != 't' || t->kind[rel->skind] != 't')
            return false;
        int sk_len = t->len[rel->skind];
        const char *sk = t->val[rel->skind];
        if (sk_len == 6 && memcmp(sk, "global", 6) == 0) {
            snprintf(key, size, "%.*s|global", t->len[rel->vid], t->val[rel->vid]);
        } else {
            if (rel->sname < 0 || rel->sname >= t->n || t->kind[rel->sname] != 't')
                return false;
            snprintf(key, size, "%.*s|%.*s:%.*s", t->len[rel->vid], t->val[rel->vid], sk_len, sk,
                     t->len[rel->sname], t->val[rel->sname]);
        }
        return true;
    }
    int c = rel->map[3]; /* name: the 4th column of types and policies */
    if (c < 0 || c >= t->n || t->kind[c] != 't')
        return false;
    snprintf(key, size, "%.*s", t->len[c], t->val[c]);
    return true;
}

/* Append a row to res: an upsert (t) or a tombstone (t NULL). */
static bool add_row(PGresult *res, const rel_t *rel, const char *key, const tuple_t *t)
{
    int row = PQntuples(res);
    char kind[4];
    snprintf(kind, sizeof(kind), "%d", rel->kind);
    if (!PQsetvalue(res, row, COL_KIND, kind, (int)strlen(kind)) ||
        !PQsetvalue(res, row, COL_KEY, (char *)key, (int)strlen(key)) ||
        !PQsetvalue(res, row, COL_DELETED, t ? "f" : "t", 1))
        return false;
    if (!t)
        return true; /* version: srl_wal_complete */
    const kind_cols_t *kc = &kcols[rel->kind];
    int col0 = kind_col0[rel->kind];
    bool unchanged = false;
    for (int i = 0; i < kc->n; i++) {
        int c = rel->map[i];
        if (c >= t->n || t->kind[c] == 'n')
            continue;
        if (t->kind[c] == 'u') {
            unchanged = true;
            continue;
        }
        bool ok;
        if (kc->is_array[i]) {
            srl_buf_t j = {0};
            ok = array_to_json(&j, t->val[c], t->len[c], rel->numeric_array[i]) &&
                 PQsetvalue(res, row, col0 + i, j.data, (int)j.len - 1);
            srl_buf_free(&j);
        } else {
            ok = PQsetvalue(res, row, col0 + i, (char *)t->val[c], t->len[c]);
        }
        if (!ok)
            return false;
    }
    /* The version column (first of each kind's list) is the row's. */
    const char *v = PQgetvalue(res, row, col0);
    if (!PQsetvalue(res, row, COL_VERSION, (char *)v, (int)strlen(v)))
        return false;
    if (unchanged) /* read from the table by srl_wal_complete */
        return PQsetvalue(res, row, COL_DELETED, "u", 1) != 0;
    return true;
}

static PGresult *new_result(void)
{
    PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    if (!res)
        return NULL;
    PGresAttDesc att[NCOLS];
    char names[NCOLS][8];
    memset(att, 0, sizeof(att));
    for (int i = 0; i < NCOLS; i++) {
        snprintf(names[i], sizeof(names[i]), "c%d", i);
        att[i].name = names[i];
        att[i].format = 0;
        att[i].typid = 25; /* text */
        att[i].typlen = -1;
        att[i].atttypmod = -1;
    }
    if (!PQsetResultAttrs(res, NCOLS, att)) {
        PQclear(res);
        return NULL;
    }
    return res;
}

/* Decode one pgoutput message into res. */
static srl_store_rc_t decode_message(srl_wal_t *w, const unsigned char *m, size_t len,
                                     PGresult **res, char *errstr, size_t errstr_size)
{
    rd_t r = {m + 1, m + len, false};
    char key[1024];
    if (len == 0)
        return SRL_STORE_OK;
    switch (m[0]) {
    case 'B':
        w->in_txn = true;
        w->skip_txn = false;
        return SRL_STORE_OK;
    case 'C': {
        rd_u(&r, 1);
        rd_u(&r, 8);                /* commit LSN */
        uint64_t end = rd_u(&r, 8); /* end of the transaction */
        w->in_txn = false;
        w->skip_txn = false;
        if (!r.bad && end > w->last_commit_end)
            w->last_commit_end = end;
        break;
    }
    case 'M': {
        rd_u(&r, 1); /* flags */
        uint64_t lsn = rd_u(&r, 8);
        const char *prefix = rd_str(&r);
        if (!r.bad && w->in_txn && strcmp(prefix, SRL_WAL_APPLYING_PREFIX) == 0) {
            w->skip_txn = true;
        } else if (!r.bad && w->in_txn && !w->skip_txn &&
                   strcmp(prefix, SRL_WAL_DELETE_PREFIX) == 0) {
            /* "<kind>\n<version>\n<key>" */
            uint32_t n = (uint32_t)rd_u(&r, 4);
            if (r.bad || (size_t)(r.end - r.p) < n || n >= sizeof(key) + 32)
                goto bad;
            char body[sizeof(key) + 32];
            memcpy(body, r.p, n);
            body[n] = '\0';
            char *nl1 = strchr(body, '\n'), *nl2 = nl1 ? strchr(nl1 + 1, '\n') : NULL;
            if (!nl2 || nl1 - body != 1 || body[0] < '0' || body[0] >= '0' + SRL_KIND_COUNT)
                goto bad;
            *nl1 = *nl2 = '\0';
            if (!*res && !(*res = new_result()))
                goto oom;
            rel_t del = {.kind = body[0] - '0'};
            if (!add_row(*res, &del, nl2 + 1, NULL) ||
                !PQsetvalue(*res, PQntuples(*res) - 1, COL_VERSION, nl1 + 1, (int)strlen(nl1 + 1)))
                goto oom;
        } else if (!r.bad && strcmp(prefix, SRL_WAL_MARK_PREFIX) == 0 && lsn > w->mark_lsn)
            w->mark_lsn = lsn;
        return SRL_STORE_OK;
    }
    case 'R':
        if (!decode_relation(w, &r, errstr, errstr_size))
            return SRL_STORE_FATAL;
        return SRL_STORE_OK;
    case 'D':
        /* Deletes, and the old key of an update that changed it, come as
         * 'sysrepl.delete' messages (above) with the version the deleting
         * transaction took (migration 007); row images are not used. */
        return SRL_STORE_OK;
    case 'I':
    case 'U': {
        rel_t *rel = find_rel(w, (uint32_t)rd_u(&r, 4));
        if (!rel) {
            snprintf(errstr, errstr_size, "replication stream: change of an undescribed relation");
            return SRL_STORE_FATAL;
        }
        tuple_t t = {0};
        char sub = (char)rd_u(&r, 1);
        if (sub == 'K' || sub == 'O') { /* an update's old row: skipped */
            if (!decode_tuple(&r, &t))
                goto bad;
            sub = (char)rd_u(&r, 1);
        }
        if (r.bad || sub != 'N' || !decode_tuple(&r, &t))
            goto bad;
        if (rel->kind < 0 || w->skip_txn)
            return SRL_STORE_OK;
        if (!*res && !(*res = new_result()))
            goto oom;
        if (!tuple_key(rel, &t, key, sizeof(key)))
            goto bad;
        if (!add_row(*res, rel, key, &t))
            goto oom;
        return SRL_STORE_OK;
    }
    default: /* T(runcate: refused by the tables' trigger), Y, O */
        return SRL_STORE_OK;
    }
    return r.bad ? SRL_STORE_FATAL : SRL_STORE_OK;
bad:
    snprintf(errstr, errstr_size, "replication stream: malformed '%c' message", m[0]);
    return SRL_STORE_FATAL;
oom:
    snprintf(errstr, errstr_size, "out of memory decoding the replication stream");
    return SRL_STORE_FATAL;
}

srl_store_rc_t srl_wal_read(srl_wal_t *w, int limit, PGresult **res, uint64_t *commit_lsn,
                            char *errstr, size_t errstr_size)
{
    *res = NULL;
    *commit_lsn = 0;
    if (!PQconsumeInput(w->conn))
        return conn_error(w->conn, NULL, "reading the replication stream", errstr, errstr_size);
    for (;;) {
        if (*res && PQntuples(*res) >= limit)
            break;
        char *buf = NULL;
        int n = PQgetCopyData(w->conn, &buf, 1);
        if (n == 0 && w->in_txn) {
            /* The rest of the transaction is on its way (the server sends
             * one at commit, back to back): a batch ends between
             * transactions unless it is full, so a key changed several
             * times in one transaction is published once. */
            struct pollfd pfd = {.fd = PQsocket(w->conn), .events = POLLIN};
            if (poll(&pfd, 1, 200) > 0 && PQconsumeInput(w->conn))
                continue;
        }
        if (n == 0)
            break;
        if (n < 0) {
            PGresult *r = PQgetResult(w->conn);
            srl_store_rc_t rc = conn_error(w->conn, r, "reading the replication stream", errstr,
                                           errstr_size);
            PQclear(r);
            if (rc == SRL_STORE_OK) {
                snprintf(errstr, errstr_size, "the server ended the replication stream");
                rc = SRL_STORE_UNREACHABLE;
            }
            PQclear(*res);
            *res = NULL;
            return rc;
        }
        const unsigned char *m = (const unsigned char *)buf;
        srl_store_rc_t rc = SRL_STORE_OK;
        if (m[0] == 'k' && n >= 18) {
            rd_t r = {m + 1, m + n, false};
            uint64_t end = rd_u(&r, 8);
            if (end > w->sent_lsn)
                w->sent_lsn = end;
            rd_u(&r, 8);
            if (rd_u(&r, 1))
                w->confirmed_at_ms = 0; /* reply now (the caller confirms) */
        } else if (m[0] == 'w' && n >= 25) {
            rd_t r = {m + 1, m + n, false};
            rd_u(&r, 8);
            uint64_t end = rd_u(&r, 8);
            if (end > w->sent_lsn)
                w->sent_lsn = end;
            rc = decode_message(w, m + 25, (size_t)n - 25, res, errstr, errstr_size);
        }
        PQfreemem(buf);
        if (rc != SRL_STORE_OK) {
            PQclear(*res);
            *res = NULL;
            return rc;
        }
    }
    *commit_lsn = w->last_commit_end;
    return SRL_STORE_OK;
}

/* ------------------------------------------------------------------ */
/* completing a result on the work session                              */

static srl_store_rc_t exec_params(PGconn *conn, const char *sql, int n, const char *const *params,
                                  PGresult **out, const char *what, char *errstr,
                                  size_t errstr_size)
{
    PGresult *res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        srl_store_rc_t rc = conn_error(conn, res, what, errstr, errstr_size);
        PQclear(res);
        return rc == SRL_STORE_OK ? SRL_STORE_FATAL : rc;
    }
    *out = res;
    return SRL_STORE_OK;
}

/* A row sent without its unchanged TOASTed values: those from the table,
 * or nothing when the key is gone (the later delete publishes it). */
static srl_store_rc_t fill_unchanged(PGconn *conn, PGresult *res, int row, char *errstr,
                                     size_t errstr_size)
{
    static const char *const sql[SRL_KIND_COUNT] = {
        "SELECT " SRL_ROWS_TYPE_COLS("x") " FROM assessment_types x WHERE x.name = $1",
        "SELECT " SRL_ROWS_ASSESSMENT_COLS(
            "x") " FROM vulnerability_assessments x WHERE x.key = $1",
        "SELECT " SRL_ROWS_POLICY_COLS("x") " FROM policies x WHERE x.name = $1",
    };
    int kind = atoi(PQgetvalue(res, row, COL_KIND));
    if (kind < 0 || kind >= SRL_KIND_COUNT) {
        snprintf(errstr, errstr_size, "bad kind in a decoded row");
        return SRL_STORE_FATAL;
    }
    const char *params[1] = {PQgetvalue(res, row, COL_KEY)};
    PGresult *cur;
    srl_store_rc_t rc = exec_params(conn, sql[kind], 1, params, &cur,
                                    "reading a row the WAL sent without its TOASTed values", errstr,
                                    errstr_size);
    if (rc != SRL_STORE_OK)
        return rc;
    int col0 = kind_col0[kind];
    int n = srl_rows_ncols((srl_kind_t)kind);
    bool ok = PQsetvalue(res, row, COL_DELETED, "f", 1);
    if (PQntuples(cur) != 1) {
        ok = ok && PQsetvalue(res, row, col0, NULL, -1); /* superseded */
    } else {
        /* The columns the WAL left out (and NULLs) from the table: the
         * unchanged ones are equal there unless a later change, which is
         * published after this record, changed them. */
        for (int i = 1; i < n && ok; i++)
            if (PQgetisnull(res, row, col0 + i) && !PQgetisnull(cur, 0, i))
                ok = PQsetvalue(res, row, col0 + i, PQgetvalue(cur, 0, i), PQgetlength(cur, 0, i));
    }
    PQclear(cur);
    if (!ok) {
        snprintf(errstr, errstr_size, "out of memory completing a decoded row");
        return SRL_STORE_FATAL;
    }
    return SRL_STORE_OK;
}

/* FNV-1a of a row's kind and key. */
static uint64_t row_hash(const PGresult *res, int row)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = PQgetvalue(res, row, COL_KIND); *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h = (h ^ '|') * 1099511628211ULL;
    for (const char *p = PQgetvalue(res, row, COL_KEY); *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return h;
}

static bool same_key(const PGresult *res, int a, int b)
{
    return strcmp(PQgetvalue(res, a, COL_KIND), PQgetvalue(res, b, COL_KIND)) == 0 &&
           strcmp(PQgetvalue(res, a, COL_KEY), PQgetvalue(res, b, COL_KEY)) == 0;
}

/* Only a key's last change in a result is published (the topics are
 * compacted and spokes keep the highest version: the earlier ones would be
 * overwritten anyway): every earlier row of the key becomes an upsert that
 * is not present, which the batch builder counts as superseded. */
static bool supersede_earlier(PGresult *res)
{
    int n = PQntuples(res);
    size_t cap = 16;
    while (cap < (size_t)n * 2)
        cap *= 2;
    int *slots = malloc(cap * sizeof(int));
    if (!slots)
        return false;
    for (size_t i = 0; i < cap; i++)
        slots[i] = -1;
    bool ok = true;
    for (int i = n - 1; i >= 0 && ok; i--) {
        size_t h = (size_t)row_hash(res, i) & (cap - 1);
        bool later = false;
        while (slots[h] >= 0) {
            if (same_key(res, slots[h], i)) {
                later = true;
                break;
            }
            h = (h + 1) & (cap - 1);
        }
        if (!later) {
            slots[h] = i;
            continue;
        }
        int col0 = kind_col0[atoi(PQgetvalue(res, i, COL_KIND))];
        ok = PQsetvalue(res, i, COL_DELETED, "f", 1) && PQsetvalue(res, i, col0, NULL, -1);
        if (ok && PQgetisnull(res, i, COL_VERSION))
            ok = PQsetvalue(res, i, COL_VERSION, "0", 1);
    }
    free(slots);
    return ok;
}

srl_store_rc_t srl_wal_complete(PGconn *conn, PGresult *res, char *errstr, size_t errstr_size)
{
    if (!supersede_earlier(res)) {
        snprintf(errstr, errstr_size, "out of memory completing decoded rows");
        return SRL_STORE_FATAL;
    }
    int n = PQntuples(res);
    for (int i = 0; i < n; i++)
        if (PQgetvalue(res, i, COL_DELETED)[0] == 'u') {
            srl_store_rc_t rc = fill_unchanged(conn, res, i, errstr, errstr_size);
            if (rc != SRL_STORE_OK)
                return rc;
        }
    return SRL_STORE_OK;
}

bool srl_wal_parse_lsn(const char *s, uint64_t *out)
{
    return parse_lsn(s, out);
}
