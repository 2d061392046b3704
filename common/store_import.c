/*
 * store_import.c - bulk import in one transaction, with bounded memory.
 *
 * Assessments stream through COPY into a temporary table as they are added
 * and reach the content table with one INSERT .. SELECT .. ON CONFLICT, so
 * the capture triggers fire per statement and PostgreSQL does the work in
 * bulk (COPY + INSERT..SELECT measured ~10x faster than one upsert per
 * round trip). Types and policies are few: they are kept as JSON text and
 * upserted one by one at the end, before the assessments that name them.
 *
 * Memory per assessment: 8 bytes of key hash (duplicate detection) and, for
 * a type name not yet known, one pending entry per distinct name.
 * Duplicate keys are confirmed in the database (a hash match is only a
 * suspicion), the earlier lines dropped and reported.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sysrepl/keys.h"
#include "store_private.h"

/* Rows are sent in chunks of about this many bytes of COPY text: the
 * client parses one chunk while the server writes the previous one, and
 * memory stays at one chunk. */
#define CHUNK_BYTES (8u << 20)
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

struct srl_store_import {
    srl_store_t *st;
    bool staging;        /* the staging tables exist */
    bool insert_running; /* a chunk's INSERT is running on the server */
    char *buf;           /* COPY text of the chunk being filled */
    size_t len, cap;
    doc_list_t docs[SRL_KIND_COUNT]; /* types and policies */
    name_list_t known_types;         /* in the store or in this import */
    name_list_t pending_types;       /* named by an assessment, not known yet */
    const char *last_type_ok;        /* cache: the last name found known */
    /* open-addressing set of assessment key hashes (0 = empty slot) */
    uint64_t *hashes;
    size_t hash_cap, hash_count;
    char **suspects; /* keys whose hash was seen before */
    size_t suspect_count, suspect_cap;
    size_t chunk_suspects; /* suspects[chunk_suspects..] came in this chunk */
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

/* Insert h; returns 1 if new, 0 if already there, -1 when out of memory. */
static int hash_insert(srl_store_import_t *imp, uint64_t h)
{
    if ((imp->hash_count + 1) * 2 > imp->hash_cap) {
        size_t cap = imp->hash_cap ? imp->hash_cap * 2 : 65536;
        uint64_t *t = calloc(cap, sizeof(*t));
        if (!t)
            return -1;
        for (size_t i = 0; i < imp->hash_cap; i++) {
            uint64_t v = imp->hashes[i];
            if (!v)
                continue;
            size_t j = v & (cap - 1);
            while (t[j])
                j = (j + 1) & (cap - 1);
            t[j] = v;
        }
        free(imp->hashes);
        imp->hashes = t;
        imp->hash_cap = cap;
    }
    size_t j = h & (imp->hash_cap - 1);
    while (imp->hashes[j]) {
        if (imp->hashes[j] == h)
            return 0;
        j = (j + 1) & (imp->hash_cap - 1);
    }
    imp->hashes[j] = h;
    imp->hash_count++;
    return 1;
}

/* ------------------------------------------------------------------ */
/* chunks                                                               */

/* Room for n more bytes in the chunk buffer. */
static srl_store_rc_t reserve(srl_store_import_t *imp, size_t n, char *errstr,
                              size_t errstr_size)
{
    if (imp->len + n <= imp->cap)
        return SRL_STORE_OK;
    size_t cap = imp->cap ? imp->cap : 65536;
    while (cap < imp->len + n)
        cap *= 2;
    char *p = realloc(imp->buf, cap);
    if (!p) {
        srl__store_errf(errstr, errstr_size, "import: out of memory");
        return SRL_STORE_FATAL;
    }
    imp->buf = p;
    imp->cap = cap;
    return SRL_STORE_OK;
}

/* Append a field in COPY text format; the worst case (every byte escaped)
 * was reserved by the caller. */
static void put_field(srl_store_import_t *imp, const char *s, char sep)
{
    char *w = imp->buf + imp->len;
    if (!s) {
        *w++ = '\\';
        *w++ = 'N';
    } else {
        for (; *s; s++) {
            switch (*s) {
            case '\\': *w++ = '\\'; *w++ = '\\'; break;
            case '\t': *w++ = '\\'; *w++ = 't'; break;
            case '\n': *w++ = '\\'; *w++ = 'n'; break;
            case '\r': *w++ = '\\'; *w++ = 'r'; break;
            default: *w++ = *s;
            }
        }
    }
    *w++ = sep;
    imp->len = (size_t)(w - imp->buf);
}

/* The staging tables, created with the first chunk: the chunk being
 * written (emptied for each chunk) and every (line, key) of the import,
 * kept to name both lines of a duplicate at the end. */
static srl_store_rc_t create_staging(srl_store_import_t *imp, char *errstr, size_t errstr_size)
{
    srl_store_rc_t rc = srl__store_exec(
        imp->st,
        "CREATE TEMP TABLE srl_import_chunk (line bigint, key text,"
        " vulnerability_id text, assessment_type text, comment text, scope_kind text,"
        " scope_name text, package_name text, package_version_range text,"
        " expires_at bigint, automatic boolean, assessed_by text, assessed_at bigint)"
        " ON COMMIT DROP;"
        "CREATE TEMP TABLE srl_import_keys (line bigint, key text) ON COMMIT DROP",
        "import: creating the staging tables", errstr, errstr_size);
    if (rc == SRL_STORE_OK)
        imp->staging = true;
    return rc;
}

/* Wait for the INSERT of the previous chunk, if one is running. */
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
                rc = srl_store_classify(imp->st->conn, res, "import: writing assessments",
                                        errstr, errstr_size);
        } else {
            imp->stats.changed[SRL_KIND_ASSESSMENT] += strtoll(PQcmdTuples(res), NULL, 10);
        }
        PQclear(res);
    }
    return rc;
}

