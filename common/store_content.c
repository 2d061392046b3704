/*
 * store_content.c - content rows <-> model.h structs: put, get, delete and
 * streaming listings of the three kinds.
 *
 * Assessments (the many) map column by column, and listings stream them
 * with COPY .. TO STDOUT, parsed in place, so a million rows never sit in
 * memory. Types and policies (the few, with nested parts) travel as their
 * JSON form (json.h) in both directions: PostgreSQL builds and takes apart
 * the JSON, json.c converts it, so there is one mapping of their fields.
 *
 * The capture triggers stamp origin/version/changed_at; nothing here sets
 * them.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "sysrepl/clock.h"
#include "sysrepl/json.h"
#include "sysrepl/keys.h"
#include "store_private.h"

/* ------------------------------------------------------------------ */
/* SQL per kind                                                         */

#define ASSESSMENT_SELECT                                                        \
    "SELECT vulnerability_id, assessment_type, comment, scope_kind, scope_name," \
    " package_name, package_version_range, expires_at, automatic, assessed_by,"  \
    " assessed_at, origin, version, changed_at FROM vulnerability_assessments"

#define TYPE_SELECT                                                            \
    "SELECT jsonb_strip_nulls(jsonb_build_object("                             \
    " 'name', name, 'description', description, 'color', color,"               \
    " 'severity_class', severity_class, 'emitted_severity', emitted_severity," \
    " 'auto_rule', CASE WHEN auto_rule <> 'none' THEN jsonb_build_object("     \
    "     'kind', auto_rule, 'cvss_min', cvss_min, 'cvss_max', cvss_max,"      \
    "     'pvrs_categories', to_jsonb(pvrs_categories)) END,"                  \
    " 'default_expiry_days', default_expiry_days, 'inactive', inactive,"       \
    " 'built_in', built_in, 'origin', origin, 'version', version,"             \
    " 'changed_at', changed_at))::text FROM assessment_types"

#define POLICY_SELECT                                                            \
    "SELECT jsonb_strip_nulls(jsonb_build_object("                               \
    " 'name', name, 'description', description, 'feeds', to_jsonb(feeds),"       \
    " 'unassessed', unassessed, 'by_assessment_type', by_assessment_type,"       \
    " 'license_undetected', license_undetected, 'license_other', license_other," \
    " 'by_license', by_license, 'deprecated', deprecated, 'unlisted', unlisted," \
    " 'exceptions', exceptions, 'risk_profile', risk_profile,"                   \
    " 'origin', origin, 'version', version, 'changed_at', changed_at))::text"    \
    " FROM policies"

/* $1 is the entity's JSON form. A conflicting type name of another case is
 * the same type: it is renamed to the new spelling. */
static const char TYPE_UPSERT[] =
    "INSERT INTO assessment_types (name, description, color, severity_class,"
    " emitted_severity, auto_rule, cvss_min, cvss_max, pvrs_categories,"
    " default_expiry_days, inactive, built_in)"
    " SELECT d->>'name', d->>'description', d->>'color', d->>'severity_class',"
    "  d->>'emitted_severity', coalesce(d->'auto_rule'->>'kind', 'none'),"
    "  CASE WHEN d->'auto_rule'->>'kind' = 'cvss' THEN (d->'auto_rule'->>'cvss_min')::float8 END,"
    "  CASE WHEN d->'auto_rule'->>'kind' = 'cvss' THEN (d->'auto_rule'->>'cvss_max')::float8 END,"
    "  CASE WHEN d->'auto_rule'->>'kind' = 'pvrs' THEN ARRAY("
    "    SELECT c::int FROM jsonb_array_elements_text(d->'auto_rule'->'pvrs_categories')"
    "    WITH ORDINALITY AS x(c, i) ORDER BY i) END,"
    "  (d->>'default_expiry_days')::int, coalesce((d->>'inactive')::boolean, false),"
    "  coalesce((d->>'built_in')::boolean, false)"
    " FROM (SELECT $1::jsonb AS d) s"
    " ON CONFLICT ((lower(name))) DO UPDATE SET name = EXCLUDED.name,"
    "  description = EXCLUDED.description, color = EXCLUDED.color,"
    "  severity_class = EXCLUDED.severity_class, emitted_severity = EXCLUDED.emitted_severity,"
    "  auto_rule = EXCLUDED.auto_rule, cvss_min = EXCLUDED.cvss_min,"
    "  cvss_max = EXCLUDED.cvss_max, pvrs_categories = EXCLUDED.pvrs_categories,"
    "  default_expiry_days = EXCLUDED.default_expiry_days, inactive = EXCLUDED.inactive,"
    "  built_in = EXCLUDED.built_in"
    " RETURNING version";

