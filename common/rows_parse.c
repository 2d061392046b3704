/*
 * rows_parse.c - content rows of the store -> entities (see sysrepl/rows.h).
 *
 * Rows come in libpq's text format. Enums are the schemas' lowercase
 * symbols, times bigint ms, arrays as JSON (array_to_json in the SELECT),
 * a policy's nested rule sets as jsonb in the JSON form of json.h. A value
 * the model cannot hold fails the row with the column named: the store's
 * CHECK constraints make that a bug, and the drain stops on it loudly
 * rather than publish a wrong record.
 */
#include "sysrepl/rows.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "sysrepl/json.h"

int srl_rows_ncols(srl_kind_t kind)
{
    switch (kind) {
    case SRL_KIND_ASSESSMENT_TYPE:
        return SRL_ROWS_TYPE_NCOLS;
    case SRL_KIND_ASSESSMENT:
        return SRL_ROWS_ASSESSMENT_NCOLS;
    case SRL_KIND_POLICY:
        return SRL_ROWS_POLICY_NCOLS;
    default:
        return 0;
    }
}

bool srl_rows_present(const PGresult *res, int row, int col0)
{
    return !PQgetisnull(res, row, col0);
}

/* A parse in progress: the row, and where to write the reason. */
typedef struct row_ctx {
    const PGresult *res;
    int row;
    char *errstr;
    size_t errstr_size;
    bool failed;
} row_ctx_t;

static void row_fail(row_ctx_t *c, int col, const char *what)
{
    if (c->failed)
        return;
    c->failed = true;
    snprintf(c->errstr, c->errstr_size, "column %s: %s (value \"%.64s\")", PQfname(c->res, col),
             what, PQgetvalue(c->res, c->row, col));
}

static bool is_null(row_ctx_t *c, int col)
{
    return PQgetisnull(c->res, c->row, col);
}

static const char *val(row_ctx_t *c, int col)
{
    return PQgetvalue(c->res, c->row, col);
}

/* Owned copy of a text column; NULL for SQL NULL. */
static char *str_or_null(row_ctx_t *c, int col)
{
    if (is_null(c, col))
        return NULL;
    char *s = strdup(val(c, col));
    if (!s)
        row_fail(c, col, "out of memory");
    return s;
}

static int64_t int64_col(row_ctx_t *c, int col)
{
    char *end;
    if (is_null(c, col)) {
        row_fail(c, col, "unexpected NULL");
        return 0;
    }
    errno = 0;
    long long v = strtoll(val(c, col), &end, 10);
    if (errno || *end || end == val(c, col))
        row_fail(c, col, "not an integer");
    return v;
}

static double double_col(row_ctx_t *c, int col)
{
    char *end;
    if (is_null(c, col))
        return 0.0;
    errno = 0;
    double v = strtod(val(c, col), &end);
    if (errno || *end || end == val(c, col))
        row_fail(c, col, "not a number");
    return v;
}

static bool bool_col(row_ctx_t *c, int col)
{
    return !is_null(c, col) && val(c, col)[0] == 't';
}

static json_t *json_col(row_ctx_t *c, int col)
{
    json_error_t jerr;
    if (is_null(c, col))
        return NULL;
    json_t *j = json_loads(val(c, col), JSON_DECODE_ANY, &jerr);
    if (!j)
        row_fail(c, col, "not JSON");
    return j;
}

static void parse_meta(row_ctx_t *c, int col0, srl_meta_t *m)
{
    m->version = int64_col(c, col0);
    m->origin = str_or_null(c, col0 + 1);
    m->changed_at = int64_col(c, col0 + 2);
}

/* An enum column through its _parse function. */
#define ENUM_COL(c, col, parse, out)                      \
    do {                                                  \
        if (!is_null(c, col) && !parse(val(c, col), out)) \
            row_fail(c, col, "unknown symbol");           \
    } while (0)

