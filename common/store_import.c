/*
 * store_import.c - bulk import in one transaction, with bounded memory.
 *
 * Assessments (the many) stream to the server as they are added; types and
 * policies (the few) are kept as JSON text and upserted at the end. The
 * assessments table is locked against other writers for the import (SHARE
 * ROW EXCLUSIVE: readers go on), which makes two paths safe:
 *
 *  - direct: the table was empty when locked. Every key not seen before in
 *    this import is COPYed straight into vulnerability_assessments, stamped
 *    by us (sysrepl.stamped, see 001_init.sql): origin and the
 *    transaction's time in the data, the version from the column's default
 *    (nextval). The statement capture trigger writes the outbox when the
 *    COPY ends. This runs at nearly the speed of a raw COPY.
 *  - staging: rows whose key was seen before (the same key twice: the last
 *    line wins), or all rows when the table held data, go through COPY into
 *    a temporary table, in chunks, and then INSERT .. ON CONFLICT DO UPDATE
 *    (an identical row is left alone). A chunk's INSERT runs on the server
 *    while the caller parses the next chunk.
 *
 * Memory: 12 bytes per assessment (a 64-bit key hash and the line that
 * gave it, to find and name duplicates), one staging chunk (8 MB), and
 * one record per duplicate. A hash match between different keys (odds
 * ~1e-8 for a million keys) only sends a row the staging way and reports
 * a duplicate that is not one; no row is lost.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sysrepl/buf.h"
#include "sysrepl/keys.h"
#include "store_private.h"

#define CHUNK_BYTES (8u << 20)  /* staging rows buffered before a COPY */
#define SEND_BYTES (256u << 10) /* direct rows buffered before PQputCopyData */
#define COPY_PIECE (64u << 10)

typedef struct doc_entry {
    char *key;
    char *doc; /* JSON form */
    long line;
} doc_entry_t;

typedef struct doc_list {
    doc_entry_t *items;
    size_t count, cap;
} doc_list_t;

typedef struct name_entry {
    char *name;
    long line; /* first line naming it (pending list) */
} name_entry_t;

typedef struct name_list {
    name_entry_t *items;
    size_t count, cap;
} name_list_t;

/* A key seen again: its previous line and this one. */
typedef struct dup_record {
    char *key;
    long earlier, later;
} dup_record_t;

/* Part of the set of assessment key hashes: open addressing, linear
 * probing, 0 = an empty slot; lines[i] is the last line of hashes[i]. */
#define HASH_PART_BITS 4
typedef struct hash_part {
    uint64_t *hashes;
    uint32_t *lines;
    size_t cap, count;
} hash_part_t;

struct srl_store_import {
    srl_store_t *st;
    char origin[128];                       /* this instance's id, stamped on every row */
    bool started;                           /* lock taken and path chosen (first assessment) */
    bool direct;                            /* the table was empty: new keys go straight in */
    char changed_at[24];                    /* sysrepl.sysrepl_now_ms() of this transaction */
    bool in_copy;                           /* a direct COPY is open */
    srl_buf_t send;                         /* direct rows not yet handed to libpq */
    bool staging;                           /* the staging table exists */
    bool insert_running;                    /* a staging chunk's INSERT runs on the server */
    srl_buf_t chunk;                        /* staging rows of the chunk being filled */
    size_t chunk_dups;                      /* dups[chunk_dups..] were added to this chunk */
    doc_list_t docs[SRL_KIND_COUNT];        /* types and policies */
    name_list_t known_types;                /* in the store or in this import */
    name_list_t pending_types;              /* named by an assessment, not known yet */
    const char *last_type_ok;               /* cache: the last name found known */
    hash_part_t parts[1 << HASH_PART_BITS]; /* assessment keys seen */
    dup_record_t *dups;
    size_t dup_count, dup_cap;
    srl_store_import_stats_t stats;
};

/* ------------------------------------------------------------------ */
/* small containers                                                     */

static bool grow(void **items, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return true;
    size_t n = *cap ? *cap * 2 : 16;
    while (n < need)
        n *= 2;
    void *p = realloc(*items, n * size);
    if (!p)
        return false;
    *items = p;
    *cap = n;
    return true;
}

