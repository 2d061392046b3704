/*
 * model.h - the three kinds of replicated content, as C structs.
 *
 * These structs are the one in-memory form of an entity: the Avro codec
 * (codec.h), the JSON form (json.h), the store (store.h) and the CLI all
 * read and write them. Field names follow the schemas/ .avsc files one for one.
 *
 * Ownership: every pointer inside a struct is owned by that struct and is
 * released by its srl_<kind>_clear(). A NULL string means "absent" for an
 * optional field. Arrays are (items, count) pairs; count is 0 and items
 * NULL when empty. A map is an array of srl_outcome_entry_t in the order
 * it was read; keys are unique.
 */
#ifndef SRL_MODEL_H
#define SRL_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Which kind of content a record carries. Order is the apply order on a
 * spoke: types before the assessments that name them. */
typedef enum srl_kind {
    SRL_KIND_ASSESSMENT_TYPE = 0,
    SRL_KIND_ASSESSMENT = 1,
    SRL_KIND_POLICY = 2,
    SRL_KIND_COUNT
} srl_kind_t;

/* "assessment-types", "vulnerability-assessments", "policies": the topic
 * suffix and the name used on the command line and in HTTP paths. */
const char *srl_kind_name(srl_kind_t kind);
/* Accepts the names above; returns false for anything else. */
bool srl_kind_parse(const char *name, srl_kind_t *out);
/* The store's content table of a kind ("assessment_types",
 * "vulnerability_assessments", "policies") and its key column ("name", or
 * "key" for assessments); NULL for a kind out of range. */
const char *srl_kind_table(srl_kind_t kind);
const char *srl_kind_key_column(srl_kind_t kind);

/* Fields every record carries. */
typedef struct srl_meta {
    char *origin;       /* instance id of the hub that wrote it; owned */
    int64_t version;    /* store-wide sequence on the hub, grows per change */
    int64_t changed_at; /* ms since the Unix epoch (timestamp-millis) */
} srl_meta_t;

/* ---- assessment types ---- */

typedef enum srl_severity_class {
    SRL_SEVERITY_CLASS_IGNORE = 0,
    SRL_SEVERITY_CLASS_WARN,
    SRL_SEVERITY_CLASS_SEVERE,
    SRL_SEVERITY_CLASS_CUSTOM,
    SRL_SEVERITY_CLASS_COUNT
} srl_severity_class_t;

typedef enum srl_severity {
    SRL_SEVERITY_UNSET = -1, /* optional field absent */
    SRL_SEVERITY_NONE = 0,
    SRL_SEVERITY_LOW,
    SRL_SEVERITY_MEDIUM,
    SRL_SEVERITY_HIGH,
    SRL_SEVERITY_CRITICAL,
    SRL_SEVERITY_COUNT
} srl_severity_t;

typedef enum srl_auto_rule_kind {
    SRL_AUTO_RULE_NONE = 0, /* no automatic assessment rule */
    SRL_AUTO_RULE_CVSS,     /* cvss_min <= score <= cvss_max */
    SRL_AUTO_RULE_PVRS      /* PVRS category in pvrs_categories */
} srl_auto_rule_kind_t;

typedef struct srl_auto_rule {
    srl_auto_rule_kind_t kind;
    double cvss_min, cvss_max; /* 0.0 .. 10.0, when kind == CVSS */
    int32_t *pvrs_categories;  /* each 1..5, when kind == PVRS; owned */
    size_t pvrs_count;
} srl_auto_rule_t;

typedef struct srl_assessment_type {
    char *name;        /* key; required */
    char *description; /* optional */
    char *color;       /* optional, "#rrggbb" */
    srl_severity_class_t severity_class;
    srl_severity_t emitted_severity; /* SRL_SEVERITY_UNSET when absent */
    srl_auto_rule_t auto_rule;
    bool has_default_expiry_days;
    int32_t default_expiry_days;
    bool inactive;
    bool built_in;
    srl_meta_t meta;
} srl_assessment_type_t;

/* ---- vulnerability assessments ---- */

typedef enum srl_scope_kind {
    SRL_SCOPE_GLOBAL = 0,
    SRL_SCOPE_POLICY,
    SRL_SCOPE_FEED,
    SRL_SCOPE_PROJECT,
    SRL_SCOPE_COUNT
} srl_scope_kind_t;

typedef struct srl_assessment {
    char *vulnerability_id;      /* key part; "PGV-1234567", "CVE-2021-44228" */
    char *assessment_type;       /* name of an assessment type; required */
    char *comment;               /* optional */
    srl_scope_kind_t scope_kind; /* key part */
    char *scope_name;            /* key part; NULL iff scope_kind == GLOBAL */
    bool has_package_filter;
    char *package_name;          /* required when has_package_filter */
    char *package_version_range; /* optional */
    bool has_expires_at;
    int64_t expires_at; /* ms since epoch */
    bool automatic;
    char *assessed_by;   /* optional */
    int64_t assessed_at; /* ms since epoch */
    srl_meta_t meta;
} srl_assessment_t;

