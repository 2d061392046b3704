/* Integration: the version rule of consumer/apply.h, through the real
 * srl_apply_* API against a real spoke store.
 *
 * A grid over assessments: every combination of an initial row (none,
 * version 10 from the hub, version 10 written locally), an initial
 * tombstone (none, 5, 10, 15) and an incoming record (upsert or tombstone
 * at 5, 10, 12, 20) gets its own key, and all 96 keys go in one batch. The
 * expected outcome of each key is computed here from the rule (expect()),
 * then the store's content and tombstones tables and the commit's counts
 * are compared with it; applying the same batch again must change nothing.
 * The grid runs once on one session and once split over two sessions
 * (threads). A smaller test covers several records of one key in a batch:
 * only the highest version counts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "support/support.h"

#include "consumer_fixture.h"

#include "apply.h"

#define LOCAL "spoke-a" /* the spoke's instance id: its local edits lose */
#define HUB "hub"
#define CHANGED_AT 1700000000000LL

/* The spoke store of the running test, dropped in teardown. */
static char g_dsn[512];

static int drop_store(void **state)
{
    (void)state;
    srl_test_drop_db(g_dsn);
    g_dsn[0] = '\0';
    return 0;
}

/* ---- the grid ---- */

enum { ROW_NONE, ROW_HUB, ROW_LOCAL, ROW_CASES };
static const char *const row_name[ROW_CASES] = {"none", "v10 origin " HUB, "v10 origin " LOCAL};
static const int64_t tomb_case[] = {0, 5, 10, 15}; /* 0: no tombstone */
static const int64_t incoming_case[] = {5, 10, 12, 20};
#define TOMB_CASES 4
#define INCOMING_CASES 8 /* upserts at incoming_case, then tombstones at them */
#define GRID (ROW_CASES * TOMB_CASES * INCOMING_CASES)

typedef struct combo {
    int row;           /* ROW_* */
    int64_t tomb;      /* initial tombstone version, 0: none */
    bool incoming_del; /* the incoming record is a tombstone */
    int64_t incoming;  /* its version */
} combo_t;

static combo_t combo_of(int i)
{
    combo_t c;
    c.row = i / (TOMB_CASES * INCOMING_CASES);
    c.tomb = tomb_case[i / INCOMING_CASES % TOMB_CASES];
    c.incoming_del = i % INCOMING_CASES >= 4;
    c.incoming = incoming_case[i % 4];
    return c;
}

/* What the store holds for one key; also the commit's counts for it. */
typedef struct state {
    bool has_row;
    int64_t row_version;
    char row_origin[32];
    char row_type[32]; /* assessment_type: "Initial", or "Incoming" once replaced */
    bool has_tomb;
    int64_t tomb_version;
    int upserted, deleted; /* expected counts of the record (0 or 1) */
} state_t;

/* The key's state before the batch. */
static state_t initial_state(const combo_t *c)
{
    state_t s;
    memset(&s, 0, sizeof(s));
    if (c->row != ROW_NONE) {
        s.has_row = true;
        s.row_version = 10;
        snprintf(s.row_origin, sizeof(s.row_origin), "%s", c->row == ROW_LOCAL ? LOCAL : HUB);
        snprintf(s.row_type, sizeof(s.row_type), "Initial");
    }
    if (c->tomb > 0) {
        s.has_tomb = true;
        s.tomb_version = c->tomb;
    }
    return s;
}

/* The rule of apply.h, applied to one key with one incoming record:
 * - an upsert at V is stale if a tombstone at V or above exists: nothing
 *   changes. Otherwise the row is inserted when absent, replaced when its
 *   version is below V or it is a local edit (origin = this spoke), kept
 *   otherwise; and a tombstone below V is removed (even if the row was
 *   kept: the upsert beat the delete, just not the row).
 * - a tombstone at V deletes the row when its version is below V or it is
 *   a local edit. Then, unless a row remains, the tombstones table holds
 *   the key at max(existing tombstone, V): an existing tombstone is only
 *   replaced by a newer one. A row that remains keeps the tombstones
 *   table as it was. */
