/* test_store_rules.c - one validation rule (issue 15): random valid and
 * invalid entities written to a hub's store through SQL and through the
 * CLI; the store refuses exactly what srl_entity_validate (the consumer's
 * decode, the bridge's push) refuses, a refusal names a rule the entity
 * breaks, and every row the hub accepts goes through the producer's read
 * and encode and the consumer's decode without a dead letter. A store that
 * already holds such rows is not upgraded (the migration names them). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "support/support.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "decode.h"
#include "sysrepl/codec.h"
#include "sysrepl/json.h"
#include "sysrepl/keys.h"
#include "sysrepl/rows.h"
#include "sysrepl/rules.h"
#include "sysrepl/store.h"

#define ROUNDS 300

static unsigned seed = 15;

static int pick(int n)
{
    /* cppcheck-suppress rand_rCalled ; a fixed seed makes a failure repeatable */
    return (int)(rand_r(&seed) % (unsigned)n);
}

static const char *const ids[] = {"CVE-2021-44228",
                                  "CVE-1-2",
                                  "CVE-2021-123",
                                  "CVE-2021-1234x",
                                  "PGV-1234567",
                                  "PGV-12a",
                                  "PGV-",
                                  "GHSA-abcd-1234-wxyz",
                                  "GHSA-ABCD-1234-wxyz",
                                  "GHSA-abcd-1234",
                                  "OSV-2021-abc",
                                  "RUSTSEC-2020-0001",
                                  "cve-2021-44228",
                                  "X-y",
                                  "X",
                                  "1X-2",
                                  "A-b|c",
                                  "",
                                  "CVEX-1",
                                  "CVE-2021-44228-",
                                  "GO-2022-0001",
                                  "A-\xc3\xa9",
                                  "CVE-0000-0000",
                                  "Z9-a-b-c"};
static const char *const names[] = {"nuget.org", "", "Feed 1", "x"};
static const char *const types[] = {"Blocked", ""};

static void random_assessment(srl_entity_t *e, char *long_name)
{
    memset(e, 0, sizeof(*e));
    e->kind = SRL_KIND_ASSESSMENT;
    srl_assessment_t *a = &e->u.assessment;
    a->vulnerability_id = strdup(ids[pick((int)(sizeof ids / sizeof ids[0]))]);
    a->scope_kind = (srl_scope_kind_t)pick(SRL_SCOPE_COUNT);
    int s = pick(6);
    if (s == 5)
        a->scope_name = strdup(long_name);
    else if (s < 4)
        a->scope_name = strdup(names[s]);
    a->assessment_type = strdup(types[pick(4) == 0]);
    int f = pick(4);
    if (f >= 1) {
        a->has_package_filter = true;
        a->package_name = strdup(f == 1 ? "" : "Newtonsoft.Json");
        if (f == 3)
            a->package_version_range = strdup("[1.0,2.0)");
    }
    a->assessed_at = 1700000000000;
}

static void random_type(srl_entity_t *e, int round)
{
    static const char *const colors[] = {"#00ff00", "red", "#00FF0", "#abcdef"};
    memset(e, 0, sizeof(*e));
    e->kind = SRL_KIND_ASSESSMENT_TYPE;
    srl_assessment_type_t *t = &e->u.type;
    char name[32];
    snprintf(name, sizeof name, "T%d", round);
    t->name = strdup(pick(8) == 0 ? "" : name);
    t->emitted_severity = SRL_SEVERITY_UNSET;
    if (pick(2))
        t->color = strdup(colors[pick(4)]);
    t->severity_class = (srl_severity_class_t)pick(SRL_SEVERITY_CLASS_COUNT);
    if (pick(2)) {
        static const int days[] = {0, 1, 36500, 36501, 30};
        t->has_default_expiry_days = true;
        t->default_expiry_days = days[pick(5)];
    }
    t->auto_rule.kind = (srl_auto_rule_kind_t)pick(3);
    static const double bounds[] = {0, 4.5, 10, 11, -1};
    t->auto_rule.cvss_min = bounds[pick(5)];
    t->auto_rule.cvss_max = bounds[pick(5)];
    if (t->auto_rule.kind == SRL_AUTO_RULE_PVRS) {
        t->auto_rule.pvrs_count = (size_t)pick(3);
        if (t->auto_rule.pvrs_count) {
            t->auto_rule.pvrs_categories = calloc(t->auto_rule.pvrs_count, sizeof(int32_t));
            for (size_t i = 0; i < t->auto_rule.pvrs_count; i++)
                t->auto_rule.pvrs_categories[i] = pick(7);
        }
    }
}

