/*
 * horizon_fixture.h - helpers of the test_consumer_horizon*.c integration
 * tests (static functions, included by each): topics that drop tombstones
 * after 2 s, puts and deletes that keep an fx_model_t of what must win,
 * traffic until the broker has purged the deleted keys' tombstones, and
 * what a spoke's store says about its evidence (caught_up_at) and its
 * rebuilds (replication_log).
 *
 * Include <cmocka.h> (with its prelude), support/support.h and
 * consumer_fixture.h first.
 */
#ifndef SRL_TEST_HORIZON_FIXTURE_H
#define SRL_TEST_HORIZON_FIXTURE_H

#include <time.h>

/* Topic configs: tombstones kept 2 s, segments rolled and cleaned quickly. */
static const char *const hz_fast_cleaning[] = {
    "delete.retention.ms", "2000", "segment.ms", "100", "min.cleanable.dirty.ratio", "0.01", NULL};

/* Write entity number i of kind as an upsert; the model follows. */
static __attribute__((unused)) void hz_put(fx_t *fx, fx_model_t *m, srl_kind_t kind, int i,
                                           unsigned *seed)
{
    srl_entity_t e;
    char key[512];
    assert_true(i >= 0 && i < FX_MAX_KEYS);
    fx_make(kind, i, seed, &e);
    assert_true(srl_key_build(&e, key, sizeof(key)) > 0);
    if (!m->key[kind][i])
        m->key[kind][i] = strdup(key);
    if (m->count[kind] <= i)
        m->count[kind] = i + 1;
    m->version[kind][i] = fx_put(fx, &e);
    m->deleted[kind][i] = false;
    srl_entity_clear(&e);
}

/* Write a tombstone of entity number i of kind (put before); the model
 * follows. */
static __attribute__((unused)) void hz_delete(fx_t *fx, fx_model_t *m, srl_kind_t kind, int i)
{
    assert_non_null(m->key[kind][i]);
    m->version[kind][i] = fx_delete(fx, kind, m->key[kind][i]);
    m->deleted[kind][i] = true;
}

/* Whether any deleted key of the kinds in mask is still on its topic. */
static __attribute__((unused)) bool hz_deleted_keys_on_topics(fx_t *fx, const fx_model_t *m,
                                                              unsigned mask)
{
    for (int k = 0; k < SRL_KIND_COUNT; k++)
        for (int i = 0; (mask & (1u << k)) && i < m->count[k]; i++)
            if (m->deleted[k][i] && fx_topic_has_key(fx, fx->topics[k], m->key[k][i]))
                return true;
    return false;
}

/* Filler upserts (keys 100..129 of the kinds in mask) until the broker has
 * compacted away every deleted key of those kinds, tombstone included;
 * fails the test after 120 s. Returns how long it took (ms). */
static __attribute__((unused)) long long hz_purge_tombstones(fx_t *fx, fx_model_t *m, unsigned mask,
                                                             unsigned *seed)
{
    long long t0 = srl_test_now_ms(), deadline = t0 + 120000;
    bool on_topics = true;
    while (on_topics && srl_test_now_ms() < deadline) {
        for (int i = 100; i < 130; i++)
            for (int k = 0; k < SRL_KIND_COUNT; k++)
                if (mask & (1u << k))
                    hz_put(fx, m, (srl_kind_t)k, i, seed);
        fx_flush(fx);
        usleep(500000);
        on_topics = hz_deleted_keys_on_topics(fx, m, mask);
    }
    long long took = srl_test_now_ms() - t0;
    print_message("tombstones purged by the broker after %lld ms\n", took);
    if (on_topics)
        fail_msg("the broker did not purge the tombstones within 120 s");
    return took;
}

/* Rows of the spoke's content table of kind with key (a name for types and
 * policies). */
static __attribute__((unused)) long long hz_rows_with_key(const char *dsn, srl_kind_t kind,
                                                          const char *key)
{
    static const char *const q[] = {
        "SELECT count(*) FROM assessment_types WHERE name = '%s'",
        "SELECT count(*) FROM vulnerability_assessments WHERE key = '%s'",
        "SELECT count(*) FROM policies WHERE name = '%s'"};
    char sql[800];
    assert_null(strchr(key, '\''));
    snprintf(sql, sizeof(sql), q[kind], key);
    return fx_query_int(dsn, sql);
}

