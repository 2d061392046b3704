/*
 * rows_copy.c - model.h entities as COPY text rows of the content tables
 * (see sysrepl/rows.h). Enums are written as their lowercase symbols, times as bigint
 * milliseconds, a policy's nested rule sets as jsonb in json.h's form (the
 * same form the CLI writes on the hub, so hub and spoke rows compare equal).
 */
#include "sysrepl/rows.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "sysrepl/json.h"

const char *srl_rows_columns(srl_kind_t kind)
{
    switch (kind) {
    case SRL_KIND_ASSESSMENT_TYPE:
        return "name, description, color, severity_class, emitted_severity, auto_rule, "
               "cvss_min, cvss_max, pvrs_categories, default_expiry_days, inactive, built_in, "
               "origin, version, changed_at";
    case SRL_KIND_ASSESSMENT:
        return "vulnerability_id, assessment_type, comment, scope_kind, scope_name, "
               "package_name, package_version_range, expires_at, automatic, assessed_by, "
               "assessed_at, origin, version, changed_at";
    case SRL_KIND_POLICY:
        return "name, description, feeds, unassessed, by_assessment_type, license_undetected, "
               "license_other, by_license, deprecated, unlisted, exceptions, risk_profile, "
               "origin, version, changed_at";
    default:
        return NULL;
    }
}

static bool str(srl_buf_t *out, const char *s)
{
    return srl_copy_field(out, s, s ? strlen(s) : 0, '\t');
}

static bool i64(srl_buf_t *out, int64_t v)
{
    char num[32];
    int n = snprintf(num, sizeof(num), "%" PRId64, v);
    return srl_copy_field(out, num, (size_t)n, '\t');
}

static bool dbl(srl_buf_t *out, double v)
{
    char num[40];
    int n = snprintf(num, sizeof(num), "%.17g", v);
    return srl_copy_field(out, num, (size_t)n, '\t');
}

static bool boolean(srl_buf_t *out, bool v)
{
    return srl_copy_field(out, v ? "t" : "f", 1, '\t');
}

/* The last field of a row: origin, version, changed_at, then the newline. */
static bool meta(srl_buf_t *out, const srl_meta_t *m)
{
    char num[32];
    int n = snprintf(num, sizeof(num), "%" PRId64, m->changed_at);
    return str(out, m->origin ? m->origin : "") && i64(out, m->version) &&
           srl_copy_field(out, num, (size_t)n, '\n');
}

/* A jsonb field from a member of the entity's JSON form (json.h), so the
 * nested rule sets have exactly the shape the CLI stores. */
static bool json_member(srl_buf_t *out, const json_t *obj, const char *name, const char *dflt)
{
    const json_t *v = json_object_get(obj, name);
    if (!v || json_is_null(v))
        return dflt ? str(out, dflt) : str(out, NULL);
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text)
        return false;
    bool ok = str(out, text);
    free(text);
    return ok;
}

/* A PostgreSQL array literal of strings: {"a","b\"c"}. */
static bool text_array(srl_buf_t *out, char *const *items, size_t count)
{
    srl_buf_t lit = {0};
    bool ok = srl_buf_add(&lit, "{", 1);
    for (size_t i = 0; ok && i < count; i++) {
        ok = (i == 0 || srl_buf_add(&lit, ",", 1)) && srl_buf_add(&lit, "\"", 1);
        for (const char *p = items[i]; ok && *p; p++)
            ok = (*p == '"' || *p == '\\' ? srl_buf_add(&lit, "\\", 1) : true) &&
                 srl_buf_add(&lit, p, 1);
        ok = ok && srl_buf_add(&lit, "\"", 1);
    }
    ok = ok && srl_buf_add(&lit, "}", 1) && srl_copy_field(out, lit.data, lit.len, '\t');
    srl_buf_free(&lit);
    return ok;
}