static state_t expect(const combo_t *c, state_t s)
{
    int64_t v = c->incoming;
    bool row_loses = s.has_row && (s.row_version < v || strcmp(s.row_origin, LOCAL) == 0);
    if (!c->incoming_del) {
        if (s.has_tomb && s.tomb_version >= v)
            return s; /* beaten by a delete at least as new */
        if (!s.has_row || row_loses) {
            s.has_row = true;
            s.row_version = v;
            snprintf(s.row_origin, sizeof(s.row_origin), HUB);
            snprintf(s.row_type, sizeof(s.row_type), "Incoming");
            s.upserted = 1;
        }
        s.has_tomb = false; /* any tombstone left is below v */
    } else {
        if (row_loses) {
            s.has_row = false;
            s.deleted = 1;
        }
        if (!s.has_row && (!s.has_tomb || s.tomb_version < v)) {
            s.has_tomb = true;
            s.tomb_version = v;
        }
    }
    return s;
}

static void describe(const combo_t *c, char *buf, size_t size)
{
    char tomb[32];
    if (c->tomb)
        snprintf(tomb, sizeof(tomb), "v%" PRId64, c->tomb);
    else
        snprintf(tomb, sizeof(tomb), "none");
    snprintf(buf, size, "initial row %s, initial tombstone %s, incoming %s v%" PRId64,
             row_name[c->row], tomb, c->incoming_del ? "tombstone" : "upsert", c->incoming);
}

static void describe_state(const state_t *s, char *buf, size_t size)
{
    char row[128], tomb[48];
    if (s->has_row)
        snprintf(row, sizeof(row), "row v%" PRId64 " origin %s type %s", s->row_version,
                 s->row_origin, s->row_type);
    else
        snprintf(row, sizeof(row), "no row");
    if (s->has_tomb)
        snprintf(tomb, sizeof(tomb), "tombstone v%" PRId64, s->tomb_version);
    else
        snprintf(tomb, sizeof(tomb), "no tombstone");
    snprintf(buf, size, "%s, %s", row, tomb);
}

/* ---- keys, entities, the store ---- */

/* Key number i: an assessment of global scope, "CVE-2024-<i>|global"
 * (fx_make numbers them i / 2; even numbers are global). Entity fields as
 * the fixture makes them, with assessment_type telling which write it is. */
static srl_entity_t make_entity(int i, const char *type, int64_t version)
{
    unsigned seed = (unsigned)i + 1;
    srl_entity_t e;
    fx_make(SRL_KIND_ASSESSMENT, 2 * i, &seed, &e);
    assert_int_equal(e.u.assessment.scope_kind, SRL_SCOPE_GLOBAL);
    free(e.u.assessment.assessment_type);
    e.u.assessment.assessment_type = strdup(type);
    e.u.assessment.meta.origin = strdup(HUB);
    e.u.assessment.meta.version = version;
    e.u.assessment.meta.changed_at = CHANGED_AT;
    return e;
}

static void key_of(int i, char *key, size_t size)
{
    srl_entity_t e = make_entity(i, "x", 1);
    assert_true(srl_key_build(&e, key, size) > 0);
    srl_entity_clear(&e);
}

/* Key number of "CVE-2024-<n>|global", -1 for anything else. */
static int index_of(const char *key)
{
    int n = -1;
    char tail[16];
    if (sscanf(key, "CVE-2024-%d|%15s", &n, tail) != 2 || strcmp(tail, "global") != 0)
        return -1;
    return n;
}

/* Write the initial states of keys 0..n-1 as the consumer would (applying:
 * the stamping trigger keeps the given origin and version). */
