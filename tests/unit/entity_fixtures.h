/*
 * entity_fixtures.h - private to the unit tests: sample entities of every
 * kind (all optional fields present / all absent / many entries) and a
 * field-by-field comparison that says which field differs.
 */
#ifndef SRL_TEST_ENTITY_FIXTURES_H
#define SRL_TEST_ENTITY_FIXTURES_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sysrepl/model.h"

static inline char *fx_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Every optional field present, non-ASCII text, lists with several entries. */
static inline void fx_type_full(srl_entity_t *e)
{
    memset(e, 0, sizeof(*e));
    e->kind = SRL_KIND_ASSESSMENT_TYPE;
    srl_assessment_type_t *t = &e->u.type;
    t->name = fx_strdup("Blockiert – kritisch ✓");
    t->description = fx_strdup("Paket darf nicht verwendet werden; 日本語テキスト");
    t->color = fx_strdup("#ff0044");
    t->severity_class = SRL_SEVERITY_CLASS_CUSTOM;
    t->emitted_severity = SRL_SEVERITY_CRITICAL;
    t->auto_rule.kind = SRL_AUTO_RULE_PVRS;
    t->auto_rule.cvss_min = 0.0;
    t->auto_rule.cvss_max = 10.0;
    t->auto_rule.pvrs_count = 3;
    t->auto_rule.pvrs_categories = calloc(3, sizeof(int32_t));
    t->auto_rule.pvrs_categories[0] = 1;
    t->auto_rule.pvrs_categories[1] = 4;
    t->auto_rule.pvrs_categories[2] = 5;
    t->has_default_expiry_days = true;
    t->default_expiry_days = 90;
    t->inactive = true;
    t->built_in = true;
    t->meta.origin = fx_strdup("hub-eu-1");
    t->meta.version = 1234567890123LL;
    t->meta.changed_at = 1764158400123LL;
}

/* An automatic rule by CVSS score range. */
static inline void fx_type_cvss(srl_entity_t *e)
{
    memset(e, 0, sizeof(*e));
    e->kind = SRL_KIND_ASSESSMENT_TYPE;
    srl_assessment_type_t *t = &e->u.type;
    t->name = fx_strdup("High CVSS");
    t->severity_class = SRL_SEVERITY_CLASS_SEVERE;
    t->emitted_severity = SRL_SEVERITY_NONE;
    t->auto_rule.kind = SRL_AUTO_RULE_CVSS;
    t->auto_rule.cvss_min = 7.5;
    t->auto_rule.cvss_max = 9.25;
    t->meta.origin = fx_strdup("hub");
    t->meta.version = 3;
    t->meta.changed_at = 1764158400000LL;
}

/* Every optional field absent, lists empty. */
static inline void fx_type_min(srl_entity_t *e)
{
    memset(e, 0, sizeof(*e));
    e->kind = SRL_KIND_ASSESSMENT_TYPE;
    srl_assessment_type_t *t = &e->u.type;
    t->name = fx_strdup("Ignore");
    t->severity_class = SRL_SEVERITY_CLASS_IGNORE;
    t->emitted_severity = SRL_SEVERITY_UNSET;
    t->auto_rule.kind = SRL_AUTO_RULE_NONE;
    t->auto_rule.cvss_min = 0.0;
    t->auto_rule.cvss_max = 10.0;
    t->meta.origin = fx_strdup("");
    t->meta.version = 0;
    t->meta.changed_at = -1;
}

static inline void fx_assessment_full(srl_entity_t *e)
{
    memset(e, 0, sizeof(*e));
    e->kind = SRL_KIND_ASSESSMENT;
    srl_assessment_t *a = &e->u.assessment;
    a->vulnerability_id = fx_strdup("CVE-2021-44228");
    a->assessment_type = fx_strdup("Blocked");
    a->comment = fx_strdup("Log4Shell — do not use < 2.17.1; «critique»");
    a->scope_kind = SRL_SCOPE_FEED;
    a->scope_name = fx_strdup("maven-central");
    a->has_package_filter = true;
    a->package_name = fx_strdup("org.apache.logging.log4j:log4j-core");
    a->package_version_range = fx_strdup("[2.0,2.17.1)");
    a->has_expires_at = true;
    a->expires_at = 1795694400000LL;
    a->automatic = true;
    a->assessed_by = fx_strdup("security-team");
    a->assessed_at = 1639094400000LL;
    a->meta.origin = fx_strdup("hub-eu-1");
    a->meta.version = 42;
    a->meta.changed_at = 1764158400000LL;
}

static inline void fx_assessment_min(srl_entity_t *e)
{
    memset(e, 0, sizeof(*e));
    e->kind = SRL_KIND_ASSESSMENT;
    srl_assessment_t *a = &e->u.assessment;
    a->vulnerability_id = fx_strdup("PGV-1234567");
    a->assessment_type = fx_strdup("Ignore");
    a->scope_kind = SRL_SCOPE_GLOBAL;
    a->meta.origin = fx_strdup("hub");
    a->meta.version = 1;
    a->meta.changed_at = 0;
}