static void random_policy(srl_entity_t *e, int round)
{
    static const char *const feeds[] = {"nuget.org", "", "npm"};
    memset(e, 0, sizeof(*e));
    e->kind = SRL_KIND_POLICY;
    srl_policy_t *p = &e->u.policy;
    char name[32];
    snprintf(name, sizeof name, "P%d", round);
    p->name = strdup(pick(8) == 0 ? "" : name);
    p->feed_count = (size_t)pick(3);
    p->feeds = p->feed_count ? calloc(p->feed_count, sizeof(char *)) : NULL;
    for (size_t i = 0; i < p->feed_count; i++)
        p->feeds[i] = strdup(feeds[pick(3)]);
    if (pick(2)) {
        p->by_license_count = 1;
        p->by_license = calloc(1, sizeof(*p->by_license));
        p->by_license[0].name = strdup(pick(3) == 0 ? "" : "MIT");
        p->by_license[0].outcome = (srl_outcome_t)pick(SRL_OUTCOME_COUNT);
    }
    if (pick(2)) {
        p->exception_count = 1;
        p->exceptions = calloc(1, sizeof(*p->exceptions));
        p->exceptions[0].package = strdup(pick(3) == 0 ? "" : "left-pad");
        p->exceptions[0].rule_groups = SRL_RULE_GROUP_LICENSE;
    }
}

static void lit(PGconn *conn, FILE *f, const char *s)
{
    if (!s) {
        fputs("NULL", f);
        return;
    }
    char *q = PQescapeLiteral(conn, s, strlen(s));
    assert_non_null(q);
    fputs(q, f);
    PQfreemem(q);
}

/* The row of e as SQL writes it (a person's INSERT), literal by literal. */
static char *insert_sql(PGconn *conn, const srl_entity_t *e)
{
    char *sql = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&sql, &len);
    assert_non_null(f);