static const char POLICY_UPSERT[] =
    "INSERT INTO policies (name, description, feeds, unassessed, by_assessment_type,"
    " license_undetected, license_other, by_license, deprecated, unlisted, exceptions,"
    " risk_profile)"
    " SELECT d->>'name', d->>'description',"
    "  ARRAY(SELECT f FROM jsonb_array_elements_text(coalesce(d->'feeds', '[]'))"
    "        WITH ORDINALITY AS x(f, i) ORDER BY i),"
    "  coalesce(d->>'unassessed', 'unspecified'), coalesce(d->'by_assessment_type', '{}'),"
    "  coalesce(d->>'license_undetected', 'unspecified'),"
    "  coalesce(d->>'license_other', 'unspecified'), coalesce(d->'by_license', '{}'),"
    "  coalesce(d->>'deprecated', 'unspecified'), coalesce(d->>'unlisted', 'unspecified'),"
    "  coalesce(d->'exceptions', '[]'), d->'risk_profile'"
    " FROM (SELECT $1::jsonb AS d) s"
    " ON CONFLICT (name) DO UPDATE SET description = EXCLUDED.description,"
    "  feeds = EXCLUDED.feeds, unassessed = EXCLUDED.unassessed,"
    "  by_assessment_type = EXCLUDED.by_assessment_type,"
    "  license_undetected = EXCLUDED.license_undetected,"
    "  license_other = EXCLUDED.license_other, by_license = EXCLUDED.by_license,"
    "  deprecated = EXCLUDED.deprecated, unlisted = EXCLUDED.unlisted,"
    "  exceptions = EXCLUDED.exceptions, risk_profile = EXCLUDED.risk_profile"
    " RETURNING version";

/* $11 NULL (SRL_STORE_ASSESSED_AT_KEEP): keep the stored assessed_at, or
 * now for a new assessment. */
static const char ASSESSMENT_UPSERT[] =
    "INSERT INTO vulnerability_assessments AS t (" SRL__ASSESSMENT_COLUMNS ")"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, coalesce($11::bigint, sysrepl.sysrepl_now_ms()))"
    " ON CONFLICT (key) DO UPDATE SET " SRL__ASSESSMENT_UPDATE_SET_NO_ASSESSED_AT
    ", assessed_at = coalesce($11::bigint, t.assessed_at)"
    " RETURNING version";

/* ------------------------------------------------------------------ */
/* helpers                                                              */