static inline void fx_outcomes(srl_outcome_entry_t **items, size_t *count, size_t n,
                               const char *prefix)
{
    *count = n;
    *items = n ? calloc(n, sizeof(**items)) : NULL;
    for (size_t i = 0; i < n; i++) {
        char name[64];
        snprintf(name, sizeof(name), "%s-%zu", prefix, i);
        (*items)[i].name = strdup(name);
        (*items)[i].outcome = (srl_outcome_t)(i % SRL_OUTCOME_COUNT);
    }
}

/* many: number of entries in each list and map (0, 1, many). */
static inline void fx_policy_n(srl_entity_t *e, size_t many)
{
    memset(e, 0, sizeof(*e));
    e->kind = SRL_KIND_POLICY;
    srl_policy_t *p = &e->u.policy;
    p->name = fx_strdup("Global");
    p->description = fx_strdup("Règles par défaut — 默认");
    p->feed_count = many;
    p->feeds = many ? calloc(many, sizeof(char *)) : NULL;
    for (size_t i = 0; i < many; i++) {
        char name[32];
        snprintf(name, sizeof(name), "feed-%zu", i);
        p->feeds[i] = strdup(name);
    }
    p->unassessed = SRL_OUTCOME_WARN;
    fx_outcomes(&p->by_assessment_type, &p->by_assessment_type_count, many, "Type");
    p->license_undetected = SRL_OUTCOME_NONCOMPLIANT;
    p->license_other = SRL_OUTCOME_COMPLIANT;
    fx_outcomes(&p->by_license, &p->by_license_count, many, "MIT");
    p->deprecated = SRL_OUTCOME_WARN;
    p->unlisted = SRL_OUTCOME_UNSPECIFIED;
    p->exception_count = many;
    p->exceptions = many ? calloc(many, sizeof(*p->exceptions)) : NULL;
    for (size_t i = 0; i < many; i++) {
        char name[32];
        snprintf(name, sizeof(name), "pkg-%zu*", i);
        p->exceptions[i].package = strdup(name);
        p->exceptions[i].version_range = i % 2 ? strdup("[1.0,2.0)") : NULL;
        p->exceptions[i].rule_groups = (unsigned)(i % 8);
        p->exceptions[i].has_expires_at = i % 3 == 0;
        p->exceptions[i].expires_at = p->exceptions[i].has_expires_at ? 1800000000000LL + (int64_t)i
                                                                      : 0;
    }
    p->has_risk_profile = true;
    p->risk_profile.network_exposure = SRL_RISK_HIGH;
    p->risk_profile.access_interface = SRL_RISK_LOW;
    p->risk_profile.service_outage = SRL_RISK_NONE;
    p->risk_profile.data_breach = SRL_RISK_MEDIUM;
    p->risk_profile.data_tampering = SRL_RISK_UNSPECIFIED;
    p->meta.origin = fx_strdup("hub-eu-1");
    p->meta.version = 7;
    p->meta.changed_at = 1764158400999LL;
}

static inline void fx_policy_min(srl_entity_t *e)
{
    memset(e, 0, sizeof(*e));
    e->kind = SRL_KIND_POLICY;
    e->u.policy.name = fx_strdup("nuget.org");
    e->u.policy.meta.origin = fx_strdup("hub");
}

/* ---- comparison ---- */

static char fx_diff[512];

static inline int fx_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(fx_diff, sizeof(fx_diff), fmt, ap);
    va_end(ap);
    return 0;
}

static inline int fx_str_eq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