/* COPY the chunk buffer into srl_import_chunk, in pieces so libpq's
 * output buffer stays small. */
static srl_store_rc_t copy_chunk(srl_store_import_t *imp, char *errstr, size_t errstr_size)
{
    srl_store_rc_t rc = SRL_STORE_OK;
    PGresult *res = PQexec(imp->st->conn,
                           "COPY srl_import_chunk (line, key, " SRL__ASSESSMENT_COLUMNS
                           ") FROM STDIN");
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        rc = srl_store_classify(imp->st->conn, res, "import: starting COPY", errstr,
                                errstr_size);
        PQclear(res);
        return rc;
    }
    PQclear(res);
    for (size_t off = 0; off < imp->len && rc == SRL_STORE_OK;) {
        size_t n = imp->len - off < COPY_PIECE ? imp->len - off : COPY_PIECE;
        if (PQputCopyData(imp->st->conn, imp->buf + off, (int)n) != 1)
            rc = srl_store_classify(imp->st->conn, NULL, "import: sending rows", errstr,
                                    errstr_size);
        off += n;
    }
    if (PQputCopyEnd(imp->st->conn, rc == SRL_STORE_OK ? NULL : "aborted") != 1 &&
        rc == SRL_STORE_OK)
        rc = srl_store_classify(imp->st->conn, NULL, "import: ending COPY", errstr, errstr_size);
    while ((res = PQgetResult(imp->st->conn)) != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK && rc == SRL_STORE_OK)
            rc = srl_store_classify(imp->st->conn, res, "import: COPY", errstr, errstr_size);
        PQclear(res);
    }
    return rc;
}

static srl_store_rc_t drop_chunk_duplicates(srl_store_import_t *imp, char *errstr,
                                            size_t errstr_size);

/* Compare every column the import writes, so an identical row is left
 * alone (no new version, no outbox row, no trigger call). */
static const char INSERT_ASSESSMENTS[] =
    "INSERT INTO vulnerability_assessments AS t (" SRL__ASSESSMENT_COLUMNS ")"
    " SELECT " SRL__ASSESSMENT_COLUMNS " FROM srl_import_chunk"
    " ON CONFLICT (key) DO UPDATE SET " SRL__ASSESSMENT_UPDATE_SET
    " WHERE (t.assessment_type, t.comment, t.package_name, t.package_version_range,"
    "        t.expires_at, t.automatic, t.assessed_by, t.assessed_at)"
    " IS DISTINCT FROM (EXCLUDED.assessment_type, EXCLUDED.comment, EXCLUDED.package_name,"
    "        EXCLUDED.package_version_range, EXCLUDED.expires_at, EXCLUDED.automatic,"
    "        EXCLUDED.assessed_by, EXCLUDED.assessed_at)";

/* Send the buffered chunk: wait for the previous INSERT, stage the rows,
 * drop duplicates inside the chunk, and start its INSERT without waiting,
 * so the caller parses the next chunk while the server writes this one.
 * A key repeated in a later chunk simply updates the row again: the last
 * line wins either way. */
