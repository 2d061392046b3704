/*
 * model.c - names of the content kinds and enum symbols, and the _clear
 * functions that release what an entity owns.
 *
 * Every enum's symbols are the ones in schemas/ (.avsc files), in the same order:
 * the C value is the Avro symbol index (the codec relies on it).
 */
#include <stdlib.h>
#include <string.h>

#include "sysrepl/model.h"

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

static const char *const kind_names[SRL_KIND_COUNT] = {"assessment-types",
                                                       "vulnerability-assessments", "policies"};
static const char *const severity_class_names[SRL_SEVERITY_CLASS_COUNT] = {"ignore", "warn",
                                                                           "severe", "custom"};
static const char *const severity_names[SRL_SEVERITY_COUNT] = {"none", "low", "medium", "high",
                                                               "critical"};
static const char *const scope_kind_names[SRL_SCOPE_COUNT] = {"global", "policy", "feed",
                                                              "project"};
static const char *const outcome_names[SRL_OUTCOME_COUNT] = {"unspecified", "compliant", "warn",
                                                             "noncompliant"};
static const char *const risk_level_names[SRL_RISK_COUNT] = {"unspecified", "none", "low", "medium",
                                                             "high"};
static const char *const auto_rule_kind_names[] = {"none", "cvss", "pvrs"};
static const char *const rule_group_names[] = {"license", "deprecation", "unlisted"};

static const char *name_of(const char *const *names, size_t count, int v)
{
    if (v < 0 || (size_t)v >= count)
        return NULL;
    return names[v];
}

static bool parse_in(const char *const *names, size_t count, const char *s, int *out)
{
    if (!s)
        return false;
    for (size_t i = 0; i < count; i++) {
        if (strcmp(names[i], s) == 0) {
            *out = (int)i;
            return true;
        }
    }
    return false;
}

/* One name/parse pair per enum; the parse writes only on success. */
#define ENUM_FUNCS(prefix, type, table)                 \
    const char *prefix##_name(type v)                   \
    {                                                   \
        return name_of(table, COUNT_OF(table), (int)v); \
    }                                                   \
    bool prefix##_parse(const char *s, type *out)       \
    {                                                   \
        int v;                                          \
        if (!parse_in(table, COUNT_OF(table), s, &v))   \
            return false;                               \
        *out = (type)v;                                 \
        return true;                                    \
    }

ENUM_FUNCS(srl_kind, srl_kind_t, kind_names)
ENUM_FUNCS(srl_severity_class, srl_severity_class_t, severity_class_names)
ENUM_FUNCS(srl_severity, srl_severity_t, severity_names)
ENUM_FUNCS(srl_scope_kind, srl_scope_kind_t, scope_kind_names)
ENUM_FUNCS(srl_outcome, srl_outcome_t, outcome_names)
ENUM_FUNCS(srl_risk_level, srl_risk_level_t, risk_level_names)
ENUM_FUNCS(srl_auto_rule_kind, srl_auto_rule_kind_t, auto_rule_kind_names)

const char *srl_kind_table(srl_kind_t kind)
{
    static const char *const tables[SRL_KIND_COUNT] = {"assessment_types",
                                                       "vulnerability_assessments", "policies"};
    return (unsigned)kind < SRL_KIND_COUNT ? tables[kind] : NULL;
}

const char *srl_kind_key_column(srl_kind_t kind)
{
    if ((unsigned)kind >= SRL_KIND_COUNT)
        return NULL;
    return kind == SRL_KIND_ASSESSMENT ? "key" : "name";
}

const char *srl_rule_group_name(unsigned bit)
{
    for (size_t i = 0; i < COUNT_OF(rule_group_names); i++)
        if (bit == (1u << i))
            return rule_group_names[i];
    return NULL;
}

bool srl_rule_group_parse(const char *s, unsigned *bit_out)
{
    int v;
    if (!parse_in(rule_group_names, COUNT_OF(rule_group_names), s, &v))
        return false;
    *bit_out = 1u << v;
    return true;
}

static void meta_clear(srl_meta_t *m)
{
    free(m->origin);
    memset(m, 0, sizeof(*m));
}

void srl_assessment_type_clear(srl_assessment_type_t *t)
{
    if (!t)
        return;
    free(t->name);
    free(t->description);
    free(t->color);
    free(t->auto_rule.pvrs_categories);
    meta_clear(&t->meta);
    memset(t, 0, sizeof(*t));
    t->emitted_severity = SRL_SEVERITY_UNSET;
}

void srl_assessment_clear(srl_assessment_t *a)
{
    if (!a)
        return;
    free(a->vulnerability_id);
    free(a->assessment_type);
    free(a->comment);
    free(a->scope_name);
    free(a->package_name);
    free(a->package_version_range);
    free(a->assessed_by);
    meta_clear(&a->meta);
    memset(a, 0, sizeof(*a));
}

static void outcome_entries_free(srl_outcome_entry_t *entries, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(entries[i].name);
    free(entries);
}

void srl_policy_clear(srl_policy_t *p)
{
    if (!p)
        return;
    free(p->name);
    free(p->description);
    for (size_t i = 0; i < p->feed_count; i++)
        free(p->feeds[i]);
    free(p->feeds);
    outcome_entries_free(p->by_assessment_type, p->by_assessment_type_count);
    outcome_entries_free(p->by_license, p->by_license_count);
    for (size_t i = 0; i < p->exception_count; i++) {
        free(p->exceptions[i].package);
        free(p->exceptions[i].version_range);
    }
    free(p->exceptions);
    meta_clear(&p->meta);
    memset(p, 0, sizeof(*p));
}

void srl_entity_clear(srl_entity_t *e)
{
    if (!e)
        return;
    switch (e->kind) {
    case SRL_KIND_ASSESSMENT_TYPE:
        srl_assessment_type_clear(&e->u.type);
        break;
    case SRL_KIND_ASSESSMENT:
        srl_assessment_clear(&e->u.assessment);
        break;
    case SRL_KIND_POLICY:
        srl_policy_clear(&e->u.policy);
        break;
    default:
        break;
    }
}