static void parse_type(row_ctx_t *c, int k, srl_assessment_type_t *t)
{
    parse_meta(c, k, &t->meta);
    t->name = str_or_null(c, k + 3);
    t->description = str_or_null(c, k + 4);
    t->color = str_or_null(c, k + 5);
    ENUM_COL(c, k + 6, srl_severity_class_parse, &t->severity_class);
    t->emitted_severity = SRL_SEVERITY_UNSET;
    ENUM_COL(c, k + 7, srl_severity_parse, &t->emitted_severity);
    ENUM_COL(c, k + 8, srl_auto_rule_kind_parse, &t->auto_rule.kind);
    t->auto_rule.cvss_min = double_col(c, k + 9);
    t->auto_rule.cvss_max = double_col(c, k + 10);
    json_t *cats = json_col(c, k + 11);
    if (json_is_array(cats) && json_array_size(cats) > 0) {
        size_t n = json_array_size(cats);
        t->auto_rule.pvrs_categories = calloc(n, sizeof(int32_t));
        if (!t->auto_rule.pvrs_categories) {
            row_fail(c, k + 11, "out of memory");
        } else {
            t->auto_rule.pvrs_count = n;
            for (size_t i = 0; i < n; i++)
                t->auto_rule.pvrs_categories[i] = (int32_t)json_integer_value(
                    json_array_get(cats, i));
        }
    }
    json_decref(cats);
    t->has_default_expiry_days = !is_null(c, k + 12);
    if (t->has_default_expiry_days)
        t->default_expiry_days = (int32_t)int64_col(c, k + 12);
    t->inactive = bool_col(c, k + 13);
    t->built_in = bool_col(c, k + 14);
}

static void parse_assessment(row_ctx_t *c, int k, srl_assessment_t *a)
{
    parse_meta(c, k, &a->meta);
    a->vulnerability_id = str_or_null(c, k + 3);
    a->assessment_type = str_or_null(c, k + 4);
    a->comment = str_or_null(c, k + 5);
    ENUM_COL(c, k + 6, srl_scope_kind_parse, &a->scope_kind);
    a->scope_name = str_or_null(c, k + 7);
    a->has_package_filter = !is_null(c, k + 8);
    a->package_name = str_or_null(c, k + 8);
    a->package_version_range = str_or_null(c, k + 9);
    a->has_expires_at = !is_null(c, k + 10);
    if (a->has_expires_at)
        a->expires_at = int64_col(c, k + 10);
    a->automatic = bool_col(c, k + 11);
    a->assessed_by = str_or_null(c, k + 12);
    a->assessed_at = int64_col(c, k + 13);
}

/* {"name": "outcome", ...} -> entries; jsonb's key order is kept. */
static void parse_outcome_map(row_ctx_t *c, int col, srl_outcome_entry_t **items, size_t *count)
{
    json_t *obj = json_col(c, col);
    const char *name;
    json_t *v;
    if (!obj)
        return;
    if (!json_is_object(obj)) {
        row_fail(c, col, "not a JSON object");
        goto cleanup;
    }
    *items = calloc(json_object_size(obj) ? json_object_size(obj) : 1, sizeof(**items));
    if (!*items) {
        row_fail(c, col, "out of memory");
        goto cleanup;
    }
    json_object_foreach(obj, name, v) {
        srl_outcome_entry_t *e = &(*items)[*count];
        e->name = strdup(name);
        (*count)++;
        if (!e->name || !json_is_string(v) || !srl_outcome_parse(json_string_value(v), &e->outcome))
            row_fail(c, col, "bad outcome map entry");
    }
cleanup:
    json_decref(obj);
}

static bool json_time(const json_t *v, int64_t *ms)
{
    if (json_is_integer(v)) {
        *ms = json_integer_value(v);
        return true;
    }
    return json_is_string(v) && srl_json_parse_time(json_string_value(v), ms);
}