static srl_store_rc_t ship_chunk(srl_store_import_t *imp, char *errstr, size_t errstr_size)
{
    srl_store_rc_t rc = wait_insert(imp, errstr, errstr_size);
    if (rc != SRL_STORE_OK || imp->len == 0)
        return rc;
    if (!imp->staging)
        rc = create_staging(imp, errstr, errstr_size);
    else
        rc = srl__store_exec(imp->st, "TRUNCATE srl_import_chunk", "import: staging", errstr,
                             errstr_size);
    if (rc == SRL_STORE_OK)
        rc = copy_chunk(imp, errstr, errstr_size);
    if (rc == SRL_STORE_OK)
        rc = srl__store_exec(imp->st,
                             "INSERT INTO srl_import_keys SELECT line, key FROM srl_import_chunk",
                             "import: staging", errstr, errstr_size);
    if (rc == SRL_STORE_OK)
        rc = drop_chunk_duplicates(imp, errstr, errstr_size);
    if (rc != SRL_STORE_OK)
        return rc;
    imp->len = 0;
    if (imp->cap > CHUNK_BYTES * 2) { /* one huge row grew it: give it back */
        free(imp->buf);
        imp->buf = NULL;
        imp->cap = 0;
    }
    if (!PQsendQuery(imp->st->conn, INSERT_ASSESSMENTS))
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

static srl_store_rc_t add_assessment(srl_store_import_t *imp, const srl_assessment_t *a,
                                     const char *key, long line, char *errstr,
                                     size_t errstr_size)
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

    int fresh = hash_insert(imp, key_hash(key));
    if (fresh < 0)
        goto oom;
    if (fresh == 0) {
        if (!grow((void **)&imp->suspects, &imp->suspect_cap, imp->suspect_count + 1,
                  sizeof(char *)) ||
            !(imp->suspects[imp->suspect_count] = strdup(key)))
            goto oom;
        imp->suspect_count++;
    }

    char bufs[3][24], linebuf[24];
    const char *params[SRL__ASSESSMENT_NCOLS];
    srl__store_assessment_params(a, bufs, params);
    snprintf(linebuf, sizeof(linebuf), "%ld", line);
    size_t need = 2 * strlen(key) + strlen(linebuf) + 4;
    for (int i = 0; i < SRL__ASSESSMENT_NCOLS; i++)
        need += (params[i] ? 2 * strlen(params[i]) : 2) + 1;
    if ((rc = reserve(imp, need, errstr, errstr_size)) != SRL_STORE_OK)
        return rc;
    put_field(imp, linebuf, '\t');
    put_field(imp, key, '\t');
    for (int i = 0; i < SRL__ASSESSMENT_NCOLS; i++)
        put_field(imp, params[i], i + 1 < SRL__ASSESSMENT_NCOLS ? '\t' : '\n');
    if (imp->len >= CHUNK_BYTES)
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
    imp->last_type_ok = NULL; /* known_types may have moved */
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
static srl_store_rc_t check_pending_types(srl_store_import_t *imp, char *errstr,
                                          size_t errstr_size)
{
    const name_entry_t *first = NULL;
    size_t missing = 0;
    for (size_t i = 0; i < imp->pending_types.count; i++) {
        const name_entry_t *p = &imp->pending_types.items[i];
        if (name_find(&imp->known_types, p->name))
            continue;
        /* lower() in the store may fold more than strcasecmp (non-ASCII). */
        bool exists = false;
        srl_store_rc_t rc = srl__store_type_exists(imp->st, p->name, &exists, errstr,
                                                   errstr_size);
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
                        "line %ld: assessment_type: no assessment type named \"%s\"",
                        first->line, first->name);
    else
        srl__store_errf(errstr, errstr_size,
                        "line %ld: assessment_type: no assessment type named \"%s\" "
                        "(and %zu more unknown type names)",
                        first->line, first->name, missing - 1);
    return SRL_STORE_INVALID;
}

/* suspects[from..] as a text[] literal: {"k1","k2"} with \ and " escaped.
 * Malloc'd; NULL when out of memory. */
static char *suspects_literal(const srl_store_import_t *imp, size_t from)
{
    size_t size = 3;
    for (size_t i = from; i < imp->suspect_count; i++)
        size += 2 * strlen(imp->suspects[i]) + 3;
    char *arr = malloc(size), *w = arr;
    if (!arr)
        return NULL;
    *w++ = '{';
    for (size_t i = from; i < imp->suspect_count; i++) {
        if (i > from)
            *w++ = ',';
        *w++ = '"';
        for (const char *s = imp->suspects[i]; *s; s++) {
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
 * twice in a statement): keep its last line. Only keys whose hash was seen
 * before are candidates, so this costs nothing without duplicates. */
static srl_store_rc_t drop_chunk_duplicates(srl_store_import_t *imp, char *errstr,
                                            size_t errstr_size)
{
    if (imp->chunk_suspects == imp->suspect_count)
        return SRL_STORE_OK;
    char *arr = suspects_literal(imp, imp->chunk_suspects);
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
    imp->chunk_suspects = imp->suspect_count;
    return rc;
}

/* Name every superseded line: each occurrence of a suspected key but the
 * last (a hash match alone is not a duplicate). */
static srl_store_rc_t report_duplicates(srl_store_import_t *imp, srl_store_duplicate_cb on_dup,
                                        void *arg, char *errstr, size_t errstr_size)
{
    if (imp->suspect_count == 0)
        return SRL_STORE_OK;
    char *arr = suspects_literal(imp, 0);
    if (!arr) {
        srl__store_errf(errstr, errstr_size, "import: out of memory");
        return SRL_STORE_FATAL;
    }
    const char *params[] = {arr};
    srl_store_rc_t rc = SRL_STORE_OK;
    PGresult *res = PQexecParams(
        imp->st->conn,
        "SELECT key, line, max(line) OVER (PARTITION BY key) FROM srl_import_keys"
        " WHERE key = ANY($1::text[]) ORDER BY line",
        1, NULL, params, NULL, NULL, 0);
    free(arr);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = srl_store_classify(imp->st->conn, res, "import: finding duplicates", errstr,
                                errstr_size);
        PQclear(res);
        return rc;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        long line = strtol(PQgetvalue(res, i, 1), NULL, 10);
        long last = strtol(PQgetvalue(res, i, 2), NULL, 10);
        if (line == last)
            continue;
        imp->stats.duplicates++;
        if (on_dup)
            on_dup(arg, SRL_KIND_ASSESSMENT, PQgetvalue(res, i, 0), line, last);
    }
    PQclear(res);
    return SRL_STORE_OK;
}

srl_store_rc_t srl_store_import_finish(srl_store_import_t *imp, srl_store_duplicate_cb on_dup,
                                       void *arg, srl_store_import_stats_t *stats,
                                       char *errstr, size_t errstr_size)
{
    srl_store_rc_t rc = ship_chunk(imp, errstr, errstr_size);
    if (rc == SRL_STORE_OK)
        rc = wait_insert(imp, errstr, errstr_size);
    if (rc == SRL_STORE_OK)
        rc = write_docs(imp, SRL_KIND_ASSESSMENT_TYPE, on_dup, arg, errstr, errstr_size);
    if (rc == SRL_STORE_OK)
        rc = write_docs(imp, SRL_KIND_POLICY, on_dup, arg, errstr, errstr_size);
    if (rc == SRL_STORE_OK)
        rc = check_pending_types(imp, errstr, errstr_size);
    if (rc == SRL_STORE_OK)
        rc = report_duplicates(imp, on_dup, arg, errstr, errstr_size);
    if (rc == SRL_STORE_OK)
        rc = srl__store_exec(imp->st, "COMMIT", "import: COMMIT", errstr, errstr_size);
    if (stats)
        *stats = imp->stats;
    srl_store_import_abort(imp); /* rolls back if the COMMIT did not happen */
    return rc;
}

void srl_store_import_abort(srl_store_import_t *imp)
{
    if (!imp)
        return;
    if (imp->insert_running) {
        /* Nothing of it will be kept: stop it rather than wait. */
        char buf[256];
        PGcancel *cancel = PQgetCancel(imp->st->conn);
        if (cancel) {
            PQcancel(cancel, buf, sizeof(buf));
            PQfreeCancel(cancel);
        }
        wait_insert(imp, buf, sizeof(buf));
    }
    srl__store_rollback(imp->st);
    for (int k = 0; k < SRL_KIND_COUNT; k++)
        doc_list_free(&imp->docs[k]);
    name_list_free(&imp->known_types);
    name_list_free(&imp->pending_types);
    for (size_t i = 0; i < imp->suspect_count; i++)
        free(imp->suspects[i]);
    free(imp->suspects);
    free(imp->hashes);
    free(imp->buf);
    free(imp);
}
