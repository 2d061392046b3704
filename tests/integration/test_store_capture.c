/* test_store_capture.c - what the store does with content on a real
 * PostgreSQL: capture into the outbox (one row per change, increasing
 * versions, inside the writer's transaction, none while applying), put /
 * get / delete / list of every kind, and bulk import. Each test uses its
 * own fresh database (SRL_TEST_PG_DSN). */
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

#include <jansson.h>

#include "sysrepl/json.h"
#include "sysrepl/store.h"

struct fixture {
    char dsn[512];
    srl_store_t *st;
};

static struct fixture *fixture_new(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    *state = f;
    srl_test_create_db(f->dsn, sizeof f->dsn);
    f->st = srl_test_store_connect(f->dsn);
    char err[512];
    if (srl_store_migrate(f->st, NULL, err, sizeof err) != SRL_STORE_OK ||
        srl_store_set_settings(f->st, "hub-test", "hub", err, sizeof err) != SRL_STORE_OK)
        fail_msg("init: %s", err);
    return f;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    if (!f)
        return 0;
    srl_store_close(f->st);
    srl_test_drop_db(f->dsn);
    free(f);
    return 0;
}

static void exec_ok(srl_store_t *st, const char *sql)
{
    srl_test_exec(srl_store_conn(st), sql);
}

/* The SQLSTATE of a statement expected to fail. */
static void exec_fails(srl_store_t *st, const char *sql, const char *message_part)
{
    PGresult *res = PQexec(srl_store_conn(st), sql);
    if (PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK)
        fail_msg("%s: succeeded", sql);
    assert_non_null(strstr(PQresultErrorMessage(res), message_part));
    PQclear(res);
}