static bool name_add(name_list_t *l, const char *name, long line)
{
    if (!grow((void **)&l->items, &l->cap, l->count + 1, sizeof(*l->items)))
        return false;
    char *copy = strdup(name);
    if (!copy)
        return false;
    l->items[l->count++] = (name_entry_t){copy, line};
    /* cppcheck-suppress memleak ; the list owns copy now (freed with the list) */
    return true;
}

static const name_entry_t *name_find(const name_list_t *l, const char *name)
{
    for (size_t i = 0; i < l->count; i++)
        if (strcasecmp(l->items[i].name, name) == 0)
            return &l->items[i];
    return NULL;
}

static void name_list_free(name_list_t *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->items[i].name);
    free(l->items);
    memset(l, 0, sizeof(*l));
}

static void doc_list_free(doc_list_t *l)
{
    for (size_t i = 0; i < l->count; i++) {
        free(l->items[i].key);
        free(l->items[i].doc);
    }
    free(l->items);
    memset(l, 0, sizeof(*l));
}

/* FNV-1a, then a finaliser so the low bits (the slot) mix well. */
static uint64_t key_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h ? h : 1;
}

static uint32_t line32(long line)
{
    return line < 0 ? 0 : line > (long)UINT32_MAX ? UINT32_MAX : (uint32_t)line;
}

/* Record h at line. Returns 1 if new, 0 if seen before (*prev_line: the
 * line that gave it last; the slot now holds line), -1 when out of memory.
 * The set is split in HASH_PARTS tables by the top bits of h, each grown on
 * its own: while one part rehashes, old and new copies of only that part
 * coexist (one big table would need 1.5x its size at every doubling). */
static int hash_insert(srl_store_import_t *imp, uint64_t h, long line, long *prev_line)
{
    hash_part_t *p = &imp->parts[h >> (64 - HASH_PART_BITS)];
    if ((p->count + 1) * 2 > p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 4096;
        uint64_t *t = calloc(cap, sizeof(*t));
        uint32_t *l = malloc(cap * sizeof(*l));
        if (!t || !l) {
            free(t);
            free(l);
            return -1;
        }
        for (size_t i = 0; i < p->cap; i++) {
            uint64_t v = p->hashes[i];
            if (!v)
                continue;
            size_t j = v & (cap - 1);
            while (t[j])
                j = (j + 1) & (cap - 1);
            t[j] = v;
            l[j] = p->lines[i];
        }
        free(p->hashes);
        free(p->lines);
        p->hashes = t;
        p->lines = l;
        p->cap = cap;
    }
    size_t j = h & (p->cap - 1);
    while (p->hashes[j]) {
        if (p->hashes[j] == h) {
            *prev_line = p->lines[j];
            p->lines[j] = line32(line);
            return 0;
        }
        j = (j + 1) & (p->cap - 1);
    }
    p->hashes[j] = h;
    p->lines[j] = line32(line);
    p->count++;
    return 1;
}

/* ------------------------------------------------------------------ */
/* COPY text                                                            */

/* Append one row: the fields in order, NULL for \N. */
static bool put_row(srl_buf_t *b, const char *const *fields, int n)
{
    for (int i = 0; i < n; i++)
        if (!srl_copy_field(b, fields[i], fields[i] ? strlen(fields[i]) : 0,
                            i + 1 < n ? '\t' : '\n'))
            return false;
    return true;
}

/* Send [p, p + len) on the open COPY, in pieces so libpq's output buffer
 * stays small. */
static srl_store_rc_t send_copy_data(srl_store_import_t *imp, const char *p, size_t len,
                                     char *errstr, size_t errstr_size)
{
    for (size_t off = 0; off < len;) {
        size_t n = len - off < COPY_PIECE ? len - off : COPY_PIECE;
        if (PQputCopyData(imp->st->conn, p + off, (int)n) != 1)
            return srl_store_classify(imp->st->conn, NULL, "import: sending rows", errstr,
                                      errstr_size);
        off += n;
    }
    return SRL_STORE_OK;
}

/* End the open COPY (abort_reason NULL: normally) and collect its result;
 * rows it wrote count as changed when changed is not NULL. */
