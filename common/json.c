/*
 * json.c - the JSON form of each kind (json.h), and the checks on form that
 * every entity must pass before it is stored or replicated.
 *
 * Field names are the schema's (the .avsc files in schemas/); nested records of the
 * schema are nested objects here (scope, package_filter, auto_rule,
 * exceptions[], risk_profile). Absent optional fields are omitted on
 * output and may be omitted or null on input. Unknown fields are rejected
 * so that a typo in a hand-written file is an error, not a silent default.
 *
 * Every error names the field by its path: "exceptions[2].expires_at: ...".
 */
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sysrepl/json.h"
#include "sysrepl/rules.h"

#define PATH_MAX_LEN 256

typedef struct jctx {
    char *errstr;
    size_t errstr_size;
} jctx_t;

static bool fail(jctx_t *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool fail(jctx_t *c, const char *path, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (c->errstr && c->errstr_size > 0)
        snprintf(c->errstr, c->errstr_size, "%s: %s", path, msg);
    return false;
}

/* Paths longer than PATH_MAX_LEN are cut; an error message stays readable. */
static void child_path(char *dst, const char *parent, const char *name)
{
    int n = parent[0] == '\0' ? snprintf(dst, PATH_MAX_LEN, "%s", name)
                              : snprintf(dst, PATH_MAX_LEN, "%s.%s", parent, name);
    if (n < 0 || n >= PATH_MAX_LEN)
        dst[PATH_MAX_LEN - 1] = '\0';
}

static void index_path(char *dst, const char *parent, size_t i)
{
    int n = snprintf(dst, PATH_MAX_LEN, "%s[%zu]", parent, i);
    if (n < 0 || n >= PATH_MAX_LEN)
        dst[PATH_MAX_LEN - 1] = '\0';
}

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "?";
}

/* ------------------------------------------------------------------ */
/* times                                                                */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* Years 0000..9999 only: RFC 3339 has four-digit years. */
#define MS_MIN (-62167219200000LL) /* 0000-01-01T00:00:00.000Z */
#define MS_MAX (253402300799999LL) /* 9999-12-31T23:59:59.999Z */

bool srl_json_format_time(int64_t ms, char *buf, size_t buf_size)
{
    if (ms < MS_MIN || ms > MS_MAX)
        return false;
    int64_t days = ms / 86400000, rem = ms % 86400000;
    if (rem < 0) {
        rem += 86400000;
        days--;
    }
    int64_t y;
    unsigned mo, d;
    civil_from_days(days, &y, &mo, &d);
    int n = snprintf(buf, buf_size, "%04" PRId64 "-%02u-%02uT%02u:%02u:%02u.%03uZ", y, mo, d,
                     (unsigned)(rem / 3600000), (unsigned)(rem / 60000 % 60),
                     (unsigned)(rem / 1000 % 60), (unsigned)(rem % 1000));
    return n > 0 && (size_t)n < buf_size;
}

static bool digits(const char **p, int n, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return false;
        v = v * 10 + (unsigned)((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return true;
}

static bool expect_char(const char **p, const char *set)
{
    if (**p == '\0' || !strchr(set, **p))
        return false;
    (*p)++;
    return true;
}

bool srl_json_parse_time(const char *s, int64_t *ms_out)
{
    const char *p = s;
    unsigned y, mo, d, h, mi, sec, frac = 0;
    if (!digits(&p, 4, &y) || !expect_char(&p, "-") || !digits(&p, 2, &mo) ||
        !expect_char(&p, "-") || !digits(&p, 2, &d) || !expect_char(&p, "Tt ") ||
        !digits(&p, 2, &h) || !expect_char(&p, ":") || !digits(&p, 2, &mi) ||
        !expect_char(&p, ":") || !digits(&p, 2, &sec))
        return false;
    if (*p == '.') {
        p++;
        int n = 0;
        while (isdigit((unsigned char)*p)) {
            if (n < 3)
                frac = frac * 10 + (unsigned)(*p - '0');
            n++;
            p++;
        }
        if (n == 0)
            return false;
        for (; n < 3; n++)
            frac *= 10;
    }
    int64_t offset_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        unsigned oh, om;
        p++;
        if (!digits(&p, 2, &oh) || !expect_char(&p, ":") || !digits(&p, 2, &om) || oh > 23 ||
            om > 59)
            return false;
        offset_min = sign * (int64_t)(oh * 60 + om);
    } else {
        return false;
    }
    if (*p != '\0')
        return false;
    static const unsigned mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 60)
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo == 2 && d == 29 && !leap)
        return false;
    if (sec == 60) /* a leap second reads as the last ms of its minute */
        sec = 59, frac = 999;
    int64_t days = days_from_civil(y, mo, d);
    *ms_out = ((days * 24 + h) * 60 + mi - offset_min) * 60000 + (int64_t)sec * 1000 + frac;
    return true;
}