static void seed_store(PGconn *c, const state_t *init, int n)
{
    srl_test_exec(c, "BEGIN; SET LOCAL sysrepl.applying = 'on'");
    for (int i = 0; i < n; i++) {
        char key[256], sql[1024];
        key_of(i, key, sizeof(key));
        if (init[i].has_row) {
            char vid[64];
            snprintf(vid, sizeof(vid), "%.*s", (int)(strchr(key, '|') - key), key);
            snprintf(sql, sizeof(sql),
                     "INSERT INTO vulnerability_assessments (vulnerability_id, assessment_type,"
                     " scope_kind, assessed_at, origin, version, changed_at)"
                     " VALUES ('%s', '%s', 'global', 1, '%s', %" PRId64 ", 1)",
                     vid, init[i].row_type, init[i].row_origin, init[i].row_version);
            srl_test_exec(c, sql);
        }
        if (init[i].has_tomb) {
            snprintf(sql, sizeof(sql),
                     "INSERT INTO tombstones (kind, key, version, origin, changed_at)"
                     " VALUES (%d, '%s', %" PRId64 ", '%s', 1)",
                     (int)SRL_KIND_ASSESSMENT, key, init[i].tomb_version, HUB);
            srl_test_exec(c, sql);
        }
    }
    srl_test_exec(c, "COMMIT");
}

/* What the store holds for keys 0..n-1; fails on rows of any other key or
 * kind. */
static void read_store(PGconn *c, state_t *got, int n)
{
    memset(got, 0, (size_t)n * sizeof(*got));
    PGresult *r = PQexec(c, "SELECT key, version, origin, assessment_type"
                            " FROM vulnerability_assessments");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    for (int j = 0; j < PQntuples(r); j++) {
        int i = index_of(PQgetvalue(r, j, 0));
        if (i < 0 || i >= n)
            fail_msg("unexpected assessment %s", PQgetvalue(r, j, 0));
        got[i].has_row = true;
        got[i].row_version = strtoll(PQgetvalue(r, j, 1), NULL, 10);
        snprintf(got[i].row_origin, sizeof(got[i].row_origin), "%s", PQgetvalue(r, j, 2));
        snprintf(got[i].row_type, sizeof(got[i].row_type), "%s", PQgetvalue(r, j, 3));
    }
    PQclear(r);
    r = PQexec(c, "SELECT kind, key, version FROM tombstones");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    for (int j = 0; j < PQntuples(r); j++) {
        int i = index_of(PQgetvalue(r, j, 1));
        if (atoi(PQgetvalue(r, j, 0)) != (int)SRL_KIND_ASSESSMENT || i < 0 || i >= n)
            fail_msg("unexpected tombstone kind %s key %s", PQgetvalue(r, j, 0),
                     PQgetvalue(r, j, 1));
        got[i].has_tomb = true;
        got[i].tomb_version = strtoll(PQgetvalue(r, j, 2), NULL, 10);
    }
    PQclear(r);
}

/* Number of keys whose state differs (rows: version, origin, type;
 * tombstones: version), each printed with its combination. */
static int compare(const combo_t *combos, const state_t *want, const state_t *got, int n,
                   const char *when)
{
    int bad = 0;
    for (int i = 0; i < n; i++) {
        const state_t *w = &want[i], *g = &got[i];
        bool same = w->has_row == g->has_row && w->has_tomb == g->has_tomb &&
                    (!w->has_row || (w->row_version == g->row_version &&
                                     strcmp(w->row_origin, g->row_origin) == 0 &&
                                     strcmp(w->row_type, g->row_type) == 0)) &&
                    (!w->has_tomb || w->tomb_version == g->tomb_version);
        if (same)
            continue;
        char what[256], ws[256], gs[256];
        describe(&combos[i], what, sizeof(what));
        describe_state(w, ws, sizeof(ws));
        describe_state(g, gs, sizeof(gs));
        print_error("%s: key %d (%s):\n  expected %s\n  got      %s\n", when, i, what, ws, gs);
        bad++;
    }
    return bad;
}