/* ---- policies ---- */

typedef enum srl_outcome {
    SRL_OUTCOME_UNSPECIFIED = 0,
    SRL_OUTCOME_COMPLIANT,
    SRL_OUTCOME_WARN,
    SRL_OUTCOME_NONCOMPLIANT,
    SRL_OUTCOME_COUNT
} srl_outcome_t;

/* One entry of a map from a name (assessment type, SPDX id) to an outcome. */
typedef struct srl_outcome_entry {
    char *name; /* owned */
    srl_outcome_t outcome;
} srl_outcome_entry_t;

/* Rule groups an exception exempts a package from (a bit set). */
enum {
    SRL_RULE_GROUP_LICENSE = 1u << 0,
    SRL_RULE_GROUP_DEPRECATION = 1u << 1,
    SRL_RULE_GROUP_UNLISTED = 1u << 2
};

typedef struct srl_policy_exception {
    char *package;        /* name, may contain '*' wildcards; required */
    char *version_range;  /* optional */
    unsigned rule_groups; /* SRL_RULE_GROUP_* bits */
    bool has_expires_at;
    int64_t expires_at; /* ms since epoch */
} srl_policy_exception_t;

typedef enum srl_risk_level {
    SRL_RISK_UNSPECIFIED = 0,
    SRL_RISK_NONE,
    SRL_RISK_LOW,
    SRL_RISK_MEDIUM,
    SRL_RISK_HIGH,
    SRL_RISK_COUNT
} srl_risk_level_t;

typedef struct srl_risk_profile {
    srl_risk_level_t network_exposure;
    srl_risk_level_t access_interface;
    srl_risk_level_t service_outage;
    srl_risk_level_t data_breach;
    srl_risk_level_t data_tampering;
} srl_risk_profile_t;

typedef struct srl_policy {
    char *name;        /* key; "Global", a feed's name, or a shared policy */
    char *description; /* optional */
    char **feeds;      /* owned array of owned strings */
    size_t feed_count;
    /* vulnerability rules */
    srl_outcome_t unassessed;
    srl_outcome_entry_t *by_assessment_type;
    size_t by_assessment_type_count;
    /* license rules */
    srl_outcome_t license_undetected;
    srl_outcome_t license_other;
    srl_outcome_entry_t *by_license; /* keyed by SPDX id */
    size_t by_license_count;
    /* package rules */
    srl_outcome_t deprecated;
    srl_outcome_t unlisted;
    srl_policy_exception_t *exceptions;
    size_t exception_count;
    bool has_risk_profile;
    srl_risk_profile_t risk_profile;
    srl_meta_t meta;
} srl_policy_t;

/* Any one entity, tagged by kind. */
typedef struct srl_entity {
    srl_kind_t kind;
    union {
        srl_assessment_type_t type;
        srl_assessment_t assessment;
        srl_policy_t policy;
    } u;
} srl_entity_t;

/* Release everything a struct owns and zero it; NULL is accepted. The
 * struct itself is not freed (it usually lives on the stack). A cleared
 * assessment type has emitted_severity SRL_SEVERITY_UNSET; a cleared
 * entity keeps its kind. */
void srl_assessment_type_clear(srl_assessment_type_t *t);
void srl_assessment_clear(srl_assessment_t *a);
void srl_policy_clear(srl_policy_t *p);
void srl_entity_clear(srl_entity_t *e);

/* Enum <-> lowercase symbol, as in the schemas and the JSON form.
 * _name returns NULL for an out-of-range value; _parse returns false for
 * an unknown symbol. */
const char *srl_severity_class_name(srl_severity_class_t v);
bool srl_severity_class_parse(const char *s, srl_severity_class_t *out);
const char *srl_severity_name(srl_severity_t v);
bool srl_severity_parse(const char *s, srl_severity_t *out);
const char *srl_scope_kind_name(srl_scope_kind_t v);
bool srl_scope_kind_parse(const char *s, srl_scope_kind_t *out);
const char *srl_outcome_name(srl_outcome_t v);
bool srl_outcome_parse(const char *s, srl_outcome_t *out);
const char *srl_risk_level_name(srl_risk_level_t v);
bool srl_risk_level_parse(const char *s, srl_risk_level_t *out);
const char *srl_auto_rule_kind_name(srl_auto_rule_kind_t v);
bool srl_auto_rule_kind_parse(const char *s, srl_auto_rule_kind_t *out);
/* One SRL_RULE_GROUP_* bit <-> "license", "deprecation", "unlisted". */
const char *srl_rule_group_name(unsigned bit);
bool srl_rule_group_parse(const char *s, unsigned *bit_out);

#endif