static srl_store_rc_t end_copy(srl_store_import_t *imp, const char *abort_reason, int64_t *changed,
                               char *errstr, size_t errstr_size)
{
    srl_store_rc_t rc = SRL_STORE_OK;
    if (PQputCopyEnd(imp->st->conn, abort_reason) != 1)
        rc = srl_store_classify(imp->st->conn, NULL, "import: ending COPY", errstr, errstr_size);
    PGresult *res;
    while ((res = PQgetResult(imp->st->conn)) != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            if (rc == SRL_STORE_OK && !abort_reason)
                rc = srl_store_classify(imp->st->conn, res, "import: COPY", errstr, errstr_size);
        } else if (changed) {
            *changed += strtoll(PQcmdTuples(res), NULL, 10);
        }
        PQclear(res);
    }
    return rc;
}

static srl_store_rc_t begin_copy(srl_store_import_t *imp, const char *sql, char *errstr,
                                 size_t errstr_size)
{
    PGresult *res = PQexec(imp->st->conn, sql);
    srl_store_rc_t rc = SRL_STORE_OK;
    if (PQresultStatus(res) != PGRES_COPY_IN)
        rc = srl_store_classify(imp->st->conn, res, "import: starting COPY", errstr, errstr_size);
    PQclear(res);
    return rc;
}

/* ------------------------------------------------------------------ */
/* the direct path                                                      */

/* Flush buffered direct rows and close the COPY (its capture trigger runs
 * now), so the connection can run other statements. */
static srl_store_rc_t close_direct(srl_store_import_t *imp, char *errstr, size_t errstr_size)
{
    if (!imp->in_copy)
        return SRL_STORE_OK;
    srl_store_rc_t rc = send_copy_data(imp, imp->send.data, imp->send.len, errstr, errstr_size);
    imp->send.len = 0;
    imp->in_copy = false;
    srl_store_rc_t rc2 = end_copy(imp, rc == SRL_STORE_OK ? NULL : "import failed",
                                  &imp->stats.changed[SRL_KIND_ASSESSMENT], errstr, errstr_size);
    return rc != SRL_STORE_OK ? rc : rc2;
}

static srl_store_rc_t wait_insert(srl_store_import_t *imp, char *errstr, size_t errstr_size);

static srl_store_rc_t add_direct(srl_store_import_t *imp, const char *const *cols, char *errstr,
                                 size_t errstr_size)
{
    srl_store_rc_t rc;
    if (!imp->in_copy) {
        /* version is left out: its default, nextval, is the stamp. */
        if ((rc = wait_insert(imp, errstr, errstr_size)) != SRL_STORE_OK ||
            (rc = begin_copy(imp,
                             "COPY vulnerability_assessments (" SRL__ASSESSMENT_COLUMNS
                             ", origin, changed_at) FROM STDIN",
                             errstr, errstr_size)) != SRL_STORE_OK)
            return rc;
        imp->in_copy = true;
    }
    const char *fields[SRL__ASSESSMENT_NCOLS + 2];
    memcpy(fields, cols, SRL__ASSESSMENT_NCOLS * sizeof(*fields));
    fields[SRL__ASSESSMENT_NCOLS] = imp->origin;
    fields[SRL__ASSESSMENT_NCOLS + 1] = imp->changed_at;
    if (!put_row(&imp->send, fields, SRL__ASSESSMENT_NCOLS + 2)) {
        srl__store_errf(errstr, errstr_size, "import: out of memory");
        return SRL_STORE_FATAL;
    }
    if (imp->send.len >= SEND_BYTES) {
        rc = send_copy_data(imp, imp->send.data, imp->send.len, errstr, errstr_size);
        imp->send.len = 0;
        return rc;
    }
    return SRL_STORE_OK;
}

/* ------------------------------------------------------------------ */
/* the staging path                                                     */

/* Wait for the INSERT of the previous staging chunk, if one is running. */
static srl_store_rc_t wait_insert(srl_store_import_t *imp, char *errstr, size_t errstr_size)
{
    srl_store_rc_t rc = SRL_STORE_OK;
    PGresult *res;
    if (!imp->insert_running)
        return SRL_STORE_OK;
    imp->insert_running = false;
    while ((res = PQgetResult(imp->st->conn)) != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            if (rc == SRL_STORE_OK)
                rc = srl_store_classify(imp->st->conn, res, "import: writing assessments", errstr,
                                        errstr_size);
        } else {
            imp->stats.changed[SRL_KIND_ASSESSMENT] += strtoll(PQcmdTuples(res), NULL, 10);
        }
        PQclear(res);
    }
    return rc;
}