static long long query_int(srl_store_t *st, const char *sql)
{
    PGresult *res = PQexec(srl_store_conn(st), sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
        fail_msg("%s: %s", sql, PQresultErrorMessage(res));
    long long v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return v;
}

/* "v1,k1,d1;v2,..." of the outbox in version order: easy to compare. */
static char *outbox_text(srl_store_t *st)
{
    PGresult *res = PQexec(srl_store_conn(st),
                           "SELECT coalesce(string_agg(kind || ',' || key || ',' || deleted, ';' "
                           "ORDER BY version), '') FROM outbox");
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    char *s = strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return s;
}

static void assert_outbox(srl_store_t *st, const char *want)
{
    char *got = outbox_text(st);
    if (strcmp(got, want) != 0)
        fail_msg("outbox: got \"%s\", want \"%s\"", got, want);
    free(got);
}

static void put_json(srl_store_t *st, srl_kind_t kind, const char *text)
{
    char err[512];
    json_error_t jerr;
    json_t *o = json_loads(text, 0, &jerr);
    if (!o)
        fail_msg("bad test JSON: %s", jerr.text);
    srl_entity_t e = {.kind = kind};
    if (!srl_json_to_entity(o, kind, &e, err, sizeof err))
        fail_msg("json: %s", err);
    json_decref(o);
    srl_store_rc_t rc = srl_store_put(st, &e, NULL, err, sizeof err);
    if (rc != SRL_STORE_OK)
        fail_msg("put: %s", err);
    srl_entity_clear(&e);
}

static const char TYPE_BLOCKED[] = "{\"name\":\"Blocked\",\"severity_class\":\"severe\"}";
static const char ASSESSMENT_1[] =
    "{\"vulnerability_id\":\"CVE-2021-44228\",\"scope\":{\"kind\":\"global\"},"
    "\"assessment_type\":\"Blocked\",\"assessed_at\":1700000000000}";

/* Insert, update and delete each give exactly one outbox row, with
 * strictly increasing versions; the row carries the version it got. */
static void capture_insert_update_delete_one_row_each_increasing(void **state)
{
    struct fixture *f = fixture_new(state);
    exec_ok(f->st,
            "INSERT INTO assessment_types (name, severity_class) VALUES ('Blocked', 'severe')");
    exec_ok(f->st, "UPDATE assessment_types SET color = '#ff0000'");
    exec_ok(f->st, "DELETE FROM assessment_types");
    assert_outbox(f->st, "0,Blocked,false;0,Blocked,false;0,Blocked,true");
    assert_int_equal(query_int(f->st, "SELECT count(DISTINCT version) FROM outbox"), 3);
    /* versions increase in the order the changes were made */
    assert_int_equal(query_int(f->st, "SELECT count(*) FROM (SELECT version, lag(version) OVER "
                                      "(ORDER BY created_at, version) AS prev FROM outbox) x "
                                      "WHERE prev IS NOT NULL AND version <= prev"),
                     0);
    /* the stamp: origin is the instance id, changed_at is set */
    exec_ok(f->st, "INSERT INTO policies (name) VALUES ('Global')");
    assert_int_equal(query_int(f->st, "SELECT count(*) FROM policies WHERE origin = 'hub-test' "
                                      "AND changed_at > 0 AND version = "
                                      "(SELECT max(version) FROM outbox)"),
                     1);
}

/* A change rolled back leaves no outbox row: capture is part of the
 * writer's transaction. */
static void capture_rolled_back_change_leaves_no_outbox_row(void **state)
{
    struct fixture *f = fixture_new(state);
    exec_ok(f->st, "BEGIN");
    exec_ok(f->st,
            "INSERT INTO assessment_types (name, severity_class) VALUES ('Blocked', 'severe')");
    assert_int_equal(query_int(f->st, "SELECT count(*) FROM outbox"), 1);
    exec_ok(f->st, "ROLLBACK");
    assert_int_equal(query_int(f->st, "SELECT count(*) FROM outbox"), 0);
}

/* Rows applied by the consumer (sysrepl.applying = on) keep their stamp
 * and write no outbox row: inserts, updates and deletes alike. */
static void capture_applying_session_writes_no_outbox_row(void **state)
{
    struct fixture *f = fixture_new(state);
    exec_ok(f->st, "BEGIN");
    exec_ok(f->st, "SET LOCAL sysrepl.applying = 'on'");
    exec_ok(f->st,
            "INSERT INTO assessment_types (name, severity_class, origin, version, changed_at)"
            " VALUES ('Blocked', 'severe', 'hub-far', 42, 1700000000000)");
    exec_ok(f->st, "UPDATE assessment_types SET color = '#00ff00', version = 43");
    exec_ok(f->st, "INSERT INTO policies (name, origin, version) VALUES ('Global', 'hub-far', 44)");
    exec_ok(f->st, "DELETE FROM policies");
    exec_ok(f->st, "COMMIT");
    assert_int_equal(query_int(f->st, "SELECT count(*) FROM outbox"), 0);
    assert_int_equal(query_int(f->st,
                               "SELECT version FROM assessment_types WHERE origin = 'hub-far'"
                               " AND changed_at = 1700000000000"),
                     43);
    /* SET LOCAL ended with the transaction: the next write is captured. */
    exec_ok(f->st, "UPDATE assessment_types SET color = '#0000ff'");
    assert_outbox(f->st, "0,Blocked,false");
}

/* An UPDATE that changes nothing takes no version and writes nothing. */
static void capture_noop_update_writes_nothing(void **state)
{
    struct fixture *f = fixture_new(state);
    put_json(f->st, SRL_KIND_ASSESSMENT_TYPE, TYPE_BLOCKED);
    put_json(f->st, SRL_KIND_ASSESSMENT, ASSESSMENT_1);
    long long before = query_int(f->st, "SELECT count(*) FROM outbox");
    exec_ok(f->st, "UPDATE vulnerability_assessments SET comment = comment");
    exec_ok(f->st, "UPDATE assessment_types SET name = name");
    bool changed = true;
    char err[512];
    json_error_t jerr;
    json_t *o = json_loads(ASSESSMENT_1, 0, &jerr);
    srl_entity_t e = {.kind = SRL_KIND_ASSESSMENT};
    assert_true(srl_json_to_entity(o, SRL_KIND_ASSESSMENT, &e, err, sizeof err));
    assert_int_equal(srl_store_put(f->st, &e, &changed, err, sizeof err), SRL_STORE_OK);
    assert_false(changed);
    srl_entity_clear(&e);
    json_decref(o);
    assert_int_equal(query_int(f->st, "SELECT count(*) FROM outbox"), before);
}

/* Renaming a key (an UPDATE of the name or of a key field) replicates as
 * a delete of the old key and an upsert of the new one. */
static void capture_key_rename_emits_delete_of_old_key(void **state)
{
    struct fixture *f = fixture_new(state);
    exec_ok(f->st, "INSERT INTO policies (name) VALUES ('Old')");
    exec_ok(f->st, "UPDATE policies SET name = 'New'");
    assert_outbox(f->st, "2,Old,false;2,New,false;2,Old,true");
    exec_ok(f->st, "TRUNCATE outbox");
    put_json(f->st, SRL_KIND_ASSESSMENT_TYPE, TYPE_BLOCKED);
    put_json(f->st, SRL_KIND_ASSESSMENT, ASSESSMENT_1);
    exec_ok(f->st, "UPDATE vulnerability_assessments SET scope_kind = 'feed', scope_name = 'npm'");
    assert_outbox(f->st, "0,Blocked,false;1,CVE-2021-44228|global,false;"
                         "1,CVE-2021-44228|feed:npm,false;1,CVE-2021-44228|global,true");
}

/* TRUNCATE would bypass capture: refused, except for the consumer. */
static void capture_truncate_refused_unless_applying(void **state)
{
    struct fixture *f = fixture_new(state);
    exec_fails(f->st, "TRUNCATE vulnerability_assessments", "use DELETE");
    exec_ok(f->st, "BEGIN");
    exec_ok(f->st, "SET LOCAL sysrepl.applying = 'on'");
    exec_ok(f->st, "TRUNCATE vulnerability_assessments");
    exec_ok(f->st, "COMMIT");
}

/* The generated key column is the key of keys.h. */
static void store_assessment_key_matches_keys_h(void **state)
{
    struct fixture *f = fixture_new(state);
    put_json(f->st, SRL_KIND_ASSESSMENT_TYPE, TYPE_BLOCKED);
    put_json(f->st, SRL_KIND_ASSESSMENT,
             "{\"vulnerability_id\":\"PGV-1234567\",\"scope\":{\"kind\":\"feed\",\"name\":"
             "\"nuget.org\"},\"assessment_type\":\"Blocked\"}");
    assert_int_equal(query_int(f->st, "SELECT count(*) FROM vulnerability_assessments "
                                      "WHERE key = 'PGV-1234567|feed:nuget.org'"),
                     1);
}

/* Every kind survives put and get field for field (JSON form compared,
 * meta aside), and delete removes it. */
static void store_put_get_delete_round_trip_every_kind(void **state)
{
    struct fixture *f = fixture_new(state);
    static const struct {
        srl_kind_t kind;
        const char *key;
        const char *json;
    } cases[] = {
        {SRL_KIND_ASSESSMENT_TYPE, "Blocked",
         "{\"name\":\"Blocked\",\"description\":\"Do not use \\u2013 ever\",\"color\":\"#aa0011\","
         "\"severity_class\":\"custom\",\"emitted_severity\":\"critical\",\"auto_rule\":{\"kind\":"
         "\"cvss\",\"cvss_min\":7.5,\"cvss_max\":9.25},\"default_expiry_days\":90,"
         "\"inactive\":true,\"built_in\":true}"},
        {SRL_KIND_ASSESSMENT_TYPE, "Pvrs",
         "{\"name\":\"Pvrs\",\"severity_class\":\"warn\",\"auto_rule\":{\"kind\":\"pvrs\","
         "\"pvrs_categories\":[5,1,3]}}"},
        {SRL_KIND_ASSESSMENT, "CVE-2021-44228|project:web shop",
         "{\"vulnerability_id\":\"CVE-2021-44228\",\"scope\":{\"kind\":\"project\",\"name\":"
         "\"web shop\"},\"assessment_type\":\"Blocked\",\"comment\":\"tab\\there \\\\ \\\"q\\\"\","
         "\"package_filter\":{\"name\":\"log4j-core\",\"version_range\":\"[2.0,2.15)\"},"
         "\"expires_at\":\"2031-01-01T00:00:00.000Z\",\"automatic\":true,\"assessed_by\":\"alice\","
         "\"assessed_at\":\"2024-02-03T04:05:06.789Z\"}"},
        {SRL_KIND_POLICY, "Global",
         "{\"name\":\"Global\",\"description\":\"all feeds\",\"feeds\":[\"npm\",\"nuget\",\"a\"],"
         "\"unassessed\":\"warn\",\"by_assessment_type\":{\"Blocked\":\"noncompliant\","
         "\"Ignored\":\"compliant\"},\"license_undetected\":\"warn\",\"license_other\":"
         "\"noncompliant\",\"by_license\":{\"MIT\":\"compliant\"},\"deprecated\":\"warn\","
         "\"unlisted\":\"noncompliant\",\"exceptions\":[{\"package\":\"foo*\",\"version_range\":"
         "\"[1,2)\",\"rule_groups\":[\"license\",\"unlisted\"],\"expires_at\":"
         "\"2031-05-06T07:08:09.000Z\"}],\"risk_profile\":{\"network_exposure\":\"high\","
         "\"access_interface\":\"low\",\"service_outage\":\"none\",\"data_breach\":\"medium\","
         "\"data_tampering\":\"unspecified\"}}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[512];
        put_json(f->st, cases[i].kind, cases[i].json);
        srl_entity_t got = {.kind = cases[i].kind};
        srl_store_rc_t rc = srl_store_get(f->st, cases[i].kind, cases[i].key, &got, err,
                                          sizeof err);
        if (rc != SRL_STORE_OK)
            fail_msg("get %s: %s", cases[i].key, err);
        json_t *back = srl_json_from_entity(&got, err, sizeof err);
        assert_non_null(back);
        assert_string_equal(json_string_value(json_object_get(back, "origin")), "hub-test");
        json_object_del(back, "origin");
        json_object_del(back, "version");
        json_object_del(back, "changed_at");
        /* Compare with the input as json.c would write it. */
        json_error_t jerr;
        json_t *in = json_loads(cases[i].json, 0, &jerr);
        srl_entity_t want = {.kind = cases[i].kind};
        assert_true(srl_json_to_entity(in, cases[i].kind, &want, err, sizeof err));
        json_t *want_json = srl_json_from_entity(&want, err, sizeof err);
        json_object_del(want_json, "origin");
        json_object_del(want_json, "version");
        json_object_del(want_json, "changed_at");
        if (!json_equal(back, want_json)) {
            char *a = json_dumps(back, JSON_SORT_KEYS), *b = json_dumps(want_json, JSON_SORT_KEYS);
            fail_msg("%s differs:\n got  %s\n want %s", cases[i].key, a, b);
        }
        json_decref(back);
        json_decref(in);
        json_decref(want_json);
        srl_entity_clear(&want);
        srl_entity_clear(&got);
    }
    char err[512];
    srl_entity_t got = {.kind = SRL_KIND_ASSESSMENT_TYPE};
    /* type names match in any case */
    assert_int_equal(srl_store_get(f->st, SRL_KIND_ASSESSMENT_TYPE, "bLoCkEd", &got, err,
                                   sizeof err),
                     SRL_STORE_OK);
    srl_entity_clear(&got);
    /* a type in use stays; the assessment goes, then the type */
    assert_int_equal(srl_store_delete(f->st, SRL_KIND_ASSESSMENT_TYPE, "Blocked", err, sizeof err),
                     SRL_STORE_INVALID);
    assert_non_null(strstr(err, "is used by 1 assessment"));
    assert_int_equal(srl_store_delete(f->st, SRL_KIND_ASSESSMENT, "CVE-2021-44228|project:web shop",
                                      err, sizeof err),
                     SRL_STORE_OK);
    assert_int_equal(srl_store_delete(f->st, SRL_KIND_ASSESSMENT_TYPE, "blocked", err, sizeof err),
                     SRL_STORE_OK);
    assert_int_equal(srl_store_delete(f->st, SRL_KIND_ASSESSMENT_TYPE, "blocked", err, sizeof err),
                     SRL_STORE_NOT_FOUND);
    assert_int_equal(srl_store_get(f->st, SRL_KIND_POLICY, "global", &got, err, sizeof err),
                     SRL_STORE_NOT_FOUND);
    srl_entity_clear(&got);
}

/* A put naming a type the store lacks is refused, naming the field. */
static void store_put_assessment_with_unknown_type_is_invalid(void **state)
{
    struct fixture *f = fixture_new(state);
    char err[512];
    json_error_t jerr;
    json_t *o = json_loads(ASSESSMENT_1, 0, &jerr);
    srl_entity_t e = {.kind = SRL_KIND_ASSESSMENT};
    assert_true(srl_json_to_entity(o, SRL_KIND_ASSESSMENT, &e, err, sizeof err));
    assert_int_equal(srl_store_put(f->st, &e, NULL, err, sizeof err), SRL_STORE_INVALID);
    assert_string_equal(err, "assessment_type: no assessment type named \"Blocked\"");
    srl_entity_clear(&e);
    json_decref(o);
    assert_int_equal(query_int(f->st, "SELECT count(*) FROM outbox"), 0);
}

/* An expiry already past is refused for what a person writes. */
static void store_validate_refuses_past_expiry(void **state)
{
    (void)state;
    char err[512];
    srl_entity_t e = {.kind = SRL_KIND_ASSESSMENT};
    e.u.assessment.vulnerability_id = strdup("CVE-2021-44228");
    e.u.assessment.assessment_type = strdup("Blocked");
    e.u.assessment.has_expires_at = true;
    e.u.assessment.expires_at = 1000;
    assert_false(srl_store_validate(&e, 0, err, sizeof err));
    assert_non_null(strstr(err, "expires_at: 1970-01-01T00:00:01.000Z is already past"));
    e.u.assessment.expires_at = 4000000000000LL;
    assert_true(srl_store_validate(&e, 0, err, sizeof err));
    srl_entity_clear(&e);
}

static int64_t count_list(srl_store_t *st, srl_kind_t kind, const srl_store_filter_t *flt,
                          char *first_key, size_t size)
{
    char err[512];
    srl_store_rc_t rc;
    srl_store_cursor_t *cur = srl_store_cursor_new(st, kind, flt, &rc, err, sizeof err);
    if (!cur)
        fail_msg("list: %s", err);
    srl_entity_t e = {.kind = kind};
    int64_t n = 0;
    while ((rc = srl_store_cursor_next(cur, &e, err, sizeof err)) == SRL_STORE_OK) {
        if (n == 0 && first_key)
            snprintf(first_key, size, "%s", e.u.assessment.vulnerability_id);
        n++;
    }
    assert_int_equal(rc, SRL_STORE_DONE);
    srl_entity_clear(&e);
    srl_store_cursor_free(cur);
    return n;
}

/* Listing filters: type (any case), scope, expired, limit; key order. */
static void store_list_filters_by_type_scope_expired_and_limit(void **state)
{
    struct fixture *f = fixture_new(state);
    put_json(f->st, SRL_KIND_ASSESSMENT_TYPE, TYPE_BLOCKED);
    put_json(f->st, SRL_KIND_ASSESSMENT_TYPE,
             "{\"name\":\"Ignored\",\"severity_class\":\"ignore\"}");
    put_json(f->st, SRL_KIND_ASSESSMENT, ASSESSMENT_1);
    put_json(
        f->st, SRL_KIND_ASSESSMENT,
        "{\"vulnerability_id\":\"CVE-2020-0001\",\"scope\":{\"kind\":\"feed\",\"name\":\"npm\"},"
        "\"assessment_type\":\"Ignored\",\"expires_at\":4000000000000}");
    put_json(f->st, SRL_KIND_ASSESSMENT,
             "{\"vulnerability_id\":\"PGV-9\",\"scope\":{\"kind\":\"feed\",\"name\":\"npm\"},"
             "\"assessment_type\":\"Ignored\",\"expires_at\":4000000000000}");
    char first[64] = "";
    srl_store_filter_t all = {0};
    assert_int_equal(count_list(f->st, SRL_KIND_ASSESSMENT, &all, first, sizeof first), 3);
    assert_string_equal(first, "CVE-2020-0001");
    srl_store_filter_t by_type = {.type = "iGNORED"};
    assert_int_equal(count_list(f->st, SRL_KIND_ASSESSMENT, &by_type, NULL, 0), 2);
    srl_store_filter_t by_scope = {.scope = "global"};
    assert_int_equal(count_list(f->st, SRL_KIND_ASSESSMENT, &by_scope, NULL, 0), 1);
    srl_store_filter_t by_feed = {.scope = "feed:npm", .limit = 1};
    assert_int_equal(count_list(f->st, SRL_KIND_ASSESSMENT, &by_feed, NULL, 0), 1);
    srl_store_filter_t expired_now = {.expired = true};
    assert_int_equal(count_list(f->st, SRL_KIND_ASSESSMENT, &expired_now, NULL, 0), 0);
    srl_store_filter_t expired_later = {.expired = true, .now_ms = 4000000000000LL};
    assert_int_equal(count_list(f->st, SRL_KIND_ASSESSMENT, &expired_later, NULL, 0), 2);
    srl_store_filter_t types = {0};
    assert_int_equal(count_list(f->st, SRL_KIND_ASSESSMENT_TYPE, &types, NULL, 0), 2);
    char err[512];
    srl_store_rc_t rc;
    srl_store_filter_t bad = {.scope = "galaxy:far"};
    assert_null(srl_store_cursor_new(f->st, SRL_KIND_ASSESSMENT, &bad, &rc, err, sizeof err));
    assert_int_equal(rc, SRL_STORE_INVALID);
    /* a cursor closed early leaves the connection usable */
    srl_store_cursor_t *cur = srl_store_cursor_new(f->st, SRL_KIND_ASSESSMENT, &all, &rc, err,
                                                   sizeof err);
    srl_entity_t e = {.kind = SRL_KIND_ASSESSMENT};
    assert_int_equal(srl_store_cursor_next(cur, &e, err, sizeof err), SRL_STORE_OK);
    srl_entity_clear(&e);
    srl_store_cursor_free(cur);
    assert_int_equal(query_int(f->st, "SELECT count(*) FROM vulnerability_assessments"), 3);
}

typedef struct dups {
    int count;
    char text[512];
} dups_t;

static void on_dup(void *arg, srl_kind_t kind, const char *key, long line, long winner)
{
    dups_t *d = arg;
    size_t len = strlen(d->text);
    snprintf(d->text + len, sizeof d->text - len, "%s%d:%s:%ld>%ld", d->count ? ";" : "", (int)kind,
             key, line, winner);
    d->count++;
}

static void import_json(srl_store_import_t *imp, srl_kind_t kind, const char *text, long line)
{
    char err[512];
    json_error_t jerr;
    json_t *o = json_loads(text, 0, &jerr);
    assert_non_null(o);
    srl_entity_t e = {.kind = kind};
    if (!srl_json_to_entity(o, kind, &e, err, sizeof err))
        fail_msg("json: %s", err);
    if (srl_store_import_add(imp, &e, line, err, sizeof err) != SRL_STORE_OK)
        fail_msg("import_add: %s", err);
    srl_entity_clear(&e);
    json_decref(o);
}

static char *assessment_json(const char *id, const char *type, const char *comment)
{
    char *s = NULL;
    if (asprintf(&s,
                 "{\"vulnerability_id\":\"%s\",\"scope\":{\"kind\":\"global\"},"
                 "\"assessment_type\":\"%s\",\"comment\":\"%s\"}",
                 id, type, comment) < 0)
        fail_msg("asprintf");
    return s;
}

/* An import: types may come after the assessments naming them; the same
 * key twice keeps the last line and reports the earlier one; every write
 * is captured; re-importing the same content changes nothing. */
static void store_import_last_line_wins_and_captures_each_row(void **state)
{
    struct fixture *f = fixture_new(state);
    char err[512];
    srl_store_rc_t rc;
    for (int round = 0; round < 2; round++) {
        srl_store_import_t *imp = srl_store_import_begin(f->st, &rc, err, sizeof err);
        assert_non_null(imp);
        char *a = assessment_json("CVE-2021-0001", "blocked", "first");
        char *b = assessment_json("CVE-2021-0002", "Blocked", "other");
        char *c = assessment_json("CVE-2021-0001", "Blocked", "last");
        import_json(imp, SRL_KIND_ASSESSMENT, a, 1);
        import_json(imp, SRL_KIND_ASSESSMENT, b, 2);
        import_json(imp, SRL_KIND_ASSESSMENT, c, 3);
        import_json(imp, SRL_KIND_ASSESSMENT_TYPE, TYPE_BLOCKED, 4);
        free(a);
        free(b);
        free(c);
        dups_t d = {0, ""};
        srl_store_import_stats_t stats;
        rc = srl_store_import_finish(imp, on_dup, &d, &stats, err, sizeof err);
        if (rc != SRL_STORE_OK)
            fail_msg("finish: %s", err);
        assert_string_equal(d.text, "1:CVE-2021-0001|global:1>3");
        assert_int_equal(stats.duplicates, 1);
        assert_int_equal(stats.read[SRL_KIND_ASSESSMENT], 3);
        /* into an empty table the first line of a key is written at once,
         * the later one then updates it: 3 writes, 2 rows */
        assert_int_equal(stats.changed[SRL_KIND_ASSESSMENT], round == 0 ? 3 : 0);
        assert_int_equal(stats.changed[SRL_KIND_ASSESSMENT_TYPE], round == 0 ? 1 : 0);
    }
    assert_int_equal(query_int(f->st, "SELECT count(*) FROM vulnerability_assessments "
                                      "WHERE key = 'CVE-2021-0001|global' AND comment = 'last' "
                                      "AND origin = 'hub-test'"),
                     1);
    assert_outbox(f->st, "1,CVE-2021-0001|global,false;1,CVE-2021-0002|global,false;"
                         "1,CVE-2021-0001|global,false;0,Blocked,false");
    /* the import's versions are in the outbox, one per row */
    assert_int_equal(query_int(f->st, "SELECT count(*) FROM vulnerability_assessments v "
                                      "JOIN outbox o ON o.kind = 1 AND o.key = v.key "
                                      "AND o.version = v.version"),
                     2);
}

/* A type nobody defined stops the whole import: nothing is written. */
static void store_import_unknown_type_writes_nothing(void **state)
{
    struct fixture *f = fixture_new(state);
    char err[512];
    srl_store_rc_t rc;
    srl_store_import_t *imp = srl_store_import_begin(f->st, &rc, err, sizeof err);
    import_json(imp, SRL_KIND_ASSESSMENT_TYPE, TYPE_BLOCKED, 1);
    char *a = assessment_json("CVE-2021-0001", "Blocked", "ok");
    char *b = assessment_json("CVE-2021-0002", "Blockd", "typo");
    import_json(imp, SRL_KIND_ASSESSMENT, a, 2);
    import_json(imp, SRL_KIND_ASSESSMENT, b, 3);
    free(a);
    free(b);
    rc = srl_store_import_finish(imp, NULL, NULL, NULL, err, sizeof err);
    assert_int_equal(rc, SRL_STORE_INVALID);
    assert_string_equal(err, "line 3: assessment_type: no assessment type named \"Blockd\"");
    assert_int_equal(query_int(f->st, "SELECT count(*) FROM vulnerability_assessments"), 0);
    assert_int_equal(query_int(f->st, "SELECT count(*) FROM assessment_types"), 0);
    assert_int_equal(query_int(f->st, "SELECT count(*) FROM outbox"), 0);
    /* the connection is usable afterwards */
    put_json(f->st, SRL_KIND_ASSESSMENT_TYPE, TYPE_BLOCKED);
}

/* A large import streams through several chunks: duplicates across and
 * within chunks resolve to the last line; export lists all of them. */
static void store_import_many_rows_across_chunks(void **state)
{
    struct fixture *f = fixture_new(state);
    char err[512];
    srl_store_rc_t rc;
    put_json(f->st, SRL_KIND_ASSESSMENT_TYPE, TYPE_BLOCKED);
    srl_store_import_t *imp = srl_store_import_begin(f->st, &rc, err, sizeof err);
    assert_non_null(imp);
    const int n = 120000; /* > one 8 MB chunk of COPY text */
    srl_entity_t e = {.kind = SRL_KIND_ASSESSMENT};
    char id[40], comment[600];
    memset(comment, 'x', sizeof comment - 1);
    comment[sizeof comment - 1] = '\0';
    long line = 0;
    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof id, "PGV-%d", i);
        e.u.assessment.vulnerability_id = id;
        e.u.assessment.assessment_type = (char *)"Blocked";
        e.u.assessment.comment = comment;
        e.u.assessment.assessed_at = i;
        assert_int_equal(srl_store_import_add(imp, &e, ++line, err, sizeof err), SRL_STORE_OK);
    }
    /* PGV-5 again (an earlier chunk) and PGV-119999 twice more (this chunk) */
    e.u.assessment.assessed_at = -5;
    e.u.assessment.vulnerability_id = (char *)"PGV-5";
    assert_int_equal(srl_store_import_add(imp, &e, ++line, err, sizeof err), SRL_STORE_OK);
    e.u.assessment.vulnerability_id = (char *)"PGV-119999";
    assert_int_equal(srl_store_import_add(imp, &e, ++line, err, sizeof err), SRL_STORE_OK);
    e.u.assessment.assessed_at = -7;
    assert_int_equal(srl_store_import_add(imp, &e, ++line, err, sizeof err), SRL_STORE_OK);
    dups_t d = {0, ""};
    srl_store_import_stats_t stats;
    rc = srl_store_import_finish(imp, on_dup, &d, &stats, err, sizeof err);
    if (rc != SRL_STORE_OK)
        fail_msg("finish: %s", err);
    assert_int_equal(stats.duplicates, 3);
    assert_string_equal(d.text, "1:PGV-5|global:6>120001;1:PGV-119999|global:120000>120003;"
                                "1:PGV-119999|global:120002>120003");
    assert_int_equal(query_int(f->st, "SELECT count(*) FROM vulnerability_assessments"), n);
    assert_int_equal(query_int(f->st, "SELECT assessed_at FROM vulnerability_assessments "
                                      "WHERE key = 'PGV-5|global'"),
                     -5);
    assert_int_equal(query_int(f->st, "SELECT assessed_at FROM vulnerability_assessments "
                                      "WHERE key = 'PGV-119999|global'"),
                     -7);
    srl_store_filter_t any = {.any_order = true};
    assert_int_equal(count_list(f->st, SRL_KIND_ASSESSMENT, &any, NULL, 0), n);
    /* every row stamped with its own version, origin and time, and its
     * current version in the outbox */
    assert_int_equal(query_int(f->st,
                               "SELECT count(DISTINCT version) FROM vulnerability_assessments"
                               " WHERE version > 0 AND origin = 'hub-test' AND changed_at > 0"),
                     n);
    assert_int_equal(query_int(f->st,
                               "SELECT count(*) FROM vulnerability_assessments v JOIN outbox o"
                               " ON o.kind = 1 AND o.key = v.key AND o.version = v.version"),
                     n);
}