#define LIT(s) lit(conn, f, s)
    if (e->kind == SRL_KIND_ASSESSMENT) {
        const srl_assessment_t *a = &e->u.assessment;
        fputs(
            "INSERT INTO vulnerability_assessments (vulnerability_id, assessment_type, scope_kind,"
            " scope_name, package_name, package_version_range, assessed_at) VALUES (",
            f);
        LIT(a->vulnerability_id), fputs(",", f), LIT(a->assessment_type), fputs(",", f);
        LIT(srl_scope_kind_name(a->scope_kind)), fputs(",", f), LIT(a->scope_name), fputs(",", f);
        LIT(a->package_name), fputs(",", f), LIT(a->package_version_range);
        fprintf(f, ", %" PRId64 ")", a->assessed_at);
    } else if (e->kind == SRL_KIND_ASSESSMENT_TYPE) {
        const srl_assessment_type_t *t = &e->u.type;
        const srl_auto_rule_t *r = &t->auto_rule;
        fputs("INSERT INTO assessment_types (name, color, severity_class, emitted_severity,"
              " default_expiry_days, auto_rule, cvss_min, cvss_max, pvrs_categories) VALUES (",
              f);
        LIT(t->name), fputs(",", f), LIT(t->color), fputs(",", f);
        LIT(srl_severity_class_name(t->severity_class)), fputs(",", f);
        LIT(srl_severity_name(t->emitted_severity)), fputs(",", f);
        if (t->has_default_expiry_days)
            fprintf(f, "%d,", (int)t->default_expiry_days);
        else
            fputs("NULL,", f);
        LIT(srl_auto_rule_kind_name(r->kind));
        if (r->kind == SRL_AUTO_RULE_CVSS)
            fprintf(f, ", %g, %g", r->cvss_min, r->cvss_max);
        else
            fputs(", NULL, NULL", f);
        if (r->kind == SRL_AUTO_RULE_PVRS) {
            fputs(", ARRAY[", f);
            for (size_t i = 0; i < r->pvrs_count; i++)
                fprintf(f, "%s%d", i ? "," : "", (int)r->pvrs_categories[i]);
            fputs("]::int[])", f);
        } else {
            fputs(", NULL)", f);
        }
    } else {
        const srl_policy_t *p = &e->u.policy;
        fputs("INSERT INTO policies (name, feeds, by_license, exceptions) VALUES (", f);
        LIT(p->name), fputs(", ARRAY[", f);
        for (size_t i = 0; i < p->feed_count; i++)
            fputs(i ? "," : "", f), LIT(p->feeds[i]);
        fputs("]::text[], jsonb_build_object(", f);
        for (size_t i = 0; i < p->by_license_count; i++)
            LIT(p->by_license[i].name), fputs(",", f),
                LIT(srl_outcome_name(p->by_license[i].outcome));
        fputs("), jsonb_build_array(", f);
        for (size_t i = 0; i < p->exception_count; i++)
            fputs("jsonb_build_object('package', ", f), LIT(p->exceptions[i].package),
                fputs(", 'rule_groups', jsonb_build_array('license'))", f);
        fputs("))", f);
    }
#undef LIT
    fclose(f);
    return sql;
}

/* The producer's read of the row with key, encoded, then the consumer's
 * decode: must be an upsert (no dead letter). */
static void assert_replicates(PGconn *conn, srl_registry_t *reg, srl_kind_t kind, const char *key)
{
    char sql[1024];
    const char *cols = kind == SRL_KIND_ASSESSMENT        ? SRL_ROWS_ASSESSMENT_COLS("t")
                       : kind == SRL_KIND_ASSESSMENT_TYPE ? SRL_ROWS_TYPE_COLS("t")
                                                          : SRL_ROWS_POLICY_COLS("t");
    snprintf(sql, sizeof sql, "SELECT %s FROM %s t WHERE %s = $1", cols, srl_kind_table(kind),
             srl_kind_key_column(kind));
    const char *params[] = {key};
    PGresult *res = PQexecParams(conn, sql, 1, NULL, params, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(res), 1);
    srl_entity_t e;
    char why[512], dkey[SRL_KEY_MAX + 1], reason[1024];
    if (!srl_rows_parse(res, 0, 0, kind, &e, why, sizeof why))
        fail_msg("%s: producer cannot read the row: %s", key, why);
    PQclear(res);
    uint8_t *value = NULL;
    size_t value_len = 0;
    if (!srl_codec_encode(reg, &e, &value, &value_len, why, sizeof why))
        fail_msg("%s: producer cannot encode the row: %s", key, why);
    srl_record_t r = {.kind = kind,
                      .partition = 0,
                      .offset = 1,
                      .key = key,
                      .key_len = strlen(key),
                      .value = value,
                      .value_len = value_len,
                      .version = e.u.assessment.meta.version,
                      .origin = "hub-1"};
    srl_entity_clear(&e);
    srl_entity_t out;
    srl_decoded_t d = srl_decode_record(reg, NULL, &r, &out, dkey, sizeof dkey, reason,
                                        sizeof reason);
    if (d != SRL_DECODED_UPSERT)
        fail_msg("%s: the hub holds it, a spoke dead-letters it: %s", key, reason);
    srl_entity_clear(&out);
    free(value);
}