/* Content and tombstones in full (every column), to see that a replay
 * touched nothing. */
static char *dump_all(const char *dsn)
{
    char *content = fx_dump(dsn, SRL_KIND_ASSESSMENT);
    char *tombs = fx_query(dsn, "SELECT coalesce(string_agg(t::text, E'\\n' ORDER BY t.kind,"
                                " t.key COLLATE \"C\"), '') FROM tombstones t");
    char *all = fx_strf("%s\n--\n%s", content, tombs);
    free(content);
    free(tombs);
    return all;
}

static void commit_ok(srl_apply_t *a, PGconn *c, int64_t next_offset, srl_apply_stats_t *stats)
{
    char err[512] = "";
    srl_offset_update_t off = {"test.assessments", 0,           next_offset,
                               srl_test_now_ms(),  next_offset, 0.0};
    srl_store_rc_t rc = srl_apply_commit(a, c, &off, 1, true, NULL, NULL, stats, err, sizeof(err));
    if (rc != SRL_STORE_OK)
        fail_msg("srl_apply_commit: rc %d: %s", (int)rc, err);
}

/* ---- tests ---- */

static void run_grid(int sessions)
{
    combo_t combos[GRID];
    state_t init[GRID], want[GRID], got[GRID];
    int64_t want_up = 0, want_del = 0;
    char err[512];

    for (int i = 0; i < GRID; i++) {
        combos[i] = combo_of(i);
        init[i] = initial_state(&combos[i]);
        want[i] = expect(&combos[i], init[i]);
        want_up += want[i].upserted;
        want_del += want[i].deleted;
    }

    fx_spoke(g_dsn, sizeof(g_dsn), LOCAL);
    /* A sysrepl session, as the consumer's own (srl_store_connect). */
    srl_store_t *store = srl_test_store_connect(g_dsn);
    PGconn *c = srl_store_conn(store);
    seed_store(c, init, GRID);
    read_store(c, got, GRID);
    assert_int_equal(compare(combos, init, got, GRID, "seeding"), 0);

    srl_apply_t *a = srl_apply_new(LOCAL);
    assert_non_null(a);
    if (sessions > 1)
        assert_true(srl_apply_set_sessions(a, g_dsn, (size_t)sessions, 1));
    if (srl_apply_prepare(c, err, sizeof(err)) != SRL_STORE_OK)
        fail_msg("srl_apply_prepare: %s", err);
    for (int i = 0; i < GRID; i++) {
        char key[256];
        key_of(i, key, sizeof(key));
        if (combos[i].incoming_del) {
            assert_true(srl_apply_add_tombstone(a, SRL_KIND_ASSESSMENT, key, combos[i].incoming,
                                                HUB, CHANGED_AT));
        } else {
            srl_entity_t e = make_entity(i, "Incoming", combos[i].incoming);
            if (!srl_apply_add_upsert(a, &e, key, err, sizeof(err)))
                fail_msg("srl_apply_add_upsert: %s", err);
            srl_entity_clear(&e);
        }
    }
    assert_int_equal(srl_apply_count(a), GRID);

    srl_apply_stats_t st;
    long long t0 = srl_test_now_ms();
    commit_ok(a, c, GRID, &st);
    print_message("grid on %d session(s): first apply %lld ms; expecting %" PRId64
                  " upserted, %" PRId64 " deleted\n",
                  sessions, srl_test_now_ms() - t0, want_up, want_del);

    read_store(c, got, GRID);
    int bad = compare(combos, want, got, GRID, "first apply");
    if (bad)
        fail_msg("%d of %d combinations differ from the rule (%d session(s))", bad, GRID, sessions);
    assert_int_equal(st.records, GRID);
    assert_int_equal(st.upserted[SRL_KIND_ASSESSMENT], want_up);
    assert_int_equal(st.deleted[SRL_KIND_ASSESSMENT], want_del);
    for (int k = 0; k < SRL_KIND_COUNT; k++)
        if (k != SRL_KIND_ASSESSMENT) {
            assert_int_equal(st.upserted[k], 0);
            assert_int_equal(st.deleted[k], 0);
        }
    assert_int_equal(st.stale, GRID - want_up - want_del);
    assert_int_equal(st.sessions, sessions);
    assert_int_equal(fx_query_int(g_dsn, "SELECT next_offset FROM consumer_offsets"
                                         " WHERE topic = 'test.assessments' AND partition = 0"),
                     GRID);
    assert_int_equal(fx_query_int(g_dsn, "SELECT count(*) FROM outbox"), 0);

    /* The same batch again (a replay after a lost offset): a no-op. */
    char *before = dump_all(g_dsn);
    commit_ok(a, c, GRID, &st);
    read_store(c, got, GRID);
    bad = compare(combos, want, got, GRID, "second apply");
    if (bad)
        fail_msg("%d of %d combinations changed on a replay (%d session(s))", bad, GRID, sessions);
    char *after = dump_all(g_dsn);
    if (strcmp(before, after) != 0)
        fail_msg("the replay changed the store:\nbefore:\n%s\nafter:\n%s", before, after);
    free(before);
    free(after);
    assert_int_equal(st.upserted[SRL_KIND_ASSESSMENT], 0);
    assert_int_equal(st.deleted[SRL_KIND_ASSESSMENT], 0);
    assert_int_equal(st.stale, GRID);
    assert_int_equal(st.sessions, sessions);
    assert_int_equal(fx_query_int(g_dsn, "SELECT count(*) FROM outbox"), 0);

    srl_apply_free(a);
    srl_store_close(store);
    srl_test_drop_db(g_dsn);
    g_dsn[0] = '\0';
}