/* Status numbers: counts, outbox depth, dead letters and their reason. */
static void store_status_reports_counts_outbox_and_dead_letters(void **state)
{
    struct fixture *f = fixture_new(state);
    char err[512];
    put_json(f->st, SRL_KIND_ASSESSMENT_TYPE, TYPE_BLOCKED);
    put_json(f->st, SRL_KIND_ASSESSMENT, ASSESSMENT_1);
    exec_ok(f->st, "INSERT INTO dead_letters (topic, partition, record_offset, reason) VALUES "
                   "('t', 0, 1, 'old'), ('t', 0, 2, 'unknown schema fingerprint 9f3c')");
    exec_ok(f->st, "INSERT INTO replication_log (level, component, message) "
                   "VALUES ('info', 'producer', 'published 2')");
    srl_store_status_t s;
    assert_int_equal(srl_store_get_status(f->st, &s, err, sizeof err), SRL_STORE_OK);
    assert_int_equal(s.schema_version, srl_store_expected_version());
    assert_string_equal(s.settings.role, "hub");
    assert_int_equal(s.counts[SRL_KIND_ASSESSMENT_TYPE], 1);
    assert_int_equal(s.counts[SRL_KIND_ASSESSMENT], 1);
    assert_int_equal(s.outbox_depth, 2);
    assert_true(s.outbox_oldest_age_ms >= 0);
    assert_int_equal(s.last_version, 2);
    assert_int_equal(s.dead_letters, 2);
    assert_string_equal(s.newest_dead_letter_reason, "unknown schema fingerprint 9f3c");
    assert_string_equal(s.last_log_message, "published 2");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(capture_insert_update_delete_one_row_each_increasing, teardown),
        cmocka_unit_test_teardown(capture_rolled_back_change_leaves_no_outbox_row, teardown),
        cmocka_unit_test_teardown(capture_applying_session_writes_no_outbox_row, teardown),
        cmocka_unit_test_teardown(capture_noop_update_writes_nothing, teardown),
        cmocka_unit_test_teardown(capture_key_rename_emits_delete_of_old_key, teardown),
        cmocka_unit_test_teardown(capture_truncate_refused_unless_applying, teardown),
        cmocka_unit_test_teardown(store_assessment_key_matches_keys_h, teardown),
        cmocka_unit_test_teardown(store_put_get_delete_round_trip_every_kind, teardown),
        cmocka_unit_test_teardown(store_put_assessment_with_unknown_type_is_invalid, teardown),
        cmocka_unit_test(store_validate_refuses_past_expiry),
        cmocka_unit_test_teardown(store_list_filters_by_type_scope_expired_and_limit, teardown),
        cmocka_unit_test_teardown(store_import_last_line_wins_and_captures_each_row, teardown),
        cmocka_unit_test_teardown(store_import_unknown_type_writes_nothing, teardown),
        cmocka_unit_test_teardown(store_import_many_rows_across_chunks, teardown),
        cmocka_unit_test_teardown(store_status_reports_counts_outbox_and_dead_letters, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