static srl_store_rc_t query_failed(srl_store_t *st, PGresult *res, const char *what, char *errstr,
                                   size_t errstr_size)
{
    srl_store_rc_t rc = srl_store_classify(st->conn, res, what, errstr, errstr_size);
    PQclear(res);
    return rc;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* An assessment whose strings point into the fields (borrowed, not owned:
 * never pass it to srl_assessment_clear). */
static bool assessment_view(char *const *f, srl_assessment_t *a, char *errstr, size_t errstr_size)
{
    memset(a, 0, sizeof(*a));
    if (!f[0] || !f[1] || !f[3] || !f[8] || !f[10] || !f[12] || !f[13] ||
        !srl_scope_kind_parse(f[3], &a->scope_kind)) {
        srl__store_errf(errstr, errstr_size, "vulnerability_assessments: malformed row");
        return false;
    }
    a->vulnerability_id = f[0];
    a->assessment_type = f[1];
    a->comment = f[2];
    a->scope_name = f[4];
    a->has_package_filter = f[5] != NULL;
    a->package_name = f[5];
    a->package_version_range = f[6];
    a->has_expires_at = f[7] != NULL;
    a->expires_at = f[7] ? strtoll(f[7], NULL, 10) : 0;
    a->automatic = f[8][0] == 't';
    a->assessed_by = f[9];
    a->assessed_at = strtoll(f[10], NULL, 10);
    a->meta.origin = f[11];
    a->meta.version = strtoll(f[12], NULL, 10);
    a->meta.changed_at = strtoll(f[13], NULL, 10);
    return true;
}

bool srl__store_assessment_from_fields(char *const *f, srl_assessment_t *a, char *errstr,
                                       size_t errstr_size)
{
    srl_assessment_t v;
    if (!assessment_view(f, &v, errstr, errstr_size)) {
        memset(a, 0, sizeof(*a));
        return false;
    }
    *a = v;
    a->vulnerability_id = strdup(v.vulnerability_id);
    a->assessment_type = strdup(v.assessment_type);
    a->comment = dup_or_null(v.comment);
    a->scope_name = dup_or_null(v.scope_name);
    a->package_name = dup_or_null(v.package_name);
    a->package_version_range = dup_or_null(v.package_version_range);
    a->assessed_by = dup_or_null(v.assessed_by);
    a->meta.origin = dup_or_null(v.meta.origin);
    if (!a->vulnerability_id || !a->assessment_type || (v.comment && !a->comment) ||
        (v.scope_name && !a->scope_name) || (v.package_name && !a->package_name) ||
        (v.package_version_range && !a->package_version_range) ||
        (v.assessed_by && !a->assessed_by) || (v.meta.origin && !a->meta.origin)) {
        srl_assessment_clear(a);
        srl__store_errf(errstr, errstr_size, "out of memory");
        return false;
    }
    return true;
}

/* Clear *e and make it an empty entity of kind: the union is zeroed whole,
 * since a cleared entity of another kind is not a cleared one of this. */
static void entity_reset(srl_entity_t *e, srl_kind_t kind)
{
    srl_entity_clear(e);
    memset(e, 0, sizeof(*e));
    e->kind = kind;
    if (kind == SRL_KIND_ASSESSMENT_TYPE)
        e->u.type.emitted_severity = SRL_SEVERITY_UNSET;
}

/* Fill *e of kind from the JSON text PostgreSQL built for a type/policy. */
static bool entity_from_json_text(srl_kind_t kind, const char *text, srl_entity_t *e, char *errstr,
                                  size_t errstr_size)
{
    json_error_t jerr;
    json_t *doc = json_loads(text, 0, &jerr);
    if (!doc) {
        srl__store_errf(errstr, errstr_size, "%s: stored row is not JSON: %s", srl_kind_table(kind),
                        jerr.text);
        return false;
    }
    char why[256];
    bool ok = srl_json_to_entity(doc, kind, e, why, sizeof(why));
    if (!ok)
        srl__store_errf(errstr, errstr_size, "%s: stored row does not decode: %s",
                        srl_kind_table(kind), why);
    json_decref(doc);
    return ok;
}

/* ------------------------------------------------------------------ */
/* validation                                                           */

bool srl_store_validate(const srl_entity_t *e, int64_t now_ms, char *errstr, size_t errstr_size)
{
    if (!srl_entity_validate(e, errstr, errstr_size))
        return false;
    if (now_ms == 0)
        now_ms = srl_clock_wall_ms();
    char when[40];
    if (e->kind == SRL_KIND_ASSESSMENT) {
        const srl_assessment_t *a = &e->u.assessment;
        if (a->has_expires_at && a->expires_at <= now_ms) {
            if (!srl_json_format_time(a->expires_at, when, sizeof(when)))
                snprintf(when, sizeof(when), "%" PRId64 " ms", a->expires_at);
            srl__store_errf(errstr, errstr_size, "expires_at: %s is already past", when);
            return false;
        }
    } else if (e->kind == SRL_KIND_POLICY) {
        const srl_policy_t *p = &e->u.policy;
        for (size_t i = 0; i < p->exception_count; i++) {
            const srl_policy_exception_t *x = &p->exceptions[i];
            if (x->has_expires_at && x->expires_at <= now_ms) {
                if (!srl_json_format_time(x->expires_at, when, sizeof(when)))
                    snprintf(when, sizeof(when), "%" PRId64 " ms", x->expires_at);
                srl__store_errf(errstr, errstr_size,
                                "exceptions[%zu].expires_at: %s is already past", i, when);
                return false;
            }
        }
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* put                                                                  */

srl_store_rc_t srl__store_type_exists(srl_store_t *st, const char *name, bool *exists, char *errstr,
                                      size_t errstr_size)
{
    const char *params[] = {name};
    PGresult *res = PQexecParams(st->conn,
                                 "SELECT 1 FROM assessment_types WHERE lower(name) = lower($1)", 1,
                                 NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return query_failed(st, res, "looking up the assessment type", errstr, errstr_size);
    *exists = PQntuples(res) > 0;
    PQclear(res);
    return SRL_STORE_OK;
}

void srl__store_assessment_params(const srl_assessment_t *a, char bufs[3][24],
                                  const char *params[SRL__ASSESSMENT_NCOLS])
{
    snprintf(bufs[0], 24, "%" PRId64, a->expires_at);
    snprintf(bufs[1], 24, "%" PRId64, a->assessed_at);
    params[0] = a->vulnerability_id;
    params[1] = a->assessment_type;
    params[2] = a->comment;
    params[3] = srl_scope_kind_name(a->scope_kind);
    params[4] = a->scope_kind == SRL_SCOPE_GLOBAL ? NULL : a->scope_name;
    params[5] = a->has_package_filter ? a->package_name : NULL;
    params[6] = a->has_package_filter ? a->package_version_range : NULL;
    params[7] = a->has_expires_at ? bufs[0] : NULL;
    params[8] = a->automatic ? "t" : "f";
    params[9] = a->assessed_by;
    params[10] = a->assessed_at == SRL_STORE_ASSESSED_AT_KEEP ? NULL : bufs[1];
}

srl_store_rc_t srl__store_put_doc(srl_store_t *st, srl_kind_t kind, const char *doc,
                                  const char *key, bool *changed, char *errstr, size_t errstr_size)
{
    char what[300];
    snprintf(what, sizeof(what), "writing %s \"%s\"", srl_kind_name(kind), key);
    const char *params[] = {doc};
    PGresult *res = PQexecParams(st->conn, kind == SRL_KIND_POLICY ? POLICY_UPSERT : TYPE_UPSERT, 1,
                                 NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return query_failed(st, res, what, errstr, errstr_size);
    if (changed)
        *changed = PQntuples(res) > 0;
    PQclear(res);
    return SRL_STORE_OK;
}

char *srl__store_doc(const srl_entity_t *e, char *errstr, size_t errstr_size)
{
    char why[256];
    json_t *doc = srl_json_from_entity(e, why, sizeof(why));
    if (!doc) {
        srl__store_errf(errstr, errstr_size, "%s", why);
        return NULL;
    }
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (!text)
        srl__store_errf(errstr, errstr_size, "out of memory");
    return text;
}

srl_store_rc_t srl__store_put_one(srl_store_t *st, const srl_entity_t *e, bool *changed,
                                  char *errstr, size_t errstr_size)
{
    char key[256];
    if (srl_key_build(e, key, sizeof(key)) < 0)
        snprintf(key, sizeof(key), "(unnamed)");
    if (e->kind != SRL_KIND_ASSESSMENT) {
        char *doc = srl__store_doc(e, errstr, errstr_size);
        if (!doc)
            return SRL_STORE_INVALID;
        srl_store_rc_t rc = srl__store_put_doc(st, e->kind, doc, key, changed, errstr, errstr_size);
        free(doc);
        return rc;
    }
    char what[300];
    char bufs[3][24];
    const char *params[SRL__ASSESSMENT_NCOLS];
    snprintf(what, sizeof(what), "writing %s \"%s\"", srl_kind_name(e->kind), key);
    srl__store_assessment_params(&e->u.assessment, bufs, params);
    PGresult *res = PQexecParams(st->conn, ASSESSMENT_UPSERT, SRL__ASSESSMENT_NCOLS, NULL, params,
                                 NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return query_failed(st, res, what, errstr, errstr_size);
    if (changed)
        *changed = PQntuples(res) > 0;
    PQclear(res);
    return SRL_STORE_OK;
}

srl_store_rc_t srl_store_put(srl_store_t *st, const srl_entity_t *e, bool *changed, char *errstr,
                             size_t errstr_size)
{
    if (e->kind == SRL_KIND_ASSESSMENT) {
        const char *type = e->u.assessment.assessment_type;
        bool exists = false;
        if (!type || !type[0]) {
            srl__store_errf(errstr, errstr_size, "assessment_type: required");
            return SRL_STORE_INVALID;
        }
        srl_store_rc_t rc = srl__store_type_exists(st, type, &exists, errstr, errstr_size);
        if (rc != SRL_STORE_OK)
            return rc;
        if (!exists) {
            srl__store_errf(errstr, errstr_size, "assessment_type: no assessment type named \"%s\"",
                            type);
            return SRL_STORE_INVALID;
        }
    }
    return srl__store_put_one(st, e, changed, errstr, errstr_size);
}

/* ------------------------------------------------------------------ */
/* get and delete                                                       */

static const char *key_condition(srl_kind_t kind)
{
    switch (kind) {
    case SRL_KIND_ASSESSMENT_TYPE:
        return " WHERE lower(name) = lower($1)";
    case SRL_KIND_ASSESSMENT:
        return " WHERE key = $1";
    case SRL_KIND_POLICY:
        return " WHERE name = $1";
    default:
        return NULL;
    }
}

srl_store_rc_t srl_store_get(srl_store_t *st, srl_kind_t kind, const char *key, srl_entity_t *out,
                             char *errstr, size_t errstr_size)
{
    char sql[2048];
    const char *select = kind == SRL_KIND_ASSESSMENT ? ASSESSMENT_SELECT
                         : kind == SRL_KIND_POLICY   ? POLICY_SELECT
                                                     : TYPE_SELECT;
    entity_reset(out, kind);
    if (!key_condition(kind)) {
        srl__store_errf(errstr, errstr_size, "unknown kind %d", (int)kind);
        return SRL_STORE_FATAL;
    }
    snprintf(sql, sizeof(sql), "%s%s", select, key_condition(kind));
    const char *params[] = {key};
    PGresult *res = PQexecParams(st->conn, sql, 1, NULL, params, NULL, NULL, 0);
    char what[300];
    snprintf(what, sizeof(what), "reading %s \"%s\"", srl_kind_name(kind), key);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return query_failed(st, res, what, errstr, errstr_size);
    if (PQntuples(res) == 0) {
        PQclear(res);
        srl__store_errf(errstr, errstr_size, "no %s with key \"%s\"", srl_kind_name(kind), key);
        return SRL_STORE_NOT_FOUND;
    }
    bool ok;
    if (kind == SRL_KIND_ASSESSMENT) {
        char *f[SRL__ASSESSMENT_NFIELDS];
        for (int i = 0; i < SRL__ASSESSMENT_NFIELDS; i++)
            f[i] = PQgetisnull(res, 0, i) ? NULL : PQgetvalue(res, 0, i);
        ok = srl__store_assessment_from_fields(f, &out->u.assessment, errstr, errstr_size);
    } else {
        ok = entity_from_json_text(kind, PQgetvalue(res, 0, 0), out, errstr, errstr_size);
    }
    PQclear(res);
    out->kind = kind;
    return ok ? SRL_STORE_OK : SRL_STORE_FATAL;
}

srl_store_rc_t srl_store_delete(srl_store_t *st, srl_kind_t kind, const char *key, char *errstr,
                                size_t errstr_size)
{
    char sql[256], what[300];
    const char *params[] = {key};
    PGresult *res;
    if (!key_condition(kind)) {
        srl__store_errf(errstr, errstr_size, "unknown kind %d", (int)kind);
        return SRL_STORE_FATAL;
    }
    snprintf(what, sizeof(what), "deleting %s \"%s\"", srl_kind_name(kind), key);
    if (kind == SRL_KIND_ASSESSMENT_TYPE) {
        /* A type still named by assessments stays: deleting it would leave
         * them pointing at nothing, here and on every spoke. */
        res = PQexecParams(st->conn,
                           "SELECT count(*) FROM vulnerability_assessments"
                           " WHERE lower(assessment_type) = lower($1)",
                           1, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK)
            return query_failed(st, res, what, errstr, errstr_size);
        long long used = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
        if (used > 0) {
            srl__store_errf(errstr, errstr_size,
                            "assessment type \"%s\" is used by %lld assessment%s; delete or "
                            "reassign them first",
                            key, used, used == 1 ? "" : "s");
            return SRL_STORE_INVALID;
        }
    }
    snprintf(sql, sizeof(sql), "DELETE FROM %s%s", srl_kind_table(kind), key_condition(kind));
    res = PQexecParams(st->conn, sql, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        return query_failed(st, res, what, errstr, errstr_size);
    bool gone = strcmp(PQcmdTuples(res), "0") != 0;
    PQclear(res);
    if (!gone) {
        srl__store_errf(errstr, errstr_size, "no %s with key \"%s\"", srl_kind_name(kind), key);
        return SRL_STORE_NOT_FOUND;
    }
    return SRL_STORE_OK;
}

/* ------------------------------------------------------------------ */
/* listings                                                             */

struct srl_store_cursor {
    srl_store_t *st;
    srl_kind_t kind;
    bool in_copy;      /* the COPY is still streaming */
    char *row;         /* the last row (libpq's), under view */
    srl_entity_t view; /* srl_store_cursor_next_view's entity */
    bool view_owned;   /* view owns its strings (types, policies) */
};

int srl__store_copy_split(char *row, int len, char **fields, int max)
{
    int n = 0;
    char *p = row, *end = row + len;
    if (len > 0 && end[-1] == '\n')
        end--;
    for (;;) {
        char *start = p, *w = p;
        while (p < end && *p != '\t') {
            if (*p != '\\' || p + 1 >= end) {
                *w++ = *p++;
                continue;
            }
            p++;
            char ch = *p++;
            switch (ch) {
            case 'b':
                *w++ = '\b';
                break;
            case 'f':
                *w++ = '\f';
                break;
            case 'n':
                *w++ = '\n';
                break;
            case 'r':
                *w++ = '\r';
                break;
            case 't':
                *w++ = '\t';
                break;
            case 'v':
                *w++ = '\v';
                break;
            case 'N':
                if (p - start == 2 && (p == end || *p == '\t')) {
                    start = NULL; /* \N alone: SQL NULL */
                    break;
                }
                *w++ = ch;
                break;
            case 'x': {
                int v = 0, k = 0;
                while (k < 2 && p < end && strchr("0123456789abcdefABCDEF", *p) && *p) {
                    char c = *p++;
                    v = v * 16 + (c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
                    k++;
                }
                *w++ = k ? (char)v : 'x';
                break;
            }
            default:
                if (ch >= '0' && ch <= '7') {
                    int v = ch - '0', k = 1;
                    while (k < 3 && p < end && *p >= '0' && *p <= '7') {
                        v = v * 8 + (*p++ - '0');
                        k++;
                    }
                    *w++ = (char)v;
                } else {
                    *w++ = ch;
                }
            }
            if (!start)
                break;
        }
        if (n < max)
            fields[n] = start;
        n++;
        if (start)
            *w = '\0';
        if (p >= end)
            break;
        p++; /* the tab */
    }
    return n;
}

/* Append " AND <cond>" pieces for the filter to sql. */
static bool append(char *sql, size_t size, const char *piece)
{
    size_t len = strlen(sql), plen = strlen(piece);
    if (len + plen + 1 > size)
        return false;
    memcpy(sql + len, piece, plen + 1);
    return true;
}

static srl_store_rc_t build_list_sql(srl_store_t *st, srl_kind_t kind, const srl_store_filter_t *f,
                                     char *sql, size_t size, char *errstr, size_t errstr_size)
{
    char piece[1024];
    srl_store_rc_t rc = SRL_STORE_OK;
    char *lit = NULL;
    snprintf(sql, size, "COPY (%s WHERE true",
             kind == SRL_KIND_ASSESSMENT ? ASSESSMENT_SELECT
             : kind == SRL_KIND_POLICY   ? POLICY_SELECT
                                         : TYPE_SELECT);
    if (kind == SRL_KIND_ASSESSMENT && f && f->type) {
        lit = PQescapeLiteral(st->conn, f->type, strlen(f->type));
        if (!lit)
            goto oom;
        snprintf(piece, sizeof(piece), " AND lower(assessment_type) = lower(%s)", lit);
        PQfreemem(lit);
        lit = NULL;
        if (!append(sql, size, piece))
            goto too_long;
    }
    if (kind == SRL_KIND_ASSESSMENT && f && f->scope) {
        srl_scope_kind_t sk;
        const char *colon = strchr(f->scope, ':');
        if (strcmp(f->scope, "global") == 0) {
            if (!append(sql, size, " AND scope_kind = 'global'"))
                goto too_long;
        } else {
            char kname[32];
            size_t klen = colon ? (size_t)(colon - f->scope) : 0;
            if (!colon || klen >= sizeof(kname) || !colon[1]) {
                srl__store_errf(errstr, errstr_size,
                                "scope: expected \"global\" or \"<kind>:<name>\", got \"%s\"",
                                f->scope);
                return SRL_STORE_INVALID;
            }
            memcpy(kname, f->scope, klen);
            kname[klen] = '\0';
            if (!srl_scope_kind_parse(kname, &sk) || sk == SRL_SCOPE_GLOBAL) {
                srl__store_errf(errstr, errstr_size,
                                "scope: unknown scope kind \"%s\" (expected policy, feed or "
                                "project)",
                                kname);
                return SRL_STORE_INVALID;
            }
            lit = PQescapeLiteral(st->conn, colon + 1, strlen(colon + 1));
            if (!lit)
                goto oom;
            snprintf(piece, sizeof(piece), " AND scope_kind = '%s' AND scope_name = %s",
                     srl_scope_kind_name(sk), lit);
            PQfreemem(lit);
            lit = NULL;
            if (!append(sql, size, piece))
                goto too_long;
        }
    }
    if (kind == SRL_KIND_ASSESSMENT && f && f->expired) {
        snprintf(piece, sizeof(piece), " AND expires_at <= %" PRId64,
                 f->now_ms ? f->now_ms : srl_clock_wall_ms());
        if (!append(sql, size, piece))
            goto too_long;
    }
    if (!f || !f->any_order) {
        if (!append(sql, size, kind == SRL_KIND_ASSESSMENT ? " ORDER BY key" : " ORDER BY name"))
            goto too_long;
    }
    if (f && f->limit > 0) {
        snprintf(piece, sizeof(piece), " LIMIT %ld", f->limit);
        if (!append(sql, size, piece))
            goto too_long;
    }
    if (!append(sql, size, ") TO STDOUT"))
        goto too_long;
    return rc;
oom:
    srl__store_errf(errstr, errstr_size, "listing: %s", PQerrorMessage(st->conn));
    return SRL_STORE_FATAL;
too_long:
    srl__store_errf(errstr, errstr_size, "listing: filter too long");
    return SRL_STORE_INVALID;
}

srl_store_cursor_t *srl_store_cursor_new(srl_store_t *st, srl_kind_t kind,
                                         const srl_store_filter_t *filter, srl_store_rc_t *rc,
                                         char *errstr, size_t errstr_size)
{
    char sql[4096];
    srl_store_rc_t dummy;
    if (!rc)
        rc = &dummy;
    if (!srl_kind_table(kind)) {
        srl__store_errf(errstr, errstr_size, "unknown kind %d", (int)kind);
        *rc = SRL_STORE_FATAL;
        return NULL;
    }
    *rc = build_list_sql(st, kind, filter, sql, sizeof(sql), errstr, errstr_size);
    if (*rc != SRL_STORE_OK)
        return NULL;
    srl_store_cursor_t *cur = calloc(1, sizeof(*cur));
    if (!cur) {
        srl__store_errf(errstr, errstr_size, "out of memory");
        *rc = SRL_STORE_FATAL;
        return NULL;
    }
    cur->st = st;
    cur->kind = kind;
    PGresult *res = PQexec(st->conn, sql);
    if (PQresultStatus(res) != PGRES_COPY_OUT) {
        char what[100];
        snprintf(what, sizeof(what), "listing %s", srl_kind_name(kind));
        *rc = query_failed(st, res, what, errstr, errstr_size);
        free(cur);
        return NULL;
    }
    PQclear(res);
    cur->in_copy = true;
    return cur;
}

/* After PQgetCopyData said the stream ended: the COPY's own result. */
static srl_store_rc_t finish_copy(srl_store_cursor_t *cur, char *errstr, size_t errstr_size)
{
    srl_store_rc_t rc = SRL_STORE_DONE;
    PGresult *res;
    cur->in_copy = false;
    while ((res = PQgetResult(cur->st->conn)) != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK && rc == SRL_STORE_DONE)
            rc = srl_store_classify(cur->st->conn, res, "listing", errstr, errstr_size);
        PQclear(res);
    }
    return rc;
}

/* The next row of the COPY into *row (libpq's buffer; PQfreemem it) and
 * its length: OK, DONE, or an error. */
static srl_store_rc_t next_row(srl_store_cursor_t *cur, char **row, int *len, char *errstr,
                               size_t errstr_size)
{
    *row = NULL;
    if (!cur->in_copy)
        return SRL_STORE_DONE;
    *len = PQgetCopyData(cur->st->conn, row, 0);
    if (*len == -1)
        return finish_copy(cur, errstr, errstr_size);
    if (*len < 0) {
        cur->in_copy = false;
        return srl_store_classify(cur->st->conn, NULL, "listing", errstr, errstr_size);
    }
    return SRL_STORE_OK;
}

/* Decode row into *out: owned strings, or (borrow) pointers into row. */
static bool decode_row(srl_kind_t kind, char *row, int len, srl_entity_t *out, bool borrow,
                       char *errstr, size_t errstr_size)
{
    if (kind == SRL_KIND_ASSESSMENT) {
        char *f[SRL__ASSESSMENT_NFIELDS];
        int n = srl__store_copy_split(row, len, f, SRL__ASSESSMENT_NFIELDS);
        if (n != SRL__ASSESSMENT_NFIELDS) {
            srl__store_errf(errstr, errstr_size, "listing: row with %d fields", n);
            return false;
        }
        return borrow
                   ? assessment_view(f, &out->u.assessment, errstr, errstr_size)
                   : srl__store_assessment_from_fields(f, &out->u.assessment, errstr, errstr_size);
    }
    char *f[1];
    if (srl__store_copy_split(row, len, f, 1) != 1 || !f[0]) {
        srl__store_errf(errstr, errstr_size, "listing: malformed row");
        return false;
    }
    return entity_from_json_text(kind, f[0], out, errstr, errstr_size);
}

srl_store_rc_t srl_store_cursor_next(srl_store_cursor_t *cur, srl_entity_t *out, char *errstr,
                                     size_t errstr_size)
{
    entity_reset(out, cur->kind);
    char *row;
    int len;
    srl_store_rc_t rc = next_row(cur, &row, &len, errstr, errstr_size);
    if (rc != SRL_STORE_OK)
        return rc;
    bool ok = decode_row(cur->kind, row, len, out, false, errstr, errstr_size);
    PQfreemem(row);
    out->kind = cur->kind;
    return ok ? SRL_STORE_OK : SRL_STORE_FATAL;
}

static void drop_view(srl_store_cursor_t *cur)
{
    if (cur->view_owned)
        srl_entity_clear(&cur->view);
    memset(&cur->view, 0, sizeof(cur->view));
    cur->view_owned = false;
    PQfreemem(cur->row);
    cur->row = NULL;
}

srl_store_rc_t srl_store_cursor_next_view(srl_store_cursor_t *cur, const srl_entity_t **view,
                                          char *errstr, size_t errstr_size)
{
    *view = NULL;
    drop_view(cur);
    int len;
    srl_store_rc_t rc = next_row(cur, &cur->row, &len, errstr, errstr_size);
    if (rc != SRL_STORE_OK)
        return rc;
    entity_reset(&cur->view, cur->kind);
    /* Assessments borrow from the row; the JSON-built kinds own theirs. */
    cur->view_owned = cur->kind != SRL_KIND_ASSESSMENT;
    if (!decode_row(cur->kind, cur->row, len, &cur->view, true, errstr, errstr_size)) {
        drop_view(cur);
        return SRL_STORE_FATAL;
    }
    cur->view.kind = cur->kind;
    *view = &cur->view;
    return SRL_STORE_OK;
}

void srl_store_cursor_free(srl_store_cursor_t *cur)
{
    if (!cur)
        return;
    drop_view(cur);
    if (cur->in_copy) {
        /* Abandoned mid-stream: ask the server to stop, then drain what is
         * already on the way so the connection is usable again. */
        PGcancel *cancel = PQgetCancel(cur->st->conn);
        char buf[256];
        if (cancel) {
            PQcancel(cancel, buf, sizeof(buf));
            PQfreeCancel(cancel);
        }
        char *row;
        int len;
        while ((len = PQgetCopyData(cur->st->conn, &row, 0)) >= 0)
            PQfreemem(row);
        char ignored[8];
        finish_copy(cur, ignored, sizeof(ignored));
    }
    free(cur);
}