static void parse_exceptions(row_ctx_t *c, int col, srl_policy_t *p)
{
    json_t *arr = json_col(c, col);
    size_t i;
    json_t *x;
    if (!arr)
        return;
    if (!json_is_array(arr)) {
        row_fail(c, col, "not a JSON array");
        goto cleanup;
    }
    if (json_array_size(arr) == 0)
        goto cleanup;
    p->exceptions = calloc(json_array_size(arr), sizeof(*p->exceptions));
    if (!p->exceptions) {
        row_fail(c, col, "out of memory");
        goto cleanup;
    }
    json_array_foreach(arr, i, x) {
        srl_policy_exception_t *e = &p->exceptions[i];
        p->exception_count++;
        const json_t *pkg = json_object_get(x, "package");
        const json_t *range = json_object_get(x, "version_range");
        const json_t *groups = json_object_get(x, "rule_groups");
        const json_t *exp = json_object_get(x, "expires_at");
        e->package = json_is_string(pkg) ? strdup(json_string_value(pkg)) : NULL;
        if (!e->package)
            row_fail(c, col, "exception without package");
        if (json_is_string(range))
            e->version_range = strdup(json_string_value(range));
        size_t j;
        json_t *g;
        json_array_foreach(groups, j, g) {
            unsigned bit;
            if (!json_is_string(g) || !srl_rule_group_parse(json_string_value(g), &bit))
                row_fail(c, col, "unknown rule group");
            else
                e->rule_groups |= bit;
        }
        if (exp && !json_is_null(exp)) {
            e->has_expires_at = json_time(exp, &e->expires_at);
            if (!e->has_expires_at)
                row_fail(c, col, "bad expires_at");
        }
    }
cleanup:
    json_decref(arr);
}

static void parse_risk_profile(row_ctx_t *c, int col, srl_policy_t *p)
{
    static const char *const names[] = {"network_exposure", "access_interface", "service_outage",
                                        "data_breach", "data_tampering"};
    json_t *obj = json_col(c, col);
    if (!obj || json_is_null(obj))
        goto cleanup;
    srl_risk_level_t *levels[] = {&p->risk_profile.network_exposure,
                                  &p->risk_profile.access_interface,
                                  &p->risk_profile.service_outage, &p->risk_profile.data_breach,
                                  &p->risk_profile.data_tampering};
    p->has_risk_profile = true;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const json_t *v = json_object_get(obj, names[i]);
        if (v && !(json_is_string(v) && srl_risk_level_parse(json_string_value(v), levels[i])))
            row_fail(c, col, "bad risk level");
    }
cleanup:
    json_decref(obj);
}

static void parse_policy(row_ctx_t *c, int k, srl_policy_t *p)
{
    parse_meta(c, k, &p->meta);
    p->name = str_or_null(c, k + 3);
    p->description = str_or_null(c, k + 4);
    json_t *feeds = json_col(c, k + 5);
    if (json_is_array(feeds) && json_array_size(feeds) > 0) {
        size_t n = json_array_size(feeds);
        p->feeds = calloc(n, sizeof(char *));
        for (size_t i = 0; p->feeds && i < n; i++) {
            const char *f = json_string_value(json_array_get(feeds, i));
            p->feeds[i] = strdup(f ? f : "");
            p->feed_count++;
        }
        if (!p->feeds)
            row_fail(c, k + 5, "out of memory");
    }
    json_decref(feeds);
    ENUM_COL(c, k + 6, srl_outcome_parse, &p->unassessed);
    parse_outcome_map(c, k + 7, &p->by_assessment_type, &p->by_assessment_type_count);
    ENUM_COL(c, k + 8, srl_outcome_parse, &p->license_undetected);
    ENUM_COL(c, k + 9, srl_outcome_parse, &p->license_other);
    parse_outcome_map(c, k + 10, &p->by_license, &p->by_license_count);
    ENUM_COL(c, k + 11, srl_outcome_parse, &p->deprecated);
    ENUM_COL(c, k + 12, srl_outcome_parse, &p->unlisted);
    parse_exceptions(c, k + 13, p);
    parse_risk_profile(c, k + 14, p);
}

bool srl_rows_parse(const PGresult *res, int row, int col0, srl_kind_t kind, srl_entity_t *e,
                    char *errstr, size_t errstr_size)
{
    row_ctx_t c = {res, row, errstr, errstr_size, false};
    memset(e, 0, sizeof(*e));
    e->kind = kind;
    switch (kind) {
    case SRL_KIND_ASSESSMENT_TYPE:
        parse_type(&c, col0, &e->u.type);
        break;
    case SRL_KIND_ASSESSMENT:
        parse_assessment(&c, col0, &e->u.assessment);
        break;
    case SRL_KIND_POLICY:
        parse_policy(&c, col0, &e->u.policy);
        break;
    default:
        snprintf(errstr, errstr_size, "unknown kind %d", (int)kind);
        return false;
    }
    if (c.failed) {
        srl_entity_clear(e);
        e->kind = kind;
        return false;
    }
    return true;
}