struct fixture {
    char dsn[512];
    PGconn *conn;
    srl_store_t *st;
    srl_registry_t *reg;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    char err[512];
    *state = f;
    srl_test_create_db(f->dsn, sizeof f->dsn);
    f->st = srl_test_store_connect(f->dsn);
    if (srl_store_migrate(f->st, NULL, err, sizeof err) != SRL_STORE_OK)
        fail_msg("migrate: %s", err);
    f->conn = srl_test_pg_connect(f->dsn);
    srl_test_exec(f->conn,
                  "SET search_path = sysrepl, public;"
                  "INSERT INTO sysrepl.settings (instance_id, role) VALUES ('hub-1', 'hub')");
    f->reg = srl_registry_new(err, sizeof err);
    assert_non_null(f->reg);
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    srl_registry_free(f->reg);
    srl_store_close(f->st);
    if (f->conn)
        PQfinish(f->conn);
    srl_test_drop_db(f->dsn);
    free(f);
    return 0;
}

/* SQL: the hub refuses exactly what the C rule refuses, by a rule the
 * entity breaks, and what it accepts replicates without a dead letter. */
static void store_refuses_through_sql_exactly_what_a_spoke_refuses(void **state)
{
    struct fixture *f = *state;
    char long_name[SRL_KEY_MAX + 2];
    memset(long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    int accepted = 0, refused = 0;
    for (int round = 0; round < ROUNDS; round++) {
        srl_entity_t e;
        if (round % 3 == 0)
            random_assessment(&e, long_name);
        else if (round % 3 == 1)
            random_type(&e, round);
        else
            random_policy(&e, round);
        char err[1024];
        bool valid = srl_entity_validate(&e, err, sizeof err);
        char *sql = insert_sql(f->conn, &e);
        PGresult *res = PQexec(f->conn, sql);
        bool hub_ok = PQresultStatus(res) == PGRES_COMMAND_OK;
        if (!hub_ok && strcmp(PQresultErrorField(res, PG_DIAG_SQLSTATE), "23505") == 0) {
            PQclear(res); /* a key given again (same random id): not a rule */
            free(sql);
            srl_entity_clear(&e);
            continue;
        }
        if (hub_ok != valid)
            fail_msg("%s\n  hub %s, the C rule %s (%s)%s", sql, hub_ok ? "accepts" : "refuses",
                     valid ? "accepts" : "refuses", valid ? "" : err,
                     hub_ok ? "" : PQresultErrorMessage(res));
        if (!hub_ok && strcmp(PQresultErrorField(res, PG_DIAG_SQLSTATE), "23502") == 0) {
            /* NOT NULL of the generated key (a scope without a name): checked
             * by PostgreSQL before any CHECK; the C rule refuses it too. */
            refused++;
        } else if (!hub_ok) {
            const srl_rule_t *r = srl_rule_find(PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME));
            char at[256], got[256];
            if (!r || r->holds(&e, at, sizeof at, got, sizeof got))
                fail_msg("%s\n  refused by %s, a rule the entity keeps (C: %s)", sql,
                         PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME), err);
            refused++;
        } else {
            char *key = srl_key_dup(&e);
            assert_non_null(key);
            assert_replicates(f->conn, f->reg, e.kind, key);
            free(key);
            accepted++;
        }
        PQclear(res);
        free(sql);
        srl_entity_clear(&e);
    }
    /* The draw covers both sides. */
    assert_true(accepted > ROUNDS / 10);
    assert_true(refused > ROUNDS / 10);
}

/* The CLI (sysrepl assessment put) refuses with exit 2 exactly what the C
 * rule refuses, with the rule's text. */