/* Every combination of row, tombstone and incoming record in one batch,
 * applied in one transaction. */
static void apply_grid_one_session(void **state)
{
    (void)state;
    run_grid(1);
}

/* The same batch split by key hash over two sessions, one thread each. */
static void apply_grid_two_sessions(void **state)
{
    (void)state;
    run_grid(2);
}

/* Several records of one key in a batch: only the highest version counts,
 * whatever the order they came in. */
static void apply_highest_in_batch_wins(void **state)
{
    (void)state;
    enum { N = 4 };
    char err[512], key[N][256];
    /* initial rows: key 0 v3, key 1 none, key 2 v20, key 3 v3 local */
    state_t init[N], want[N], got[N];
    combo_t combos[N]; /* for the messages only: the winning record */
    memset(init, 0, sizeof(init));
    init[0] =
        (state_t){.has_row = true, .row_version = 3, .row_origin = HUB, .row_type = "Initial"};
    init[2] =
        (state_t){.has_row = true, .row_version = 20, .row_origin = HUB, .row_type = "Initial"};
    init[3] =
        (state_t){.has_row = true, .row_version = 3, .row_origin = LOCAL, .row_type = "Initial"};

    fx_spoke(g_dsn, sizeof(g_dsn), LOCAL);
    /* A sysrepl session, as the consumer's own (srl_store_connect). */
    srl_store_t *store = srl_test_store_connect(g_dsn);
    PGconn *c = srl_store_conn(store);
    seed_store(c, init, N);
    srl_apply_t *a = srl_apply_new(LOCAL);
    assert_non_null(a);
    if (srl_apply_prepare(c, err, sizeof(err)) != SRL_STORE_OK)
        fail_msg("srl_apply_prepare: %s", err);
    for (int i = 0; i < N; i++)
        key_of(i, key[i], sizeof(key[i]));

#define UPSERT(i, v, type)                                           \
    do {                                                             \
        srl_entity_t e_ = make_entity(i, type, v);                   \
        if (!srl_apply_add_upsert(a, &e_, key[i], err, sizeof(err))) \
            fail_msg("srl_apply_add_upsert: %s", err);               \
        srl_entity_clear(&e_);                                       \
    } while (0)
#define TOMBSTONE(i, v) \
    assert_true(srl_apply_add_tombstone(a, SRL_KIND_ASSESSMENT, key[i], v, HUB, CHANGED_AT))

    /* key 0: upsert 7, tombstone 9, upsert 8: the tombstone wins */
    UPSERT(0, 7, "Upsert7");
    TOMBSTONE(0, 9);
    UPSERT(1, 11, "Upsert11"); /* interleaved with other keys */
    UPSERT(0, 8, "Upsert8");
    /* key 1: upsert 11, tombstone 13, upsert 12, upsert 14, tombstone 10:
     * upsert 14 wins (inserted; the tombstones never reach the store) */
    TOMBSTONE(1, 13);
    UPSERT(1, 12, "Upsert12");
    UPSERT(1, 14, "Upsert14");
    TOMBSTONE(1, 10);
    /* key 2 (row v20): upsert 15, tombstone 18: the winner is stale */
    UPSERT(2, 15, "Upsert15");
    TOMBSTONE(2, 18);
    /* key 3 (local row v3): tombstone 2, upsert 4, upsert 1: upsert 4 */
    TOMBSTONE(3, 2);
    UPSERT(3, 4, "Upsert4");
    UPSERT(3, 1, "Upsert1");
#undef UPSERT
#undef TOMBSTONE
    assert_int_equal(srl_apply_count(a), 13);

    memset(want, 0, sizeof(want));
    want[0] = (state_t){.has_tomb = true, .tomb_version = 9, .deleted = 1};
    want[1] = (state_t){.has_row = true,
                        .row_version = 14,
                        .row_origin = HUB,
                        .row_type = "Upsert14",
                        .upserted = 1};
    want[2] = init[2];
    want[3] = (state_t){
        .has_row = true, .row_version = 4, .row_origin = HUB, .row_type = "Upsert4", .upserted = 1};
    combos[0] = (combo_t){ROW_HUB, 0, true, 9};
    combos[1] = (combo_t){ROW_NONE, 0, false, 14};
    combos[2] = (combo_t){ROW_HUB, 0, true, 18};
    combos[3] = (combo_t){ROW_LOCAL, 0, false, 4};
    /* the rule applied to the winners alone gives the same (expect()
     * names every replacement "Incoming") */
    for (int i = 0; i < N; i++) {
        state_t e = expect(&combos[i], init[i]);
        if (e.upserted)
            snprintf(e.row_type, sizeof(e.row_type), "%s", want[i].row_type);
        assert_int_equal(compare(&combos[i], &want[i], &e, 1, "expectation"), 0);
        assert_int_equal(e.upserted, want[i].upserted);
        assert_int_equal(e.deleted, want[i].deleted);
    }

    srl_apply_stats_t st;
    commit_ok(a, c, 13, &st);
    read_store(c, got, N);
    int bad = compare(combos, want, got, N, "in-batch");
    if (bad)
        fail_msg("%d keys differ from the highest record of the batch", bad);
    assert_int_equal(st.records, 13);
    assert_int_equal(st.upserted[SRL_KIND_ASSESSMENT], 2);
    assert_int_equal(st.deleted[SRL_KIND_ASSESSMENT], 1);
    assert_int_equal(st.stale, 10);
    assert_int_equal(st.sessions, 1);

    srl_apply_free(a);
    srl_store_close(store);
    srl_test_drop_db(g_dsn);
    g_dsn[0] = '\0';
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(apply_grid_one_session, drop_store),
        cmocka_unit_test_teardown(apply_grid_two_sessions, drop_store),
        cmocka_unit_test_teardown(apply_highest_in_batch_wins, drop_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