#define FX_STR(f)               \
    if (!fx_str_eq(x->f, y->f)) \
    return fx_fail(#f ": \"%s\" != \"%s\"", x->f ? x->f : "(null)", y->f ? y->f : "(null)")
#define FX_NUM(f)     \
    if (x->f != y->f) \
    return fx_fail(#f ": %lld != %lld", (long long)x->f, (long long)y->f)
#define FX_DBL(f)     \
    if (x->f != y->f) \
    return fx_fail(#f ": %g != %g", (double)x->f, (double)y->f)

static inline int fx_meta_equal(const srl_meta_t *x, const srl_meta_t *y)
{
    FX_STR(origin);
    FX_NUM(version);
    FX_NUM(changed_at);
    return 1;
}

static inline int fx_type_equal(const srl_assessment_type_t *x, const srl_assessment_type_t *y)
{
    FX_STR(name);
    FX_STR(description);
    FX_STR(color);
    FX_NUM(severity_class);
    FX_NUM(emitted_severity);
    FX_NUM(auto_rule.kind);
    FX_DBL(auto_rule.cvss_min);
    FX_DBL(auto_rule.cvss_max);
    FX_NUM(auto_rule.pvrs_count);
    for (size_t i = 0; i < x->auto_rule.pvrs_count; i++)
        FX_NUM(auto_rule.pvrs_categories[i]);
    FX_NUM(has_default_expiry_days);
    if (x->has_default_expiry_days)
        FX_NUM(default_expiry_days);
    FX_NUM(inactive);
    FX_NUM(built_in);
    return fx_meta_equal(&x->meta, &y->meta);
}

static inline int fx_assessment_equal(const srl_assessment_t *x, const srl_assessment_t *y)
{
    FX_STR(vulnerability_id);
    FX_STR(assessment_type);
    FX_STR(comment);
    FX_NUM(scope_kind);
    FX_STR(scope_name);
    FX_NUM(has_package_filter);
    FX_STR(package_name);
    FX_STR(package_version_range);
    FX_NUM(has_expires_at);
    if (x->has_expires_at)
        FX_NUM(expires_at);
    FX_NUM(automatic);
    FX_STR(assessed_by);
    FX_NUM(assessed_at);
    return fx_meta_equal(&x->meta, &y->meta);
}

static inline int fx_policy_equal(const srl_policy_t *x, const srl_policy_t *y)
{
    FX_STR(name);
    FX_STR(description);
    FX_NUM(feed_count);
    for (size_t i = 0; i < x->feed_count; i++)
        FX_STR(feeds[i]);
    FX_NUM(unassessed);
    FX_NUM(by_assessment_type_count);
    for (size_t i = 0; i < x->by_assessment_type_count; i++) {
        FX_STR(by_assessment_type[i].name);
        FX_NUM(by_assessment_type[i].outcome);
    }
    FX_NUM(license_undetected);
    FX_NUM(license_other);
    FX_NUM(by_license_count);
    for (size_t i = 0; i < x->by_license_count; i++) {
        FX_STR(by_license[i].name);
        FX_NUM(by_license[i].outcome);
    }
    FX_NUM(deprecated);
    FX_NUM(unlisted);
    FX_NUM(exception_count);
    for (size_t i = 0; i < x->exception_count; i++) {
        FX_STR(exceptions[i].package);
        FX_STR(exceptions[i].version_range);
        FX_NUM(exceptions[i].rule_groups);
        FX_NUM(exceptions[i].has_expires_at);
        if (x->exceptions[i].has_expires_at)
            FX_NUM(exceptions[i].expires_at);
    }
    FX_NUM(has_risk_profile);
    if (x->has_risk_profile) {
        FX_NUM(risk_profile.network_exposure);
        FX_NUM(risk_profile.access_interface);
        FX_NUM(risk_profile.service_outage);
        FX_NUM(risk_profile.data_breach);
        FX_NUM(risk_profile.data_tampering);
    }
    return fx_meta_equal(&x->meta, &y->meta);
}

/* 1 when equal; otherwise 0 and fx_diff names the first differing field. */
static inline int fx_entity_equal(const srl_entity_t *x, const srl_entity_t *y)
{
    FX_NUM(kind);
    switch (x->kind) {
    case SRL_KIND_ASSESSMENT_TYPE:
        return fx_type_equal(&x->u.type, &y->u.type);
    case SRL_KIND_ASSESSMENT:
        return fx_assessment_equal(&x->u.assessment, &y->u.assessment);
    case SRL_KIND_POLICY:
        return fx_policy_equal(&x->u.policy, &y->u.policy);
    default:
        return fx_fail("bad kind");
    }
}

#define FX_ASSERT_EQUAL(x, y)                         \
    do {                                              \
        if (!fx_entity_equal(x, y))                   \
            fail_msg("entities differ: %s", fx_diff); \
    } while (0)

/* Calls fn(entity) for each sample of every kind; samples are cleared after. */
typedef void (*fx_sample_fn)(const char *label, const srl_entity_t *e, void *arg);

static inline void fx_each_sample(fx_sample_fn fn, void *arg)
{
    srl_entity_t e;
    fx_type_full(&e);
    fn("type_full", &e, arg);
    srl_entity_clear(&e);
    fx_type_cvss(&e);
    fn("type_cvss", &e, arg);
    srl_entity_clear(&e);
    fx_type_min(&e);
    fn("type_min", &e, arg);
    srl_entity_clear(&e);
    fx_assessment_full(&e);
    fn("assessment_full", &e, arg);
    srl_entity_clear(&e);
    fx_assessment_min(&e);
    fn("assessment_min", &e, arg);
    srl_entity_clear(&e);
    fx_policy_min(&e);
    fn("policy_min", &e, arg);
    srl_entity_clear(&e);
    fx_policy_n(&e, 0);
    fn("policy_0", &e, arg);
    srl_entity_clear(&e);
    fx_policy_n(&e, 1);
    fn("policy_1", &e, arg);
    srl_entity_clear(&e);
    fx_policy_n(&e, 50);
    fn("policy_50", &e, arg);
    srl_entity_clear(&e);
}

#endif