/* dups[from..] keys as a text[] literal: {"k1","k2"} with \ and " escaped.
 * Malloc'd; NULL when out of memory. */
static char *dup_keys_literal(const srl_store_import_t *imp, size_t from)
{
    size_t size = 3;
    for (size_t i = from; i < imp->dup_count; i++)
        size += 2 * strlen(imp->dups[i].key) + 3;
    char *arr = malloc(size), *w = arr;
    if (!arr)
        return NULL;
    *w++ = '{';
    for (size_t i = from; i < imp->dup_count; i++) {
        if (i > from)
            *w++ = ',';
        *w++ = '"';
        for (const char *s = imp->dups[i].key; *s; s++) {
            if (*s == '"' || *s == '\\')
                *w++ = '\\';
            *w++ = *s;
        }
        *w++ = '"';
    }
    *w++ = '}';
    *w = '\0';
    return arr;
}

/* Inside one chunk a key may appear once (ON CONFLICT cannot touch a row
 * twice in a statement): keep its last line. Only keys seen before are
 * candidates, so this costs nothing without duplicates. */
static srl_store_rc_t drop_chunk_duplicates(srl_store_import_t *imp, char *errstr,
                                            size_t errstr_size)
{
    if (imp->chunk_dups == imp->dup_count)
        return SRL_STORE_OK;
    char *arr = dup_keys_literal(imp, imp->chunk_dups);
    if (!arr) {
        srl__store_errf(errstr, errstr_size, "import: out of memory");
        return SRL_STORE_FATAL;
    }
    const char *params[] = {arr};
    srl_store_rc_t rc = SRL_STORE_OK;
    PGresult *res = PQexecParams(imp->st->conn,
                                 "DELETE FROM srl_import_chunk i USING ("
                                 " SELECT key, max(line) AS last FROM srl_import_chunk"
                                 " WHERE key = ANY($1::text[]) GROUP BY key) d"
                                 " WHERE i.key = d.key AND i.line < d.last",
                                 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        rc = srl_store_classify(imp->st->conn, res, "import: dropping duplicates", errstr,
                                errstr_size);
    PQclear(res);
    free(arr);
    imp->chunk_dups = imp->dup_count;
    return rc;
}

/* Stamped by us (sysrepl.stamped): origin $1, a version from the sequence
 * (taken again under the row lock when the key exists) and the
 * transaction's time. A row identical to the stored one is left alone (no
 * new version, no outbox row). A missing assessed_at keeps the stored one,
 * or is now. */
static const char INSERT_ASSESSMENTS[] =
    "INSERT INTO vulnerability_assessments AS t (" SRL__ASSESSMENT_COLUMNS
    ", origin, version, changed_at)"
    " SELECT vulnerability_id, assessment_type, comment, scope_kind, scope_name,"
    "  package_name, package_version_range, expires_at, automatic, assessed_by,"
    "  coalesce(c.assessed_at, (SELECT v.assessed_at FROM vulnerability_assessments v"
    "                           WHERE v.key = c.key), sysrepl.sysrepl_now_ms()),"
    "  $1, nextval('sysrepl.sysrepl_version'), sysrepl.sysrepl_now_ms()"
    " FROM srl_import_chunk c"
    " ON CONFLICT (key) DO UPDATE SET " SRL__ASSESSMENT_UPDATE_SET
    ", origin = EXCLUDED.origin, version = nextval('sysrepl.sysrepl_version'),"
    " changed_at = EXCLUDED.changed_at"
    " WHERE (t.assessment_type, t.comment, t.package_name, t.package_version_range,"
    "        t.expires_at, t.automatic, t.assessed_by, t.assessed_at)"
    " IS DISTINCT FROM (EXCLUDED.assessment_type, EXCLUDED.comment, EXCLUDED.package_name,"
    "        EXCLUDED.package_version_range, EXCLUDED.expires_at, EXCLUDED.automatic,"
    "        EXCLUDED.assessed_by, EXCLUDED.assessed_at)";

/* Send the buffered staging chunk: stage the rows, drop duplicates inside
 * the chunk, and start its INSERT without waiting, so the caller parses on
 * while the server writes. A key repeated in a later chunk updates the row
 * again: the last line wins either way. */
static srl_store_rc_t ship_chunk(srl_store_import_t *imp, char *errstr, size_t errstr_size)
{
    srl_store_rc_t rc = close_direct(imp, errstr, errstr_size);
    if (rc == SRL_STORE_OK)
        rc = wait_insert(imp, errstr, errstr_size);
    if (rc != SRL_STORE_OK || imp->chunk.len == 0)
        return rc;
    if (!imp->staging) {
        rc = srl__store_exec(
            imp->st,
            "CREATE TEMP TABLE srl_import_chunk (line bigint, key text,"
            " vulnerability_id text, assessment_type text, comment text, scope_kind text,"
            " scope_name text, package_name text, package_version_range text,"
            " expires_at bigint, automatic boolean, assessed_by text, assessed_at bigint)"
            " ON COMMIT DROP",
            "import: creating the staging table", errstr, errstr_size);
        imp->staging = rc == SRL_STORE_OK;
    } else {
        rc = srl__store_exec(imp->st, "TRUNCATE srl_import_chunk", "import: staging", errstr,
                             errstr_size);
    }
    if (rc == SRL_STORE_OK)
        rc = begin_copy(imp,
                        "COPY srl_import_chunk (line, key, " SRL__ASSESSMENT_COLUMNS ") FROM STDIN",
                        errstr, errstr_size);
    if (rc != SRL_STORE_OK)
        return rc;
    rc = send_copy_data(imp, imp->chunk.data, imp->chunk.len, errstr, errstr_size);
    srl_store_rc_t rc2 = end_copy(imp, rc == SRL_STORE_OK ? NULL : "import failed", NULL, errstr,
                                  errstr_size);
    if (rc == SRL_STORE_OK)
        rc = rc2;
    if (rc == SRL_STORE_OK)
        rc = drop_chunk_duplicates(imp, errstr, errstr_size);
    if (rc != SRL_STORE_OK)
        return rc;
    imp->chunk.len = 0;
    if (imp->chunk.cap > CHUNK_BYTES * 2) { /* one huge row grew it: give it back */
        srl_buf_free(&imp->chunk);
    }
    const char *params[] = {imp->origin};
    if (!PQsendQueryParams(imp->st->conn, INSERT_ASSESSMENTS, 1, NULL, params, NULL, NULL, 0))
        return srl_store_classify(imp->st->conn, NULL, "import: writing assessments", errstr,
                                  errstr_size);
    imp->insert_running = true;
    return SRL_STORE_OK;
}

/* ------------------------------------------------------------------ */
/* begin / add                                                          */

srl_store_import_t *srl_store_import_begin(srl_store_t *st, srl_store_rc_t *rc, char *errstr,
                                           size_t errstr_size)
{
    srl_store_rc_t dummy;
    if (!rc)
        rc = &dummy;
    srl_store_import_t *imp = calloc(1, sizeof(*imp));
    if (!imp) {
        srl__store_errf(errstr, errstr_size, "import: out of memory");
        *rc = SRL_STORE_FATAL;
        return NULL;
    }
    imp->st = st;
    *rc = srl__store_exec(st, "BEGIN", "import: BEGIN", errstr, errstr_size);
    if (*rc != SRL_STORE_OK)
        goto fail;
    srl_store_settings_t settings;
    *rc = srl_store_get_settings(st, &settings, errstr, errstr_size);
    if (*rc != SRL_STORE_OK)
        goto fail;
    if (!settings.instance_id[0]) {
        srl__store_errf(errstr, errstr_size, "store has no instance id (run sysrepl init)");
        *rc = SRL_STORE_VERSION;
        goto fail;
    }
    snprintf(imp->origin, sizeof(imp->origin), "%s", settings.instance_id);
    PGresult *res = PQexec(st->conn, "SELECT name FROM assessment_types");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        *rc = srl_store_classify(st->conn, res, "import: reading assessment types", errstr,
                                 errstr_size);
        PQclear(res);
        goto fail;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        if (!name_add(&imp->known_types, PQgetvalue(res, i, 0), 0)) {
            PQclear(res);
            srl__store_errf(errstr, errstr_size, "import: out of memory");
            *rc = SRL_STORE_FATAL;
            goto fail;
        }
    }
    PQclear(res);
    return imp;
fail:
    srl_store_import_abort(imp);
    return NULL;
}