static void cli_put_refuses_exactly_what_a_spoke_refuses(void **state)
{
    struct fixture *f = *state;
    const char *bin = getenv("SRL_BUILD_DIR");
    char long_name[SRL_KEY_MAX + 2];
    memset(long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    srl_test_exec(f->conn, "INSERT INTO assessment_types (name, severity_class)"
                           " VALUES ('Blocked', 'severe') ON CONFLICT DO NOTHING");
    for (int round = 0; round < 40; round++) {
        srl_entity_t e;
        random_assessment(&e, long_name);
        char err[1024], jerr[256];
        bool valid = srl_entity_validate(&e, err, sizeof err);
        const srl_assessment_t *a = &e.u.assessment;
        if (!a->assessment_type[0] || !a->vulnerability_id[0] ||
            (a->package_name && !a->package_name[0]) ||
            (a->scope_name && !a->scope_name[0])) { /* the JSON form refuses "" first */
            srl_entity_clear(&e);
            continue;
        }
        json_t *j = srl_json_from_entity(&e, jerr, sizeof jerr);
        assert_non_null(j);
        char *text = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        char path[1024], cmd[8192];
        snprintf(path, sizeof path, "/tmp/srl-rules-%d.json", (int)getpid());
        FILE *out = fopen(path, "w");
        assert_non_null(out);
        fputs(text, out);
        fclose(out);
        free(text);
        snprintf(cmd, sizeof cmd, "%s/cli/sysrepl --dsn '%s' assessment put -f %s 2>&1",
                 bin ? bin : "build", f->dsn, path);
        FILE *p = popen(cmd, "r");
        char msg[2048] = "";
        size_t n = fread(msg, 1, sizeof msg - 1, p);
        msg[n] = '\0';
        int rc = pclose(p);
        int code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
        remove(path);
        if (valid && code != 0)
            fail_msg("CLI refused a valid assessment (exit %d): %s", code, msg);
        if (!valid && (code != 2 || !strstr(msg, err)))
            fail_msg("CLI: exit %d \"%s\", want exit 2 with \"%s\"", code, msg, err);
        srl_entity_clear(&e);
    }
}

/* A store at version 5 that holds an assessment its spokes would refuse
 * is not upgraded: the migration names the rule and the count, and the
 * store stays at version 5 until the row is fixed. */
static void store_upgrade_refuses_rows_that_break_a_rule(void **state)
{
    struct fixture *f = *state;
    char err[1024];
    /* Back to the state of a version-5 hub: the rules' constraints gone. */
    size_t n;
    const srl_rule_t *rules = srl_rules(&n);
    for (size_t i = 0; i < n; i++) {
        char sql[256];
        snprintf(sql, sizeof sql, "ALTER TABLE %s DROP CONSTRAINT %s",
                 srl_kind_table(rules[i].kind), rules[i].constraint);
        srl_test_exec(f->conn, sql);
    }
    srl_test_exec(f->conn,
                  "INSERT INTO vulnerability_assessments (vulnerability_id, assessment_type,"
                  " scope_kind, assessed_at) VALUES ('CVE-1-2', 'Blocked', 'global', 1);"
                  "UPDATE sysrepl.schema_version SET version = 5");
    srl_store_rc_t rc = srl_store_migrate(f->st, NULL, err, sizeof err);
    assert_int_not_equal(rc, SRL_STORE_OK);
    if (!strstr(err, "1 rows of vulnerability_assessments break"
                     " vulnerability_assessments_vulnerability_id_cve"))
        fail_msg("migration error does not name the rule: %s", err);
    int v = 0;
    assert_int_equal(srl_store_schema_version(f->st, &v, err, sizeof err), SRL_STORE_OK);
    assert_int_equal(v, 5);
    srl_test_exec(f->conn, "UPDATE vulnerability_assessments SET vulnerability_id ="
                           " 'CVE-2001-0002' WHERE vulnerability_id = 'CVE-1-2'");
    if (srl_store_migrate(f->st, NULL, err, sizeof err) != SRL_STORE_OK)
        fail_msg("migrate after the fix: %s", err);
    assert_int_equal(srl_store_check_version(f->st, err, sizeof err), SRL_STORE_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(store_refuses_through_sql_exactly_what_a_spoke_refuses,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(cli_put_refuses_exactly_what_a_spoke_refuses, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(store_upgrade_refuses_rows_that_break_a_rule, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
