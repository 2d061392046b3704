/*
 * rules.c - the one validation rule of replicated content (rules.h): one
 * table row per rule, with its C test and its SQL CHECK side by side.
 *
 * Texts and checks may name a set of enum symbols, taken from model.c so a
 * new symbol reaches both sides at once:
 *   {S:in}    'a', 'b', 'c'               (SQL IN lists)
 *   {S:path}  @ == "a" || @ == "b" || ..  (jsonpath filters)
 *   {S:words} a, b, c                     (texts)
 * with S one of severity_class, severity, auto_rule, scope, outcome, risk,
 * rule_group; any other {...} (a regex's {4}) is kept as it is. A check never refuses a NULL result
 * (SQL CHECK semantics), so checks that must refuse a NULL say so with coalesce.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sysrepl/keys.h"
#include "sysrepl/rules.h"

#define STR_(x) #x
#define STR(x) STR_(x)
#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))
#define VULN_ID_MAX 128 /* SRL_VULNERABILITY_ID_MAX (json.h) */

/* ------------------------------------------------------------------ */
/* symbol sets                                                          */

static const char *sym_severity_class(int v)
{
    return srl_severity_class_name((srl_severity_class_t)v);
}
static const char *sym_severity(int v)
{
    return srl_severity_name((srl_severity_t)v);
}
static const char *sym_auto_rule(int v)
{
    return srl_auto_rule_kind_name((srl_auto_rule_kind_t)v);
}
static const char *sym_scope(int v)
{
    return srl_scope_kind_name((srl_scope_kind_t)v);
}
static const char *sym_outcome(int v)
{
    return srl_outcome_name((srl_outcome_t)v);
}
static const char *sym_risk(int v)
{
    return srl_risk_level_name((srl_risk_level_t)v);
}
static const char *sym_rule_group(int v)
{
    return v >= 0 && v < 31 ? srl_rule_group_name(1u << v) : NULL;
}

static const struct {
    const char *name;
    const char *(*symbol)(int);
} symbol_sets[] = {{"severity_class", sym_severity_class},
                   {"severity", sym_severity},
                   {"auto_rule", sym_auto_rule},
                   {"scope", sym_scope},
                   {"outcome", sym_outcome},
                   {"risk", sym_risk},
                   {"rule_group", sym_rule_group}};

/* Expand the {S:form} placeholders of src into out; false if it does not
 * fit or names an unknown set (a bug in the table; the unit test runs
 * every row). */