/* With the first assessment: lock the table and choose the path. */
static srl_store_rc_t start_assessments(srl_store_import_t *imp, char *errstr, size_t errstr_size)
{
    srl_store_rc_t rc =
        srl__store_exec(imp->st,
                        "LOCK TABLE vulnerability_assessments IN SHARE ROW EXCLUSIVE MODE;"
                        "SET LOCAL sysrepl.stamped = 'on'",
                        "import: locking vulnerability_assessments", errstr, errstr_size);
    if (rc != SRL_STORE_OK)
        return rc;
    PGresult *res = PQexec(imp->st->conn,
                           "SELECT NOT EXISTS (SELECT 1 FROM vulnerability_assessments),"
                           " sysrepl.sysrepl_now_ms()");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = srl_store_classify(imp->st->conn, res, "import: starting", errstr, errstr_size);
        PQclear(res);
        return rc;
    }
    imp->direct = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    snprintf(imp->changed_at, sizeof(imp->changed_at), "%s", PQgetvalue(res, 0, 1));
    PQclear(res);
    imp->started = true;
    return SRL_STORE_OK;
}

static srl_store_rc_t add_assessment(srl_store_import_t *imp, const srl_assessment_t *a,
                                     const char *key, long line, char *errstr, size_t errstr_size)
{
    srl_store_rc_t rc;
    /* Type names: known (cached), known, or pending until finish. */
    const char *type = a->assessment_type;
    if (!type || !type[0]) {
        srl__store_errf(errstr, errstr_size, "line %ld: assessment_type: required", line);
        return SRL_STORE_INVALID;
    }
    if (!imp->last_type_ok || strcmp(imp->last_type_ok, type) != 0) {
        const name_entry_t *k = name_find(&imp->known_types, type);
        if (k)
            imp->last_type_ok = k->name;
        else if (!name_find(&imp->pending_types, type) &&
                 !name_add(&imp->pending_types, type, line))
            goto oom;
        /* The cache holds the stored spelling; a different case of the same
         * name misses it and takes the slow path, still correct. */
    }
    if (!imp->started && (rc = start_assessments(imp, errstr, errstr_size)) != SRL_STORE_OK)
        return rc;

    long prev = 0;
    int fresh = hash_insert(imp, key_hash(key), line, &prev);
    if (fresh < 0)
        goto oom;
    if (fresh == 0) {
        if (!grow((void **)&imp->dups, &imp->dup_cap, imp->dup_count + 1, sizeof(*imp->dups)))
            goto oom;
        dup_record_t *d = &imp->dups[imp->dup_count];
        if (!(d->key = strdup(key)))
            goto oom;
        d->earlier = prev;
        d->later = line;
        imp->dup_count++;
    }

    char bufs[3][24];
    const char *cols[SRL__ASSESSMENT_NCOLS];
    srl__store_assessment_params(a, bufs, cols);
    if (fresh && imp->direct) {
        /* Direct rows need assessed_at now: nothing to keep in a new row. */
        if (!cols[10])
            cols[10] = imp->changed_at;
        return add_direct(imp, cols, errstr, errstr_size);
    }
    char linebuf[24];
    snprintf(linebuf, sizeof(linebuf), "%ld", line);
    const char *fields[SRL__ASSESSMENT_NCOLS + 2] = {linebuf, key};
    memcpy(fields + 2, cols, sizeof(cols));
    if (!put_row(&imp->chunk, fields, SRL__ASSESSMENT_NCOLS + 2))
        goto oom;
    if (imp->chunk.len >= CHUNK_BYTES)
        return ship_chunk(imp, errstr, errstr_size);
    return SRL_STORE_OK;
oom:
    srl__store_errf(errstr, errstr_size, "import: out of memory");
    return SRL_STORE_FATAL;
}