/* ------------------------------------------------------------------ */
/* output                                                               */

static bool set_new(json_t *obj, const char *key, json_t *v)
{
    return v && json_object_set_new(obj, key, v) == 0;
}

static json_t *time_json(int64_t ms)
{
    char buf[40];
    if (srl_json_format_time(ms, buf, sizeof(buf)))
        return json_string(buf);
    return json_integer(ms); /* outside 0000..9999: plain milliseconds */
}

static bool put_str(json_t *o, const char *key, const char *s)
{
    return !s || set_new(o, key, json_string(s));
}

static bool put_meta(json_t *o, const srl_meta_t *m)
{
    return put_str(o, "origin", m->origin) && set_new(o, "version", json_integer(m->version)) &&
           set_new(o, "changed_at", time_json(m->changed_at));
}

static json_t *outcome_map_json(const srl_outcome_entry_t *entries, size_t count)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < count; i++) {
        const char *sym = srl_outcome_name(entries[i].outcome);
        if (!entries[i].name || !sym || !set_new(o, entries[i].name, json_string(sym))) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

static json_t *type_json(const srl_assessment_type_t *t)
{
    json_t *o = json_object();
    bool ok = o && put_str(o, "name", t->name) && put_str(o, "description", t->description) &&
              put_str(o, "color", t->color) &&
              put_str(o, "severity_class", srl_severity_class_name(t->severity_class));
    if (ok && t->emitted_severity != SRL_SEVERITY_UNSET)
        ok = put_str(o, "emitted_severity", srl_severity_name(t->emitted_severity)) &&
             srl_severity_name(t->emitted_severity);
    if (ok && t->auto_rule.kind != SRL_AUTO_RULE_NONE) {
        json_t *r = json_object();
        ok = r && set_new(o, "auto_rule", r) &&
             put_str(r, "kind", srl_auto_rule_kind_name(t->auto_rule.kind)) &&
             srl_auto_rule_kind_name(t->auto_rule.kind);
        if (ok && t->auto_rule.kind == SRL_AUTO_RULE_CVSS)
            ok = set_new(r, "cvss_min", json_real(t->auto_rule.cvss_min)) &&
                 set_new(r, "cvss_max", json_real(t->auto_rule.cvss_max));
        if (ok && t->auto_rule.kind == SRL_AUTO_RULE_PVRS) {
            json_t *a = json_array();
            ok = a && set_new(r, "pvrs_categories", a);
            for (size_t i = 0; ok && i < t->auto_rule.pvrs_count; i++)
                ok = json_array_append_new(a, json_integer(t->auto_rule.pvrs_categories[i])) == 0;
        }
    }
    if (ok && t->has_default_expiry_days)
        ok = set_new(o, "default_expiry_days", json_integer(t->default_expiry_days));
    ok = ok && set_new(o, "inactive", json_boolean(t->inactive)) &&
         set_new(o, "built_in", json_boolean(t->built_in)) && put_meta(o, &t->meta);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *assessment_json(const srl_assessment_t *a)
{
    json_t *o = json_object();
    json_t *scope = json_object();
    bool ok = o && scope && put_str(o, "vulnerability_id", a->vulnerability_id) &&
              set_new(o, "scope", scope);
    if (!ok)
        json_decref(scope);
    ok = ok && put_str(scope, "kind", srl_scope_kind_name(a->scope_kind)) &&
         srl_scope_kind_name(a->scope_kind) && put_str(scope, "name", a->scope_name) &&
         put_str(o, "assessment_type", a->assessment_type) && put_str(o, "comment", a->comment);
    if (ok && a->has_package_filter) {
        json_t *f = json_object();
        ok = f && set_new(o, "package_filter", f) && put_str(f, "name", a->package_name) &&
             put_str(f, "version_range", a->package_version_range);
    }
    if (ok && a->has_expires_at)
        ok = set_new(o, "expires_at", time_json(a->expires_at));
    ok = ok && set_new(o, "automatic", json_boolean(a->automatic)) &&
         put_str(o, "assessed_by", a->assessed_by) &&
         set_new(o, "assessed_at", time_json(a->assessed_at)) && put_meta(o, &a->meta);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static bool put_outcome(json_t *o, const char *key, srl_outcome_t v)
{
    const char *sym = srl_outcome_name(v);
    return sym && put_str(o, key, sym);
}

static json_t *policy_json(const srl_policy_t *p)
{
    json_t *o = json_object();
    json_t *feeds = json_array();
    bool ok = o && feeds && put_str(o, "name", p->name) &&
              put_str(o, "description", p->description) && set_new(o, "feeds", feeds);
    if (!ok)
        json_decref(feeds);
    for (size_t i = 0; ok && i < p->feed_count; i++)
        ok = p->feeds[i] && json_array_append_new(feeds, json_string(p->feeds[i])) == 0;
    ok = ok && put_outcome(o, "unassessed", p->unassessed) &&
         set_new(o, "by_assessment_type",
                 outcome_map_json(p->by_assessment_type, p->by_assessment_type_count)) &&
         put_outcome(o, "license_undetected", p->license_undetected) &&
         put_outcome(o, "license_other", p->license_other) &&
         set_new(o, "by_license", outcome_map_json(p->by_license, p->by_license_count)) &&
         put_outcome(o, "deprecated", p->deprecated) && put_outcome(o, "unlisted", p->unlisted);
    json_t *exc = ok ? json_array() : NULL;
    ok = ok && set_new(o, "exceptions", exc);
    for (size_t i = 0; ok && i < p->exception_count; i++) {
        const srl_policy_exception_t *x = &p->exceptions[i];
        json_t *xo = json_object();
        json_t *groups = json_array();
        ok = xo && groups && json_array_append_new(exc, xo) == 0;
        if (!ok) {
            json_decref(xo);
            json_decref(groups);
            break;
        }
        ok = set_new(xo, "package", json_string(x->package ? x->package : "")) &&
             put_str(xo, "version_range", x->version_range) && set_new(xo, "rule_groups", groups);
        for (unsigned bit = 1; ok && bit <= SRL_RULE_GROUP_UNLISTED; bit <<= 1)
            if (x->rule_groups & bit)
                ok = json_array_append_new(groups, json_string(srl_rule_group_name(bit))) == 0;
        if (ok && x->has_expires_at)
            ok = set_new(xo, "expires_at", time_json(x->expires_at));
    }
    if (ok && p->has_risk_profile) {
        const srl_risk_profile_t *r = &p->risk_profile;
        json_t *ro = json_object();
        ok = ro && set_new(o, "risk_profile", ro) &&
             put_str(ro, "network_exposure", srl_risk_level_name(r->network_exposure)) &&
             put_str(ro, "access_interface", srl_risk_level_name(r->access_interface)) &&
             put_str(ro, "service_outage", srl_risk_level_name(r->service_outage)) &&
             put_str(ro, "data_breach", srl_risk_level_name(r->data_breach)) &&
             put_str(ro, "data_tampering", srl_risk_level_name(r->data_tampering));
    }
    ok = ok && put_meta(o, &p->meta);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *srl_json_from_entity(const srl_entity_t *e, char *errstr, size_t errstr_size)
{
    json_t *o = NULL;
    if (!e) {
        snprintf(errstr, errstr_size, "no entity");
        return NULL;
    }
    switch (e->kind) {
    case SRL_KIND_ASSESSMENT_TYPE:
        o = type_json(&e->u.type);
        break;
    case SRL_KIND_ASSESSMENT:
        o = assessment_json(&e->u.assessment);
        break;
    case SRL_KIND_POLICY:
        o = policy_json(&e->u.policy);
        break;
    default:
        snprintf(errstr, errstr_size, "unknown kind %d", (int)e->kind);
        return NULL;
    }
    if (!o)
        snprintf(errstr, errstr_size, "%s: out of memory or an enum value out of range",
                 srl_kind_name(e->kind));
    return o;
}

/* ------------------------------------------------------------------ */
/* input                                                                */

/* Rejects members not in the NULL-terminated list. */
static bool only_known(jctx_t *c, const json_t *obj, const char *path, const char *const *known)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        bool found = false;
        for (size_t i = 0; known[i]; i++)
            if (strcmp(known[i], key) == 0)
                found = true;
        if (!found) {
            char p[PATH_MAX_LEN];
            child_path(p, path, key);
            return fail(c, p, "unknown field");
        }
    }
    return true;
}

/* The member, or NULL when it is missing or JSON null. */
static json_t *member(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

static bool get_string(jctx_t *c, const json_t *obj, const char *key, const char *path,
                       bool required, char **out)
{
    char p[PATH_MAX_LEN];
    json_t *v = member(obj, key);
    child_path(p, path, key);
    if (!v)
        return required ? fail(c, p, "required") : true;
    if (!json_is_string(v))
        return fail(c, p, "expected a string, got %s", json_type_name(v));
    const char *s = json_string_value(v);
    if (strlen(s) != json_string_length(v))
        return fail(c, p, "contains a NUL character");
    if (required && s[0] == '\0')
        return fail(c, p, "must not be empty");
    *out = strdup(s);
    return *out != NULL || fail(c, p, "out of memory");
}

static bool get_bool(jctx_t *c, const json_t *obj, const char *key, const char *path, bool *out)
{
    char p[PATH_MAX_LEN];
    json_t *v = member(obj, key);
    if (!v)
        return true;
    if (!json_is_boolean(v)) {
        child_path(p, path, key);
        return fail(c, p, "expected true or false, got %s", json_type_name(v));
    }
    *out = json_is_true(v);
    return true;
}

static bool get_int64(jctx_t *c, const json_t *obj, const char *key, const char *path,
                      bool *present, int64_t *out)
{
    char p[PATH_MAX_LEN];
    json_t *v = member(obj, key);
    if (present)
        *present = v != NULL;
    if (!v)
        return true;
    if (!json_is_integer(v)) {
        child_path(p, path, key);
        return fail(c, p, "expected an integer, got %s", json_type_name(v));
    }
    *out = json_integer_value(v);
    return true;
}

static bool get_time(jctx_t *c, const json_t *obj, const char *key, const char *path, bool *present,
                     int64_t *out)
{
    char p[PATH_MAX_LEN];
    json_t *v = member(obj, key);
    if (present)
        *present = v != NULL;
    if (!v)
        return true;
    child_path(p, path, key);
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return true;
    }
    if (!json_is_string(v))
        return fail(c, p, "expected an RFC 3339 time or integer milliseconds, got %s",
                    json_type_name(v));
    if (!srl_json_parse_time(json_string_value(v), out))
        return fail(c, p, "expected an RFC 3339 time like \"2026-11-26T12:00:00.000Z\", got \"%s\"",
                    json_string_value(v));
    return true;
}

static bool get_double(jctx_t *c, const json_t *obj, const char *key, const char *path, double *out)
{
    char p[PATH_MAX_LEN];
    json_t *v = member(obj, key);
    if (!v)
        return true;
    if (!json_is_number(v)) {
        child_path(p, path, key);
        return fail(c, p, "expected a number, got %s", json_type_name(v));
    }
    *out = json_number_value(v);
    return true;
}

/* Enum members: look up the symbol with the model's parse function and
 * list the allowed symbols in the error. */
typedef bool (*sym_parse_fn)(const char *s, int *out);
typedef void (*sym_list_fn)(char *buf, size_t size);

static bool get_enum_sym(jctx_t *c, const json_t *obj, const char *key, const char *path, int *out,
                         sym_parse_fn parse, sym_list_fn list)
{
    char p[PATH_MAX_LEN];
    json_t *v = member(obj, key);
    if (!v)
        return true;
    child_path(p, path, key);
    if (!json_is_string(v))
        return fail(c, p, "expected a string, got %s", json_type_name(v));
    if (!parse(json_string_value(v), out)) {
        char allowed[256];
        list(allowed, sizeof(allowed));
        return fail(c, p, "unknown value \"%s\" (expected one of %s)", json_string_value(v),
                    allowed);
    }
    return true;
}

/* Typed wrappers so that the enum fields (C enums, int-sized) can go
 * through one helper without casting function pointers. */
#define SYM_ADAPTER(prefix, type, count)                                     \
    static bool prefix##_sym_parse(const char *s, int *out)                  \
    {                                                                        \
        type v;                                                              \
        if (!prefix##_parse(s, &v))                                          \
            return false;                                                    \
        *out = (int)v;                                                       \
        return true;                                                         \
    }                                                                        \
    static void prefix##_sym_list(char *buf, size_t size)                    \
    {                                                                        \
        size_t used = 0;                                                     \
        buf[0] = '\0';                                                       \
        for (int i = 0; i < (int)(count); i++) {                             \
            int n = snprintf(buf + used, size - used, "%s%s", i ? ", " : "", \
                             prefix##_name((type)i));                        \
            if (n < 0 || (size_t)n >= size - used)                           \
                break;                                                       \
            used += (size_t)n;                                               \
        }                                                                    \
    }

SYM_ADAPTER(srl_severity_class, srl_severity_class_t, SRL_SEVERITY_CLASS_COUNT)
SYM_ADAPTER(srl_severity, srl_severity_t, SRL_SEVERITY_COUNT)
SYM_ADAPTER(srl_scope_kind, srl_scope_kind_t, SRL_SCOPE_COUNT)
SYM_ADAPTER(srl_outcome, srl_outcome_t, SRL_OUTCOME_COUNT)
SYM_ADAPTER(srl_risk_level, srl_risk_level_t, SRL_RISK_COUNT)
SYM_ADAPTER(srl_auto_rule_kind, srl_auto_rule_kind_t, SRL_AUTO_RULE_PVRS + 1)

/* C enums here are int-sized (model.h has no value beyond int), so an enum
 * member is read and written through an int. */
_Static_assert(sizeof(srl_outcome_t) == sizeof(int), "enums are int-sized");
#define ENUM_FIELD(c, obj, key, path, prefix, field) \
    get_enum_sym(c, obj, key, path, (int *)&(field), prefix##_sym_parse, prefix##_sym_list)

static bool want_object(jctx_t *c, const json_t *v, const char *path)
{
    if (!v)
        return fail(c, path[0] ? path : "(top)", "expected an object, got nothing");
    if (!json_is_object(v))
        return fail(c, path[0] ? path : "(top)", "expected an object, got %s", json_type_name(v));
    return true;
}

static bool get_meta(jctx_t *c, const json_t *obj, srl_meta_t *m)
{
    return get_string(c, obj, "origin", "", false, &m->origin) &&
           get_int64(c, obj, "version", "", NULL, &m->version) &&
           get_time(c, obj, "changed_at", "", NULL, &m->changed_at);
}

static bool type_from_json(jctx_t *c, const json_t *o, srl_assessment_type_t *t)
{
    static const char *const known[] = {
        "name",      "description",         "color",    "severity_class", "emitted_severity",
        "auto_rule", "default_expiry_days", "inactive", "built_in",       "origin",
        "version",   "changed_at",          NULL};
    static const char *const rule_known[] = {"kind", "cvss_min", "cvss_max", "pvrs_categories",
                                             NULL};
    t->severity_class = SRL_SEVERITY_CLASS_WARN;
    t->emitted_severity = SRL_SEVERITY_UNSET;
    t->auto_rule.cvss_min = 0.0;
    t->auto_rule.cvss_max = 10.0;
    if (!want_object(c, o, "") || !only_known(c, o, "", known) ||
        !get_string(c, o, "name", "", true, &t->name) ||
        !get_string(c, o, "description", "", false, &t->description) ||
        !get_string(c, o, "color", "", false, &t->color) ||
        !ENUM_FIELD(c, o, "severity_class", "", srl_severity_class, t->severity_class) ||
        !get_bool(c, o, "inactive", "", &t->inactive) ||
        !get_bool(c, o, "built_in", "", &t->built_in) || !get_meta(c, o, &t->meta))
        return false;
    if (member(o, "emitted_severity")) {
        t->emitted_severity = SRL_SEVERITY_NONE;
        if (!ENUM_FIELD(c, o, "emitted_severity", "", srl_severity, t->emitted_severity))
            return false;
    }
    int64_t days = 0;
    if (!get_int64(c, o, "default_expiry_days", "", &t->has_default_expiry_days, &days))
        return false;
    if (t->has_default_expiry_days) {
        if (days < 1 || days > 36500)
            return fail(c, "default_expiry_days", "must be 1..36500, got %" PRId64, days);
        t->default_expiry_days = (int32_t)days;
    }
    const json_t *r = member(o, "auto_rule");
    if (r) {
        if (!want_object(c, r, "auto_rule") || !only_known(c, r, "auto_rule", rule_known))
            return false;
        if (!member(r, "kind"))
            return fail(c, "auto_rule.kind", "required");
        if (!ENUM_FIELD(c, r, "kind", "auto_rule", srl_auto_rule_kind, t->auto_rule.kind) ||
            !get_double(c, r, "cvss_min", "auto_rule", &t->auto_rule.cvss_min) ||
            !get_double(c, r, "cvss_max", "auto_rule", &t->auto_rule.cvss_max))
            return false;
        const json_t *cats = member(r, "pvrs_categories");
        if (cats) {
            if (!json_is_array(cats))
                return fail(c, "auto_rule.pvrs_categories", "expected an array, got %s",
                            json_type_name(cats));
            size_t n = json_array_size(cats);
            if (n > 0) {
                t->auto_rule.pvrs_categories = calloc(n, sizeof(int32_t));
                if (!t->auto_rule.pvrs_categories)
                    return fail(c, "auto_rule.pvrs_categories", "out of memory");
            }
            for (size_t i = 0; i < n; i++) {
                const json_t *v = json_array_get(cats, i);
                char p[PATH_MAX_LEN];
                index_path(p, "auto_rule.pvrs_categories", i);
                if (!json_is_integer(v))
                    return fail(c, p, "expected an integer, got %s", json_type_name(v));
                json_int_t x = json_integer_value(v);
                if (x < INT32_MIN || x > INT32_MAX)
                    return fail(c, p, "must be 1..5, got %" JSON_INTEGER_FORMAT, x);
                t->auto_rule.pvrs_categories[i] = (int32_t)x;
                t->auto_rule.pvrs_count = i + 1;
            }
        }
    }
    return true;
}

static bool assessment_from_json(jctx_t *c, const json_t *o, srl_assessment_t *a)
{
    static const char *const known[] = {"vulnerability_id",
                                        "scope",
                                        "assessment_type",
                                        "comment",
                                        "package_filter",
                                        "expires_at",
                                        "automatic",
                                        "assessed_by",
                                        "assessed_at",
                                        "origin",
                                        "version",
                                        "changed_at",
                                        NULL};
    static const char *const scope_known[] = {"kind", "name", NULL};
    static const char *const filter_known[] = {"name", "version_range", NULL};
    if (!want_object(c, o, "") || !only_known(c, o, "", known) ||
        !get_string(c, o, "vulnerability_id", "", true, &a->vulnerability_id))
        return false;
    const json_t *scope = member(o, "scope");
    if (!scope)
        return fail(c, "scope", "required");
    if (!want_object(c, scope, "scope") || !only_known(c, scope, "scope", scope_known))
        return false;
    if (!member(scope, "kind"))
        return fail(c, "scope.kind", "required");
    if (!ENUM_FIELD(c, scope, "kind", "scope", srl_scope_kind, a->scope_kind) ||
        !get_string(c, scope, "name", "scope", false, &a->scope_name) ||
        !get_string(c, o, "assessment_type", "", true, &a->assessment_type) ||
        !get_string(c, o, "comment", "", false, &a->comment))
        return false;
    const json_t *f = member(o, "package_filter");
    if (f) {
        a->has_package_filter = true;
        if (!want_object(c, f, "package_filter") ||
            !only_known(c, f, "package_filter", filter_known) ||
            !get_string(c, f, "name", "package_filter", true, &a->package_name) ||
            !get_string(c, f, "version_range", "package_filter", false, &a->package_version_range))
            return false;
    }
    return get_time(c, o, "expires_at", "", &a->has_expires_at, &a->expires_at) &&
           get_bool(c, o, "automatic", "", &a->automatic) &&
           get_string(c, o, "assessed_by", "", false, &a->assessed_by) &&
           get_time(c, o, "assessed_at", "", NULL, &a->assessed_at) && get_meta(c, o, &a->meta);
}

static bool outcome_map_from_json(jctx_t *c, const json_t *o, const char *key,
                                  srl_outcome_entry_t **items, size_t *count)
{
    const json_t *m = member(o, key);
    if (!m)
        return true;
    if (!json_is_object(m))
        return fail(c, key, "expected an object of name: outcome, got %s", json_type_name(m));
    size_t n = json_object_size(m);
    if (n == 0)
        return true;
    *items = calloc(n, sizeof(**items));
    if (!*items)
        return fail(c, key, "out of memory");
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)m, name, v) {
        char p[PATH_MAX_LEN];
        child_path(p, key, name);
        if (name[0] == '\0')
            return fail(c, key, "empty name");
        if (!json_is_string(v))
            return fail(c, p, "expected a string, got %s", json_type_name(v));
        srl_outcome_entry_t *e = &(*items)[*count];
        int out = 0;
        if (!srl_outcome_sym_parse(json_string_value(v), &out)) {
            char allowed[128];
            srl_outcome_sym_list(allowed, sizeof(allowed));
            return fail(c, p, "unknown value \"%s\" (expected one of %s)", json_string_value(v),
                        allowed);
        }
        e->outcome = (srl_outcome_t)out;
        e->name = strdup(name);
        if (!e->name)
            return fail(c, p, "out of memory");
        (*count)++;
    }
    return true;
}

static bool exception_from_json(jctx_t *c, const json_t *xo, const char *path,
                                srl_policy_exception_t *x)
{
    static const char *const known[] = {"package", "version_range", "rule_groups", "expires_at",
                                        NULL};
    if (!want_object(c, xo, path) || !only_known(c, xo, path, known) ||
        !get_string(c, xo, "package", path, true, &x->package) ||
        !get_string(c, xo, "version_range", path, false, &x->version_range) ||
        !get_time(c, xo, "expires_at", path, &x->has_expires_at, &x->expires_at))
        return false;
    const json_t *groups = member(xo, "rule_groups");
    char gp[PATH_MAX_LEN];
    child_path(gp, path, "rule_groups");
    if (!groups)
        return true;
    if (!json_is_array(groups))
        return fail(c, gp, "expected an array, got %s", json_type_name(groups));
    for (size_t i = 0; i < json_array_size(groups); i++) {
        const json_t *g = json_array_get(groups, i);
        char p[PATH_MAX_LEN];
        unsigned bit;
        index_path(p, gp, i);
        if (!json_is_string(g))
            return fail(c, p, "expected a string, got %s", json_type_name(g));
        if (!srl_rule_group_parse(json_string_value(g), &bit))
            return fail(c, p,
                        "unknown value \"%s\" (expected one of license, deprecation, unlisted)",
                        json_string_value(g));
        x->rule_groups |= bit;
    }
    return true;
}

static bool policy_from_json(jctx_t *c, const json_t *o, srl_policy_t *p)
{
    static const char *const known[] = {"name",
                                        "description",
                                        "feeds",
                                        "unassessed",
                                        "by_assessment_type",
                                        "license_undetected",
                                        "license_other",
                                        "by_license",
                                        "deprecated",
                                        "unlisted",
                                        "exceptions",
                                        "risk_profile",
                                        "origin",
                                        "version",
                                        "changed_at",
                                        NULL};
    static const char *const risk_known[] = {"network_exposure", "access_interface",
                                             "service_outage",   "data_breach",
                                             "data_tampering",   NULL};
    if (!want_object(c, o, "") || !only_known(c, o, "", known) ||
        !get_string(c, o, "name", "", true, &p->name) ||
        !get_string(c, o, "description", "", false, &p->description) ||
        !ENUM_FIELD(c, o, "unassessed", "", srl_outcome, p->unassessed) ||
        !ENUM_FIELD(c, o, "license_undetected", "", srl_outcome, p->license_undetected) ||
        !ENUM_FIELD(c, o, "license_other", "", srl_outcome, p->license_other) ||
        !ENUM_FIELD(c, o, "deprecated", "", srl_outcome, p->deprecated) ||
        !ENUM_FIELD(c, o, "unlisted", "", srl_outcome, p->unlisted) ||
        !outcome_map_from_json(c, o, "by_assessment_type", &p->by_assessment_type,
                               &p->by_assessment_type_count) ||
        !outcome_map_from_json(c, o, "by_license", &p->by_license, &p->by_license_count) ||
        !get_meta(c, o, &p->meta))
        return false;

    const json_t *feeds = member(o, "feeds");
    if (feeds) {
        if (!json_is_array(feeds))
            return fail(c, "feeds", "expected an array, got %s", json_type_name(feeds));
        size_t n = json_array_size(feeds);
        if (n > 0 && !(p->feeds = calloc(n, sizeof(char *))))
            return fail(c, "feeds", "out of memory");
        for (size_t i = 0; i < n; i++) {
            const json_t *v = json_array_get(feeds, i);
            char path[PATH_MAX_LEN];
            index_path(path, "feeds", i);
            if (!json_is_string(v) || json_string_value(v)[0] == '\0')
                return fail(c, path, "expected a non-empty string, got %s",
                            json_is_string(v) ? "\"\"" : json_type_name(v));
            if (!(p->feeds[i] = strdup(json_string_value(v))))
                return fail(c, path, "out of memory");
            p->feed_count = i + 1;
        }
    }

    const json_t *exc = member(o, "exceptions");
    if (exc) {
        if (!json_is_array(exc))
            return fail(c, "exceptions", "expected an array, got %s", json_type_name(exc));
        size_t n = json_array_size(exc);
        if (n > 0 && !(p->exceptions = calloc(n, sizeof(*p->exceptions))))
            return fail(c, "exceptions", "out of memory");
        for (size_t i = 0; i < n; i++) {
            char path[PATH_MAX_LEN];
            index_path(path, "exceptions", i);
            p->exception_count = i + 1; /* so that clear frees a partial one */
            if (!exception_from_json(c, json_array_get(exc, i), path, &p->exceptions[i]))
                return false;
        }
    }

    const json_t *r = member(o, "risk_profile");
    if (r) {
        srl_risk_profile_t *rp = &p->risk_profile;
        p->has_risk_profile = true;
        if (!want_object(c, r, "risk_profile") || !only_known(c, r, "risk_profile", risk_known) ||
            !ENUM_FIELD(c, r, "network_exposure", "risk_profile", srl_risk_level,
                        rp->network_exposure) ||
            !ENUM_FIELD(c, r, "access_interface", "risk_profile", srl_risk_level,
                        rp->access_interface) ||
            !ENUM_FIELD(c, r, "service_outage", "risk_profile", srl_risk_level,
                        rp->service_outage) ||
            !ENUM_FIELD(c, r, "data_breach", "risk_profile", srl_risk_level, rp->data_breach) ||
            !ENUM_FIELD(c, r, "data_tampering", "risk_profile", srl_risk_level, rp->data_tampering))
            return false;
    }
    return true;
}

bool srl_json_to_entity(const json_t *obj, srl_kind_t kind, srl_entity_t *e, char *errstr,
                        size_t errstr_size)
{
    jctx_t c = {errstr, errstr_size};
    bool ok;

    memset(e, 0, sizeof(*e));
    e->kind = kind;
    switch (kind) {
    case SRL_KIND_ASSESSMENT_TYPE:
        ok = type_from_json(&c, obj, &e->u.type);
        break;
    case SRL_KIND_ASSESSMENT:
        ok = assessment_from_json(&c, obj, &e->u.assessment);
        break;
    case SRL_KIND_POLICY:
        ok = policy_from_json(&c, obj, &e->u.policy);
        break;
    default:
        snprintf(errstr, errstr_size, "unknown kind %d", (int)kind);
        return false;
    }
    ok = ok && srl_entity_validate(e, errstr, errstr_size);
    if (!ok) {
        srl_entity_clear(e);
        e->kind = kind;
    }
    return ok;
}

/* ------------------------------------------------------------------ */
/* validation of form                                                   */

/* The vulnerability id rules of the table (rules.c), on an id alone. */
bool srl_vulnerability_id_valid(const char *id)
{
    if (!id)
        return false;
    srl_entity_t e;
    memset(&e, 0, sizeof(e));
    e.kind = SRL_KIND_ASSESSMENT;
    e.u.assessment.vulnerability_id = (char *)id; /* read only, never freed here */
    size_t n;
    const srl_rule_t *rules = srl_rules(&n);
    for (size_t i = 0; i < n; i++) {
        char at[8], got[8];
        if (rules[i].kind == SRL_KIND_ASSESSMENT &&
            strcmp(rules[i].field, "vulnerability_id") == 0 &&
            !rules[i].holds(&e, at, sizeof(at), got, sizeof(got)))
            return false;
    }
    return true;
}

/* Every rule of the table (rules.h): the same rules as the store's CHECK
 * constraints, with the same text. */
bool srl_entity_validate(const srl_entity_t *e, char *errstr, size_t errstr_size)
{
    if ((unsigned)e->kind >= SRL_KIND_COUNT) {
        jctx_t c = {errstr, errstr_size};
        return fail(&c, "kind", "unknown kind %d", (int)e->kind);
    }
    return srl_rules_check(e, errstr, errstr_size) == NULL;
}