static bool expand(const char *src, char *out, size_t out_size)
{
    size_t n = 0;
    out[0] = '\0';
    for (const char *p = src; *p;) {
        const char *end = *p == '{' ? strchr(p, '}') : NULL;
        if (!end) {
            if (n + 1 >= out_size)
                return false;
            out[n++] = *p++;
            out[n] = '\0';
            continue;
        }
        char name[32] = "", form[8] = "";
        const char *colon = memchr(p, ':', (size_t)(end - p));
        const char *(*symbol)(int) = NULL;
        if (colon && (size_t)(colon - p - 1) < sizeof(name) &&
            (size_t)(end - colon - 1) < sizeof(form)) {
            snprintf(name, sizeof(name), "%.*s", (int)(colon - p - 1), p + 1);
            snprintf(form, sizeof(form), "%.*s", (int)(end - colon - 1), colon + 1);
            for (size_t i = 0; i < COUNT_OF(symbol_sets); i++)
                if (strcmp(symbol_sets[i].name, name) == 0)
                    symbol = symbol_sets[i].symbol;
        }
        if (!symbol) { /* not a placeholder: a regex's {4}, {4,} */
            if (n + 1 >= out_size)
                return false;
            out[n++] = *p++;
            out[n] = '\0';
            continue;
        }
        for (int v = 0; symbol(v); v++) {
            const char *sep = v == 0 ? "" : strcmp(form, "path") == 0 ? " || " : ", ";
            int w;
            if (strcmp(form, "in") == 0)
                w = snprintf(out + n, out_size - n, "%s'%s'", sep, symbol(v));
            else if (strcmp(form, "path") == 0)
                w = snprintf(out + n, out_size - n, "%s@ == \"%s\"", sep, symbol(v));
            else if (strcmp(form, "words") == 0)
                w = snprintf(out + n, out_size - n, "%s%s", sep, symbol(v));
            else
                return false;
            if (w < 0 || (size_t)w >= out_size - n)
                return false;
            n += (size_t)w;
        }
        p = end + 1;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* the C tests                                                          */

#define HOLDS(fn) \
    static bool fn(const srl_entity_t *e, char *at, size_t at_size, char *got, size_t got_size)
#define UNUSED_ARGS() ((void)e, (void)at, (void)at_size, (void)got, (void)got_size)

static bool present(const char *s)
{
    return s && s[0];
}

static void quote(char *got, size_t got_size, const char *s)
{
    snprintf(got, got_size, "\"%.200s%s\"", s, strlen(s) > 200 ? "..." : "");
}

static bool in_set(const char *(*symbol)(int), int v)
{
    return symbol(v) != NULL;
}

static bool int_got(bool ok, char *got, size_t got_size, long long v)
{
    if (!ok)
        snprintf(got, got_size, "%lld", v);
    return ok;
}

static bool double_in(double x, char *got, size_t got_size)
{
    bool ok = x >= 0.0 && x <= 10.0;
    if (!ok)
        snprintf(got, got_size, "%g", x);
    return ok;
}

/* assessment types */

HOLDS(type_name_required)
{
    UNUSED_ARGS();
    return present(e->u.type.name);
}
HOLDS(type_name_length)
{
    UNUSED_ARGS();
    return !e->u.type.name || strlen(e->u.type.name) <= SRL_KEY_MAX;
}
HOLDS(type_color_format)
{
    UNUSED_ARGS();
    const char *s = e->u.type.color;
    if (!s)
        return true;
    bool ok = strlen(s) == 7 && s[0] == '#';
    for (int i = 1; ok && i < 7; i++)
        ok = isxdigit((unsigned char)s[i]) != 0;
    if (!ok)
        quote(got, got_size, s);
    return ok;
}
HOLDS(type_severity_class)
{
    UNUSED_ARGS();
    return int_got(in_set(sym_severity_class, (int)e->u.type.severity_class), got, got_size,
                   e->u.type.severity_class);
}
HOLDS(type_emitted_severity)
{
    UNUSED_ARGS();
    srl_severity_t v = e->u.type.emitted_severity;
    return int_got(v == SRL_SEVERITY_UNSET || in_set(sym_severity, (int)v), got, got_size, v);
}
HOLDS(type_default_expiry_days)
{
    UNUSED_ARGS();
    const srl_assessment_type_t *t = &e->u.type;
    return int_got(!t->has_default_expiry_days ||
                       (t->default_expiry_days >= 1 && t->default_expiry_days <= 36500),
                   got, got_size, t->default_expiry_days);
}
HOLDS(type_auto_rule)
{
    UNUSED_ARGS();
    return int_got(in_set(sym_auto_rule, (int)e->u.type.auto_rule.kind), got, got_size,
                   e->u.type.auto_rule.kind);
}
HOLDS(type_cvss_min)
{
    UNUSED_ARGS();
    const srl_auto_rule_t *r = &e->u.type.auto_rule;
    return r->kind != SRL_AUTO_RULE_CVSS || double_in(r->cvss_min, got, got_size);
}
HOLDS(type_cvss_max)
{
    UNUSED_ARGS();
    const srl_auto_rule_t *r = &e->u.type.auto_rule;
    return r->kind != SRL_AUTO_RULE_CVSS || double_in(r->cvss_max, got, got_size);
}
HOLDS(type_cvss_present)
{
    UNUSED_ARGS(); /* an entity always has both bounds; only a row can lack one */
    return true;
}
HOLDS(type_cvss_order)
{
    UNUSED_ARGS();
    const srl_auto_rule_t *r = &e->u.type.auto_rule;
    if (r->kind != SRL_AUTO_RULE_CVSS || r->cvss_min <= r->cvss_max)
        return true;
    snprintf(got, got_size, "%g < %g", r->cvss_max, r->cvss_min);
    return false;
}
HOLDS(type_pvrs_required)
{
    UNUSED_ARGS();
    const srl_auto_rule_t *r = &e->u.type.auto_rule;
    return r->kind != SRL_AUTO_RULE_PVRS || r->pvrs_count > 0;
}
HOLDS(type_pvrs_range)
{
    UNUSED_ARGS();
    const srl_auto_rule_t *r = &e->u.type.auto_rule;
    for (size_t i = 0; i < r->pvrs_count; i++) {
        if (r->pvrs_categories[i] < 1 || r->pvrs_categories[i] > 5) {
            snprintf(at, at_size, "auto_rule.pvrs_categories[%zu]", i);
            return int_got(false, got, got_size, r->pvrs_categories[i]);
        }
    }
    return true;
}

/* vulnerability assessments */

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return n > 0;
}

static bool id_got(bool ok, const srl_assessment_t *a, char *got, size_t got_size)
{
    if (!ok)
        quote(got, got_size, a->vulnerability_id);
    return ok;
}

HOLDS(vuln_id_required)
{
    UNUSED_ARGS();
    return present(e->u.assessment.vulnerability_id);
}
HOLDS(vuln_id_length)
{
    UNUSED_ARGS();
    const srl_assessment_t *a = &e->u.assessment;
    return id_got(!a->vulnerability_id || strlen(a->vulnerability_id) <= VULN_ID_MAX, a, got,
                  got_size);
}
/* ^[A-Z][A-Z0-9]*-[A-Za-z0-9-]+$ */
HOLDS(vuln_id_form)
{
    UNUSED_ARGS();
    const srl_assessment_t *a = &e->u.assessment;
    const char *id = a->vulnerability_id ? a->vulnerability_id : "";
    bool ok = id[0] >= 'A' && id[0] <= 'Z';
    const char *p = id + (ok ? 1 : 0);
    for (; ok && *p && *p != '-'; p++)
        ok = (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9');
    ok = ok && *p == '-' && p[1] != '\0';
    for (p = ok ? p + 1 : p; ok && *p; p++)
        ok = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
             *p == '-';
    return id_got(ok, a, got, got_size);
}
/* ^CVE-[0-9]{4}-[0-9]{4,}$ */
HOLDS(vuln_id_cve)
{
    UNUSED_ARGS();
    const srl_assessment_t *a = &e->u.assessment;
    const char *id = a->vulnerability_id ? a->vulnerability_id : "";
    if (strncmp(id, "CVE-", 4) != 0)
        return true;
    const char *r = id + 4;
    size_t n = strlen(r);
    return id_got(n >= 9 && all_digits(r, 4) && r[4] == '-' && all_digits(r + 5, n - 5), a, got,
                  got_size);
}
/* ^PGV-[0-9]+$ */
HOLDS(vuln_id_pgv)
{
    UNUSED_ARGS();
    const srl_assessment_t *a = &e->u.assessment;
    const char *id = a->vulnerability_id ? a->vulnerability_id : "";
    if (strncmp(id, "PGV-", 4) != 0)
        return true;
    return id_got(all_digits(id + 4, strlen(id + 4)), a, got, got_size);
}
/* ^GHSA-[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4}$ */
HOLDS(vuln_id_ghsa)
{
    UNUSED_ARGS();
    const srl_assessment_t *a = &e->u.assessment;
    const char *id = a->vulnerability_id ? a->vulnerability_id : "";
    if (strncmp(id, "GHSA-", 5) != 0)
        return true;
    const char *r = id + 5;
    bool ok = strlen(r) == 14;
    for (size_t i = 0; ok && i < 14; i++)
        ok = (i == 4 || i == 9) ? r[i] == '-'
                                : (r[i] >= 'a' && r[i] <= 'z') || (r[i] >= '0' && r[i] <= '9');
    return id_got(ok, a, got, got_size);
}
HOLDS(assessment_scope_kind)
{
    UNUSED_ARGS();
    return int_got(in_set(sym_scope, (int)e->u.assessment.scope_kind), got, got_size,
                   e->u.assessment.scope_kind);
}
HOLDS(assessment_scope_name_absent)
{
    UNUSED_ARGS();
    const srl_assessment_t *a = &e->u.assessment;
    if (a->scope_kind != SRL_SCOPE_GLOBAL || !a->scope_name)
        return true;
    quote(got, got_size, a->scope_name);
    return false;
}
HOLDS(assessment_scope_name_required)
{
    UNUSED_ARGS();
    const srl_assessment_t *a = &e->u.assessment;
    return a->scope_kind == SRL_SCOPE_GLOBAL || present(a->scope_name);
}
HOLDS(assessment_type_required)
{
    UNUSED_ARGS();
    return present(e->u.assessment.assessment_type);
}
HOLDS(assessment_package_name_required)
{
    UNUSED_ARGS();
    const srl_assessment_t *a = &e->u.assessment;
    return !a->has_package_filter || present(a->package_name);
}
HOLDS(assessment_package_range_needs_name)
{
    UNUSED_ARGS();
    const srl_assessment_t *a = &e->u.assessment;
    return a->has_package_filter || (!a->package_name && !a->package_version_range);
}
HOLDS(assessment_key_length)
{
    UNUSED_ARGS();
    char *key = srl_key_dup(e);
    bool ok = !key || strlen(key) <= SRL_KEY_MAX;
    if (!ok)
        snprintf(got, got_size, "%zu bytes", strlen(key));
    free(key);
    return ok;
}

/* policies */

HOLDS(policy_name_required)
{
    UNUSED_ARGS();
    return present(e->u.policy.name);
}
HOLDS(policy_name_length)
{
    UNUSED_ARGS();
    return !e->u.policy.name || strlen(e->u.policy.name) <= SRL_KEY_MAX;
}
HOLDS(policy_feeds)
{
    UNUSED_ARGS();
    for (size_t i = 0; i < e->u.policy.feed_count; i++) {
        if (!present(e->u.policy.feeds[i])) {
            snprintf(at, at_size, "feeds[%zu]", i);
            return false;
        }
    }
    return true;
}

static bool outcome_ok(srl_outcome_t v, char *got, size_t got_size)
{
    return int_got(in_set(sym_outcome, (int)v), got, got_size, v);
}
HOLDS(policy_unassessed)
{
    UNUSED_ARGS();
    return outcome_ok(e->u.policy.unassessed, got, got_size);
}
HOLDS(policy_license_undetected)
{
    UNUSED_ARGS();
    return outcome_ok(e->u.policy.license_undetected, got, got_size);
}
HOLDS(policy_license_other)
{
    UNUSED_ARGS();
    return outcome_ok(e->u.policy.license_other, got, got_size);
}
HOLDS(policy_deprecated)
{
    UNUSED_ARGS();
    return outcome_ok(e->u.policy.deprecated, got, got_size);
}
HOLDS(policy_unlisted)
{
    UNUSED_ARGS();
    return outcome_ok(e->u.policy.unlisted, got, got_size);
}

static bool outcome_map_ok(const char *path, const srl_outcome_entry_t *m, size_t n, char *at,
                           size_t at_size, char *got, size_t got_size)
{
    for (size_t i = 0; i < n; i++) {
        if (!present(m[i].name)) {
            snprintf(at, at_size, "%s", path);
            snprintf(got, got_size, "an empty name at entry %zu", i);
            return false;
        }
        bool dup = false;
        for (size_t j = 0; j < i && !dup; j++)
            dup = strcmp(m[j].name, m[i].name) == 0;
        if (dup || !in_set(sym_outcome, (int)m[i].outcome)) {
            snprintf(at, at_size, "%s.%.200s", path, m[i].name);
            if (dup)
                snprintf(got, got_size, "a duplicate name");
            else
                snprintf(got, got_size, "%d", (int)m[i].outcome);
            return false;
        }
    }
    return true;
}
HOLDS(policy_by_assessment_type)
{
    return outcome_map_ok("by_assessment_type", e->u.policy.by_assessment_type,
                          e->u.policy.by_assessment_type_count, at, at_size, got, got_size);
}
HOLDS(policy_by_license)
{
    return outcome_map_ok("by_license", e->u.policy.by_license, e->u.policy.by_license_count, at,
                          at_size, got, got_size);
}
HOLDS(policy_exception_package)
{
    UNUSED_ARGS();
    for (size_t i = 0; i < e->u.policy.exception_count; i++) {
        if (!present(e->u.policy.exceptions[i].package)) {
            snprintf(at, at_size, "exceptions[%zu].package", i);
            return false;
        }
    }
    return true;
}
HOLDS(policy_exception_rule_groups)
{
    UNUSED_ARGS();
    const unsigned known = SRL_RULE_GROUP_LICENSE | SRL_RULE_GROUP_DEPRECATION |
                           SRL_RULE_GROUP_UNLISTED;
    for (size_t i = 0; i < e->u.policy.exception_count; i++) {
        unsigned bits = e->u.policy.exceptions[i].rule_groups;
        if (bits & ~known) {
            snprintf(at, at_size, "exceptions[%zu].rule_groups", i);
            snprintf(got, got_size, "bits 0x%x", bits & ~known);
            return false;
        }
    }
    return true;
}
HOLDS(policy_risk_profile)
{
    UNUSED_ARGS();
    const srl_policy_t *p = &e->u.policy;
    if (!p->has_risk_profile)
        return true;
    const struct {
        const char *name;
        srl_risk_level_t v;
    } levels[] = {{"network_exposure", p->risk_profile.network_exposure},
                  {"access_interface", p->risk_profile.access_interface},
                  {"service_outage", p->risk_profile.service_outage},
                  {"data_breach", p->risk_profile.data_breach},
                  {"data_tampering", p->risk_profile.data_tampering}};
    for (size_t i = 0; i < COUNT_OF(levels); i++) {
        if (!in_set(sym_risk, (int)levels[i].v)) {
            snprintf(at, at_size, "risk_profile.%s", levels[i].name);
            return int_got(false, got, got_size, levels[i].v);
        }
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* the table                                                            */

#define T SRL_KIND_ASSESSMENT_TYPE
#define A SRL_KIND_ASSESSMENT
#define P SRL_KIND_POLICY
#define KEY_MAX_S STR(SRL_KEY_MAX)

/* Order: the order srl_entity_validate tries them, which is the order of
 * the fields, so the first message names the first broken field. */
static const srl_rule_t rules[] = {
    /* assessment_types */
    {T, "assessment_types_name_required", "name", "required, not empty", "name <> ''",
     type_name_required},
    {T, "assessment_types_name_length", "name",
     "at most " KEY_MAX_S " bytes (it is the record key)", "octet_length(name) <= " KEY_MAX_S,
     type_name_length},
    {T, "assessment_types_color_format", "color", "expected \"#rrggbb\"",
     "color ~ '^#[0-9a-fA-F]{6}$'", type_color_format},
    {T, "assessment_types_severity_class_symbol", "severity_class", "one of {severity_class:words}",
     "severity_class IN ({severity_class:in})", type_severity_class},
    {T, "assessment_types_emitted_severity_symbol", "emitted_severity",
     "absent or one of {severity:words}", "emitted_severity IN ({severity:in})",
     type_emitted_severity},
    {T, "assessment_types_default_expiry_days_range", "default_expiry_days",
     "must be 1..36500 when present", "default_expiry_days BETWEEN 1 AND 36500",
     type_default_expiry_days},
    {T, "assessment_types_auto_rule_symbol", "auto_rule.kind", "one of {auto_rule:words}",
     "auto_rule IN ({auto_rule:in})", type_auto_rule},
    {T, "assessment_types_cvss_min_range", "auto_rule.cvss_min",
     "must be between 0 and 10 when auto_rule.kind is cvss",
     "auto_rule <> 'cvss' OR cvss_min BETWEEN 0 AND 10", type_cvss_min},
    {T, "assessment_types_cvss_max_range", "auto_rule.cvss_max",
     "must be between 0 and 10 when auto_rule.kind is cvss",
     "auto_rule <> 'cvss' OR cvss_max BETWEEN 0 AND 10", type_cvss_max},
    {T, "assessment_types_cvss_bounds_present", "auto_rule",
     "cvss_min and cvss_max both required when auto_rule.kind is cvss",
     "auto_rule <> 'cvss' OR (cvss_min IS NOT NULL AND cvss_max IS NOT NULL)", type_cvss_present},
    {T, "assessment_types_cvss_order", "auto_rule.cvss_max",
     "must not be below cvss_min when auto_rule.kind is cvss",
     "auto_rule <> 'cvss' OR cvss_min <= cvss_max", type_cvss_order},
    {T, "assessment_types_pvrs_required", "auto_rule.pvrs_categories",
     "at least one category (1..5) required when auto_rule.kind is pvrs",
     "auto_rule <> 'pvrs' OR coalesce(cardinality(pvrs_categories), 0) > 0", type_pvrs_required},
    {T, "assessment_types_pvrs_range", "auto_rule.pvrs_categories",
     "must be 1..5 (each category, a flat list)",
     "pvrs_categories IS NULL OR coalesce(1 <= ALL (pvrs_categories)"
     " AND 5 >= ALL (pvrs_categories) AND coalesce(array_ndims(pvrs_categories), 1) = 1, false)",
     type_pvrs_range},

    /* vulnerability_assessments */
    {A, "vulnerability_assessments_vulnerability_id_required", "vulnerability_id",
     "required, not empty", "vulnerability_id <> ''", vuln_id_required},
    {A, "vulnerability_assessments_vulnerability_id_length", "vulnerability_id",
     "expected an id of at most " STR(VULN_ID_MAX) " bytes",
     "octet_length(vulnerability_id) <= " STR(VULN_ID_MAX), vuln_id_length},
    {A, "vulnerability_assessments_vulnerability_id_form", "vulnerability_id",
     "expected an id like \"PGV-1234567\", \"CVE-2021-44228\" or \"GHSA-xxxx-xxxx-xxxx\":"
     " PREFIX-REST, PREFIX an upper-case letter then upper-case letters or digits, REST"
     " letters, digits and '-' (^[A-Z][A-Z0-9]*-[A-Za-z0-9-]+$)",
     "vulnerability_id ~ '^[A-Z][A-Z0-9]*-[A-Za-z0-9-]+$'", vuln_id_form},
    {A, "vulnerability_assessments_vulnerability_id_cve", "vulnerability_id",
     "expected an id like \"CVE-2021-44228\": a CVE id is CVE-, 4 digits, '-', 4 or more digits"
     " (^CVE-[0-9]{4}-[0-9]{4,}$)",
     "left(vulnerability_id, 4) <> 'CVE-' OR vulnerability_id ~ '^CVE-[0-9]{4}-[0-9]{4,}$'",
     vuln_id_cve},
    {A, "vulnerability_assessments_vulnerability_id_pgv", "vulnerability_id",
     "expected an id like \"PGV-1234567\": a PGV id is PGV- and digits (^PGV-[0-9]+$)",
     "left(vulnerability_id, 4) <> 'PGV-' OR vulnerability_id ~ '^PGV-[0-9]+$'", vuln_id_pgv},
    {A, "vulnerability_assessments_vulnerability_id_ghsa", "vulnerability_id",
     "expected an id like \"GHSA-xxxx-xxxx-xxxx\": a GHSA id is GHSA- and three groups of 4"
     " lower-case letters or digits joined by '-' (^GHSA-[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4}$)",
     "left(vulnerability_id, 5) <> 'GHSA-'"
     " OR vulnerability_id ~ '^GHSA-[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4}$'",
     vuln_id_ghsa},
    {A, "vulnerability_assessments_scope_kind_symbol", "scope.kind", "one of {scope:words}",
     "scope_kind IN ({scope:in})", assessment_scope_kind},
    {A, "vulnerability_assessments_scope_name_absent", "scope.name",
     "must be absent when scope.kind is global", "scope_kind <> 'global' OR scope_name IS NULL",
     assessment_scope_name_absent},
    {A, "vulnerability_assessments_scope_name_required", "scope.name",
     "required, not empty, when scope.kind is not global",
     "scope_kind = 'global' OR coalesce(scope_name <> '', false)", assessment_scope_name_required},
    {A, "vulnerability_assessments_assessment_type_required", "assessment_type",
     "required, not empty", "assessment_type <> ''", assessment_type_required},
    {A, "vulnerability_assessments_package_name_required", "package_filter.name",
     "required, not empty, in a package filter", "package_name <> ''",
     assessment_package_name_required},
    {A, "vulnerability_assessments_package_range_needs_name", "package_filter",
     "version_range only with a package filter (package_filter.name)",
     "package_version_range IS NULL OR package_name IS NOT NULL",
     assessment_package_range_needs_name},
    {A, "vulnerability_assessments_key_length", "key",
     "the record key vulnerability_id|scope is at most " KEY_MAX_S " bytes",
     "octet_length(vulnerability_id || '|' || CASE WHEN scope_kind = 'global' THEN 'global'"
     " ELSE scope_kind || ':' || scope_name END) <= " KEY_MAX_S,
     assessment_key_length},

    /* policies */
    {P, "policies_name_required", "name", "required, not empty", "name <> ''",
     policy_name_required},
    {P, "policies_name_length", "name", "at most " KEY_MAX_S " bytes (it is the record key)",
     "octet_length(name) <= " KEY_MAX_S, policy_name_length},
    {P, "policies_feeds_not_empty", "feeds", "each feed a non-empty name (a flat list)",
     "coalesce('' <> ALL (feeds) AND array_position(feeds, NULL) IS NULL"
     " AND coalesce(array_ndims(feeds), 1) = 1, false)",
     policy_feeds},
    {P, "policies_unassessed_symbol", "unassessed", "one of {outcome:words}",
     "unassessed IN ({outcome:in})", policy_unassessed},
    {P, "policies_license_undetected_symbol", "license_undetected", "one of {outcome:words}",
     "license_undetected IN ({outcome:in})", policy_license_undetected},
    {P, "policies_license_other_symbol", "license_other", "one of {outcome:words}",
     "license_other IN ({outcome:in})", policy_license_other},
    {P, "policies_by_assessment_type_outcomes", "by_assessment_type",
     "names unique and not empty, each value one of {outcome:words}",
     "jsonb_typeof(by_assessment_type) = 'object' AND NOT by_assessment_type ? ''"
     " AND NOT jsonb_path_exists(by_assessment_type,"
     " '$.* ? (@.type() != \"string\" || !({outcome:path}))')",
     policy_by_assessment_type},
    {P, "policies_by_license_outcomes", "by_license",
     "names unique and not empty, each value one of {outcome:words}",
     "jsonb_typeof(by_license) = 'object' AND NOT by_license ? ''"
     " AND NOT jsonb_path_exists(by_license,"
     " '$.* ? (@.type() != \"string\" || !({outcome:path}))')",
     policy_by_license},
    {P, "policies_deprecated_symbol", "deprecated", "one of {outcome:words}",
     "deprecated IN ({outcome:in})", policy_deprecated},
    {P, "policies_unlisted_symbol", "unlisted", "one of {outcome:words}",
     "unlisted IN ({outcome:in})", policy_unlisted},
    {P, "policies_exception_package_required", "exceptions",
     "each exception has a package, a non-empty name",
     "jsonb_typeof(exceptions) = 'array' AND NOT jsonb_path_exists(exceptions,"
     " '$[*] ? (!(@.package.type() == \"string\") || @.package == \"\")')",
     policy_exception_package},
    {P, "policies_exception_rule_groups", "exceptions", "each rule group one of {rule_group:words}",
     "NOT jsonb_path_exists(exceptions,"
     " '$[*].rule_groups[*] ? (@.type() != \"string\" || !({rule_group:path}))')",
     policy_exception_rule_groups},
    {P, "policies_risk_profile_levels", "risk_profile", "each level one of {risk:words}",
     "risk_profile IS NULL OR (jsonb_typeof(risk_profile) = 'object'"
     " AND NOT jsonb_path_exists(risk_profile,"
     " '$.* ? (@.type() != \"string\" || !({risk:path}))'))",
     policy_risk_profile},
};

const srl_rule_t *srl_rules(size_t *count)
{
    *count = COUNT_OF(rules);
    return rules;
}

const srl_rule_t *srl_rule_find(const char *constraint)
{
    for (size_t i = 0; constraint && i < COUNT_OF(rules); i++)
        if (strcmp(rules[i].constraint, constraint) == 0)
            return &rules[i];
    return NULL;
}

const srl_rule_t *srl_rules_check(const srl_entity_t *e, char *errstr, size_t errstr_size)
{
    for (size_t i = 0; i < COUNT_OF(rules); i++) {
        const srl_rule_t *r = &rules[i];
        char at[256] = "", got[256] = "", text[512];
        if (r->kind != e->kind || r->holds(e, at, sizeof(at), got, sizeof(got)))
            continue;
        if (!expand(r->text, text, sizeof(text)))
            snprintf(text, sizeof(text), "%s", r->text);
        snprintf(errstr, errstr_size, "%s: %s%s%s", at[0] ? at : r->field, text,
                 got[0] ? ", got " : "", got);
        return r;
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* the migration                                                        */

/* The CHECK constraints of migration 001, each replaced by a rule below. */
static const char *const replaced[SRL_KIND_COUNT] = {
    "assessment_types_name_check, assessment_types_color_check,"
    " assessment_types_severity_class_check, assessment_types_emitted_severity_check,"
    " assessment_types_auto_rule_check, assessment_types_cvss_min_check,"
    " assessment_types_cvss_max_check, assessment_types_default_expiry_days_check",
    "vulnerability_assessments_vulnerability_id_check, vulnerability_assessments_scope_kind_check,"
    " vulnerability_assessments_check, vulnerability_assessments_check1",
    "policies_name_check, policies_unassessed_check, policies_license_undetected_check,"
    " policies_license_other_check, policies_deprecated_check, policies_unlisted_check"};

static void sql_quote(FILE *out, const char *s)
{
    fputc('\'', out);
    for (; *s; s++) {
        if (*s == '\'')
            fputc('\'', out);
        fputc(*s, out);
    }
    fputc('\'', out);
}

bool srl_rules_write_sql(FILE *out)
{
    char check[2048], text[512];
    fputs("-- 006_validation_rules.sql - the store's CHECK constraints are the rules\n"
          "-- every sysrepl program holds content to (common/rules.c), one constraint per\n"
          "-- rule, named by it, its COMMENT the rule's exact text (the message a program\n"
          "-- gives). Generated by tools/gen-rules.c from that table; do not edit\n"
          "-- (tests/unit/test_rules.c holds this file equal to the table).\n"
          "--\n"
          "-- A hub must never hold content its spokes refuse. The constraints are added\n"
          "-- NOT VALID, then every row is checked: if rows break a rule, the migration\n"
          "-- stops (nothing is changed) and names each rule with the number of rows\n"
          "-- that break it; fix or delete those rows and run `sysrepl init` again\n"
          "-- (docs/store.md). Otherwise every constraint is validated.\n",
          out);
    for (int k = 0; k < SRL_KIND_COUNT; k++) {
        const char *table = srl_kind_table((srl_kind_t)k);
        fprintf(out, "\n-- %s\n\nALTER TABLE %s\n", table, table);
        /* the replaced ones, one DROP each */
        const char *p = replaced[k];
        while (*p) {
            size_t n = strcspn(p, ",");
            fprintf(out, "    DROP CONSTRAINT IF EXISTS %.*s,\n", (int)n, p);
            p += n;
            while (*p == ',' || *p == ' ')
                p++;
        }
        bool first = true;
        for (size_t i = 0; i < COUNT_OF(rules); i++) {
            if ((int)rules[i].kind != k)
                continue;
            if (!expand(rules[i].check, check, sizeof(check)))
                return false;
            fprintf(out, "%s    ADD CONSTRAINT %s CHECK (%s) NOT VALID", first ? "" : ",\n",
                    rules[i].constraint, check);
            first = false;
        }
        fputs(";\n", out);
        for (size_t i = 0; i < COUNT_OF(rules); i++) {
            if ((int)rules[i].kind != k)
                continue;
            if (!expand(rules[i].text, text, sizeof(text)))
                return false;
            fprintf(out, "COMMENT ON CONSTRAINT %s ON %s IS ", rules[i].constraint, table);
            char full[768];
            snprintf(full, sizeof(full), "%s: %s", rules[i].field, text);
            sql_quote(out, full);
            fputs(";\n", out);
        }
    }
    fputs("\n-- Check the rows already held, then validate.\n"
          "DO $$\n"
          "DECLARE\n"
          "    c record;\n"
          "    n bigint;\n"
          "    report text := '';\n"
          "BEGIN\n"
          "    FOR c IN\n"
          "        SELECT con.conname, con.conrelid::regclass AS tab,\n"
          "               pg_get_expr(con.conbin, con.conrelid) AS expr,\n"
          "               obj_description(con.oid, 'pg_constraint') AS rule\n"
          "        FROM pg_constraint con\n"
          "        WHERE con.contype = 'c' AND NOT con.convalidated\n"
          "          AND con.conrelid IN ('assessment_types'::regclass,\n"
          "              'vulnerability_assessments'::regclass, 'policies'::regclass)\n"
          "        ORDER BY con.conname\n"
          "    LOOP\n"
          "        EXECUTE format('SELECT count(*) FROM %s WHERE NOT coalesce((%s), true)',\n"
          "                       c.tab, c.expr) INTO n;\n"
          "        IF n > 0 THEN\n"
          "            report := report || format(E'\\n  %s rows of %s break %s (%s)',\n"
          "                                       n, c.tab, c.conname, c.rule);\n"
          "        END IF;\n"
          "    END LOOP;\n"
          "    IF report <> '' THEN\n"
          "        RAISE EXCEPTION 'the store holds content its spokes would refuse:%', report\n"
          "            USING HINT = 'fix or delete these rows, then run sysrepl init again'\n"
          "                         ' (docs/store.md, \"Validation rules\")';\n"
          "    END IF;\n"
          "    FOR c IN\n"
          "        SELECT con.conname, con.conrelid::regclass AS tab FROM pg_constraint con\n"
          "        WHERE con.contype = 'c' AND NOT con.convalidated\n"
          "          AND con.conrelid IN ('assessment_types'::regclass,\n"
          "              'vulnerability_assessments'::regclass, 'policies'::regclass)\n"
          "    LOOP\n"
          "        EXECUTE format('ALTER TABLE %s VALIDATE CONSTRAINT %I', c.tab, c.conname);\n"
          "    END LOOP;\n"
          "END $$;\n",
          out);
    return !ferror(out);
}