srl_store_rc_t srl_store_import_add(srl_store_import_t *imp, const srl_entity_t *e, long line,
                                    char *errstr, size_t errstr_size)
{
    char keybuf[512];
    char *key = keybuf;
    srl_store_rc_t rc = SRL_STORE_OK;
    /* cppcheck-suppress redundantInitialization ; key stays keybuf when the build fits */
    if (srl_key_build(e, keybuf, sizeof(keybuf)) < 0 && !(key = srl_key_dup(e))) {
        srl__store_errf(errstr, errstr_size, "line %ld: %s: a key field is missing", line,
                        srl_kind_name(e->kind));
        return SRL_STORE_INVALID;
    }
    imp->stats.read[e->kind]++;
    if (e->kind == SRL_KIND_ASSESSMENT) {
        rc = add_assessment(imp, &e->u.assessment, key, line, errstr, errstr_size);
        goto cleanup;
    }
    doc_list_t *l = &imp->docs[e->kind];
    char why[256];
    char *doc = srl__store_doc(e, why, sizeof(why));
    char *kcopy = strdup(key);
    if (!doc || !kcopy || !grow((void **)&l->items, &l->cap, l->count + 1, sizeof(*l->items)) ||
        (e->kind == SRL_KIND_ASSESSMENT_TYPE && !name_find(&imp->known_types, key) &&
         !name_add(&imp->known_types, key, line))) {
        free(doc);
        free(kcopy);
        srl__store_errf(errstr, errstr_size, "line %ld: %s", line, doc ? "out of memory" : why);
        rc = doc ? SRL_STORE_FATAL : SRL_STORE_INVALID;
        goto cleanup;
    }
    l->items[l->count++] = (doc_entry_t){kcopy, doc, line};
cleanup:
    if (key != keybuf)
        free(key);
    return rc;
}