/* Lines in the spoke's replication_log giving the tombstone horizon as the
 * reason to rebuild topic. */
static __attribute__((unused)) long long hz_rebuild_reasons(const char *dsn, const char *topic)
{
    char sql[800];
    snprintf(
        sql, sizeof(sql),
        "SELECT count(*) FROM sysrepl.replication_log WHERE message LIKE 'rebuilding: last caught up"
        " %% ago, beyond delete.retention.ms=2.0s of topic %s %%'",
        topic);
    return fx_query_int(dsn, sql);
}

/* The oldest / newest caught_up_at of the spoke's partitions, in ms since
 * the epoch (0: none). */
static __attribute__((unused)) long long hz_caught_up_min_ms(const char *dsn)
{
    return fx_query_int(dsn, "SELECT (extract(epoch from min(caught_up_at))*1000)::bigint"
                             " FROM sysrepl.consumer_offsets");
}

static __attribute__((unused)) long long hz_caught_up_max_ms(const char *dsn)
{
    return fx_query_int(dsn, "SELECT (extract(epoch from max(caught_up_at))*1000)::bigint"
                             " FROM sysrepl.consumer_offsets");
}

/* Wall clock in ms since the epoch, to compare with caught_up_at. */
static __attribute__((unused)) long long hz_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Children a test started (consumer, bridge): a failing test leaves by a
 * longjmp, and a daemon left behind would run on for ever, so the test's
 * teardown (hz_kill_children) kills what is still tracked. A test untracks
 * a child once it has reaped it itself. */
#define HZ_MAX_CHILDREN 4
static pid_t hz_children[HZ_MAX_CHILDREN];

static __attribute__((unused)) void hz_track(pid_t pid)
{
    for (int i = 0; i < HZ_MAX_CHILDREN; i++)
        if (hz_children[i] == 0) {
            hz_children[i] = pid;
            return;
        }
    fail_msg("more than %d children to track", HZ_MAX_CHILDREN);
}

static __attribute__((unused)) void hz_untrack(pid_t pid)
{
    for (int i = 0; i < HZ_MAX_CHILDREN; i++)
        if (hz_children[i] == pid)
            hz_children[i] = 0;
}

static __attribute__((unused)) int hz_kill_children(void **state)
{
    (void)state;
    for (int i = 0; i < HZ_MAX_CHILDREN; i++) {
        if (hz_children[i] <= 0)
            continue;
        int status;
        kill(hz_children[i], SIGCONT);
        kill(hz_children[i], SIGKILL);
        waitpid(hz_children[i], &status, 0);
        hz_children[i] = 0;
    }
    return 0;
}

/* A spoke that is running and that a test waits on. */
typedef struct hz_wait {
    const fx_model_t *model;
    const char *dsn;
    unsigned mask;     /* kinds compared with the model */
    const char *topic; /* whose rebuild reason must be logged (NULL: none) */
    pid_t consumer;    /* must stay alive meanwhile */
} hz_wait_t;

static __attribute__((unused)) bool hz_consumer_alive(pid_t pid)
{
    int status;
    return waitpid(pid, &status, WNOHANG) == 0;
}

/* srl_test_wait_until: the spoke mirrors the model (and logged the
 * rebuild reason for w->topic). Fails the test if the consumer exited. */
static __attribute__((unused)) bool hz_spoke_ready(void *arg)
{
    const hz_wait_t *w = arg;
    if (!hz_consumer_alive(w->consumer)) {
        hz_untrack(w->consumer); /* reaped */
        fail_msg("the consumer (pid %d) exited while the test waited on it", (int)w->consumer);
    }
    return fx_model_matches(w->model, w->dsn, w->mask) &&
           (!w->topic || hz_rebuild_reasons(w->dsn, w->topic) >= 1);
}

/* srl_test_wait_until: every partition of the spoke has evidence of being
 * caught up (consumer_offsets.caught_up_at set). */
static __attribute__((unused)) bool hz_evidence_stamped(void *arg)
{
    const char *dsn = arg;
    return fx_query_int(dsn, "SELECT count(*) FROM sysrepl.consumer_offsets") > 0 &&
           fx_query_int(dsn, "SELECT count(*) FROM sysrepl.consumer_offsets"
                             " WHERE caught_up_at IS NULL") == 0;
}

#endif