static bool type_row(srl_buf_t *out, const srl_assessment_type_t *t)
{
    bool ok = str(out, t->name) && str(out, t->description) && str(out, t->color) &&
              str(out, srl_severity_class_name(t->severity_class)) &&
              str(out, t->emitted_severity == SRL_SEVERITY_UNSET
                           ? NULL
                           : srl_severity_name(t->emitted_severity)) &&
              str(out, srl_auto_rule_kind_name(t->auto_rule.kind));
    if (ok && t->auto_rule.kind == SRL_AUTO_RULE_CVSS)
        ok = dbl(out, t->auto_rule.cvss_min) && dbl(out, t->auto_rule.cvss_max);
    else if (ok)
        ok = str(out, NULL) && str(out, NULL);
    if (ok && t->auto_rule.kind == SRL_AUTO_RULE_PVRS) {
        srl_buf_t lit = {0};
        ok = srl_buf_add(&lit, "{", 1);
        for (size_t i = 0; ok && i < t->auto_rule.pvrs_count; i++) {
            char num[16];
            int n = snprintf(num, sizeof(num), "%s%d", i ? "," : "",
                             (int)t->auto_rule.pvrs_categories[i]);
            ok = srl_buf_add(&lit, num, (size_t)n);
        }
        ok = ok && srl_buf_add(&lit, "}", 1) && srl_copy_field(out, lit.data, lit.len, '\t');
        srl_buf_free(&lit);
    } else if (ok) {
        ok = str(out, NULL);
    }
    if (ok)
        ok = (t->has_default_expiry_days ? i64(out, t->default_expiry_days) : str(out, NULL)) &&
             boolean(out, t->inactive) && boolean(out, t->built_in);
    return ok && meta(out, &t->meta);
}

static bool assessment_row(srl_buf_t *out, const srl_assessment_t *a)
{
    return str(out, a->vulnerability_id) && str(out, a->assessment_type) && str(out, a->comment) &&
           str(out, srl_scope_kind_name(a->scope_kind)) &&
           str(out, a->scope_kind == SRL_SCOPE_GLOBAL ? NULL : a->scope_name) &&
           str(out, a->has_package_filter ? a->package_name : NULL) &&
           str(out, a->has_package_filter ? a->package_version_range : NULL) &&
           (a->has_expires_at ? i64(out, a->expires_at) : str(out, NULL)) &&
           boolean(out, a->automatic) && str(out, a->assessed_by) && i64(out, a->assessed_at) &&
           meta(out, &a->meta);
}

static bool policy_row(srl_buf_t *out, const srl_entity_t *e, char *errstr, size_t errstr_size)
{
    const srl_policy_t *p = &e->u.policy;
    json_t *j = srl_json_from_entity(e, errstr, errstr_size);
    if (!j)
        return false;
    bool ok = str(out, p->name) && str(out, p->description) &&
              text_array(out, p->feeds, p->feed_count) &&
              str(out, srl_outcome_name(p->unassessed)) &&
              json_member(out, j, "by_assessment_type", "{}") &&
              str(out, srl_outcome_name(p->license_undetected)) &&
              str(out, srl_outcome_name(p->license_other)) &&
              json_member(out, j, "by_license", "{}") &&
              str(out, srl_outcome_name(p->deprecated)) &&
              str(out, srl_outcome_name(p->unlisted)) && json_member(out, j, "exceptions", "[]") &&
              json_member(out, j, "risk_profile", NULL) && meta(out, &p->meta);
    json_decref(j);
    if (!ok)
        snprintf(errstr, errstr_size, "policy %s: cannot format row", p->name ? p->name : "?");
    return ok;
}

/* Whether s[0..n) is well-formed UTF-8 (no overlongs, no surrogates). */
static bool utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            len = 2, cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3, cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4, cp = c & 0x07;
        } else {
            return false;
        }
        if (i + len > n)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

bool srl_rows_format(srl_buf_t *out, const srl_entity_t *e, bool with_key, const char *key,
                     char *errstr, size_t errstr_size)
{
    size_t mark = out->len;
    bool ok = true;
    if (errstr_size)
        errstr[0] = '\0';
    if (with_key)
        ok = str(out, key);
    switch (e->kind) {
    case SRL_KIND_ASSESSMENT_TYPE:
        ok = ok && type_row(out, &e->u.type);
        break;
    case SRL_KIND_ASSESSMENT:
        ok = ok && assessment_row(out, &e->u.assessment);
        break;
    case SRL_KIND_POLICY:
        ok = ok && policy_row(out, e, errstr, errstr_size);
        break;
    default:
        snprintf(errstr, errstr_size, "unknown kind %d", (int)e->kind);
        ok = false;
    }
    /* The store would refuse the whole COPY over one bad string: check
     * here, so the record alone is dead-lettered. */
    if (ok && !utf8_valid((const unsigned char *)out->data + mark, out->len - mark)) {
        snprintf(errstr, errstr_size, "a string field is not valid UTF-8");
        ok = false;
    }
    if (!ok) {
        out->len = mark; /* never leave half a row */
        if (!errstr[0])
            snprintf(errstr, errstr_size, "out of memory formatting a row");
    }
    return ok;
}