/* ------------------------------------------------------------------ */
/* finish                                                               */

/* Types and policies: the last line of a key wins (type names compare
 * case-insensitively), earlier ones are reported. */
static srl_store_rc_t write_docs(srl_store_import_t *imp, srl_kind_t kind,
                                 srl_store_duplicate_cb on_dup, void *arg, char *errstr,
                                 size_t errstr_size)
{
    doc_list_t *l = &imp->docs[kind];
    for (size_t i = 0; i < l->count; i++) {
        size_t winner = i;
        for (size_t j = i + 1; j < l->count; j++) {
            bool same = kind == SRL_KIND_ASSESSMENT_TYPE
                            ? strcasecmp(l->items[j].key, l->items[i].key) == 0
                            : strcmp(l->items[j].key, l->items[i].key) == 0;
            if (same)
                winner = j;
        }
        if (winner != i) {
            imp->stats.duplicates++;
            if (on_dup)
                on_dup(arg, kind, l->items[i].key, l->items[i].line, l->items[winner].line);
            continue;
        }
        bool changed = false;
        srl_store_rc_t rc = srl__store_put_doc(imp->st, kind, l->items[i].doc, l->items[i].key,
                                               &changed, errstr, errstr_size);
        if (rc != SRL_STORE_OK) {
            char msg[512];
            snprintf(msg, sizeof(msg), "%s", errstr ? errstr : "");
            srl__store_errf(errstr, errstr_size, "line %ld: %s", l->items[i].line, msg);
            return rc;
        }
        imp->stats.changed[kind] += changed;
    }
    return SRL_STORE_OK;
}

/* Every type name an assessment gave must exist now. */
static srl_store_rc_t check_pending_types(srl_store_import_t *imp, char *errstr, size_t errstr_size)
{
    const name_entry_t *first = NULL;
    size_t missing = 0;
    for (size_t i = 0; i < imp->pending_types.count; i++) {
        const name_entry_t *p = &imp->pending_types.items[i];
        if (name_find(&imp->known_types, p->name))
            continue;
        /* lower() in the store may fold more than strcasecmp (non-ASCII). */
        bool exists = false;
        srl_store_rc_t rc = srl__store_type_exists(imp->st, p->name, &exists, errstr, errstr_size);
        if (rc != SRL_STORE_OK)
            return rc;
        if (exists)
            continue;
        missing++;
        if (!first || p->line < first->line)
            first = p;
    }
    if (!first)
        return SRL_STORE_OK;
    if (missing == 1)
        srl__store_errf(errstr, errstr_size,
                        "line %ld: assessment_type: no assessment type named \"%s\"", first->line,
                        first->name);
    else
        srl__store_errf(errstr, errstr_size,
                        "line %ld: assessment_type: no assessment type named \"%s\" "
                        "(and %zu more unknown type names)",
                        first->line, first->name, missing - 1);
    return SRL_STORE_INVALID;
}

static int dup_by_key_then_later(const void *a, const void *b)
{
    const dup_record_t *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->later > y->later) - (x->later < y->later);
}

static int dup_by_earlier(const void *a, const void *b)
{
    const dup_record_t *x = a, *y = b;
    return (x->earlier > y->earlier) - (x->earlier < y->earlier);
}

/* Name every superseded line of an assessment key with the line that won
 * (the key's last), in the order of the superseded lines. */
static void report_duplicates(srl_store_import_t *imp, srl_store_duplicate_cb on_dup, void *arg)
{
    if (imp->dup_count == 0)
        return;
    qsort(imp->dups, imp->dup_count, sizeof(*imp->dups), dup_by_key_then_later);
    /* The winner of a key is the later line of its last record; store it
     * in every record of the key (as "later"). */
    for (size_t i = imp->dup_count; i-- > 0;) {
        if (i + 1 < imp->dup_count && strcmp(imp->dups[i].key, imp->dups[i + 1].key) == 0)
            imp->dups[i].later = imp->dups[i + 1].later;
    }
    qsort(imp->dups, imp->dup_count, sizeof(*imp->dups), dup_by_earlier);
    for (size_t i = 0; i < imp->dup_count; i++) {
        imp->stats.duplicates++;
        if (on_dup)
            on_dup(arg, SRL_KIND_ASSESSMENT, imp->dups[i].key, imp->dups[i].earlier,
                   imp->dups[i].later);
    }
}

srl_store_rc_t srl_store_import_finish(srl_store_import_t *imp, srl_store_duplicate_cb on_dup,
                                       void *arg, srl_store_import_stats_t *stats, char *errstr,
                                       size_t errstr_size)
{
    srl_store_rc_t rc = ship_chunk(imp, errstr, errstr_size);
    if (rc == SRL_STORE_OK)
        rc = wait_insert(imp, errstr, errstr_size);
    /* Types and policies go through the stamping trigger. */
    if (rc == SRL_STORE_OK && imp->started)
        rc = srl__store_exec(imp->st, "SET LOCAL sysrepl.stamped = 'off'", "import", errstr,
                             errstr_size);
    if (rc == SRL_STORE_OK)
        rc = write_docs(imp, SRL_KIND_ASSESSMENT_TYPE, on_dup, arg, errstr, errstr_size);
    if (rc == SRL_STORE_OK)
        rc = write_docs(imp, SRL_KIND_POLICY, on_dup, arg, errstr, errstr_size);
    if (rc == SRL_STORE_OK)
        rc = check_pending_types(imp, errstr, errstr_size);
    if (rc == SRL_STORE_OK) {
        report_duplicates(imp, on_dup, arg);
        rc = srl__store_exec(imp->st, "COMMIT", "import: COMMIT", errstr, errstr_size);
    }
    if (stats)
        *stats = imp->stats;
    srl_store_import_abort(imp); /* rolls back if the COMMIT did not happen */
    return rc;
}

void srl_store_import_abort(srl_store_import_t *imp)
{
    if (!imp)
        return;
    char ignored[256];
    if (imp->in_copy) {
        imp->in_copy = false;
        end_copy(imp, "import aborted", NULL, ignored, sizeof(ignored));
    }
    if (imp->insert_running) {
        /* Nothing of it will be kept: stop it rather than wait. */
        PGcancel *cancel = PQgetCancel(imp->st->conn);
        if (cancel) {
            PQcancel(cancel, ignored, sizeof(ignored));
            PQfreeCancel(cancel);
        }
        wait_insert(imp, ignored, sizeof(ignored));
    }
    srl__store_rollback(imp->st);
    for (int k = 0; k < SRL_KIND_COUNT; k++)
        doc_list_free(&imp->docs[k]);
    name_list_free(&imp->known_types);
    name_list_free(&imp->pending_types);
    for (size_t i = 0; i < imp->dup_count; i++)
        free(imp->dups[i].key);
    free(imp->dups);
    for (size_t i = 0; i < sizeof(imp->parts) / sizeof(imp->parts[0]); i++) {
        free(imp->parts[i].hashes);
        free(imp->parts[i].lines);
    }
    srl_buf_free(&imp->send);
    srl_buf_free(&imp->chunk);
    free(imp);
}
