/*
 * main.c - sysrepl-producer: the hub's outbox -> Avro records -> topics.
 *
 * This file: arguments and config, signals, and the loop that drives the
 * other files (producer.h names them): sessions.c keeps the two store
 * sessions and the producer lock, drain.c moves batches from the outbox
 * to the sink and deletes what was delivered, stats.c reports, startup.c
 * makes the sink, checks the topics and runs the snapshot.
 *
 * Start: config (exit 1 naming the key), store (retried while unreachable;
 * a bad DSN, a store at another schema version or a spoke store: exit 3),
 * the producer lock (one producer per store: a second one waits and takes
 * over when the first dies), topics created or checked, writer schemas
 * published, topics written by another hub refused (exit 2), snapshot on
 * --snapshot or when every content topic is empty.
 *
 * Signals: SIGTERM and SIGINT ask for a clean stop (no new reads, wait up
 * to 30 s for what is in flight, delete what was delivered, exit 0); the
 * handler only sets a flag. kill -9 anywhere is safe: undeleted rows are
 * published again on the next start (duplicates are harmless, and a row
 * superseded meanwhile is not published again).
 *
 * Exit codes: 0 clean stop, 1 config or usage error, 2 refused to run
 * (a topic that would lose state, topics written by another hub), 3 store
 * unusable (bad DSN, authentication, schema version, not a hub), 4 an
 * unexpected fatal error.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drain.h"
#include "producer.h"
#include "sessions.h"
#include "startup.h"
#include "stats.h"
#include "sysrepl/clock.h"
#include "sysrepl/cmdline.h"
#include "sysrepl/config.h"
#include "sysrepl/log.h"

#define STOP_GRACE_MS 30000 /* how long a clean stop waits for deliveries */

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t reload_requested;

/* SIGTERM, SIGINT: stop. SIGHUP: reload the config (run_loop). */
static void on_signal(int sig)
{
    if (sig == SIGHUP)
        reload_requested = 1;
    else
        stop_requested = 1;
}

/* SIGHUP: the common policy (srl_config_reload), then read again what the
 * loop caches of the reloadable keys. */
static void reload_config(producer_t *p)
{
    char err[512];
    reload_requested = 0;
    if (!srl_config_reload(p->cfg, "producer", NULL, err, sizeof(err)))
        return; /* logged; nothing changed */
    p->batch_size = (int)srl_config_int(p->cfg, SRL_KEY_PRODUCER_BATCH_SIZE);
    p->poll_interval_ms = srl_config_int(p->cfg, SRL_KEY_PRODUCER_POLL_INTERVAL_MS);
    p->stats_interval_ms = srl_config_int(p->cfg, SRL_KEY_STATS_INTERVAL_MS);
}

/* Sleep until the sink or the store has something, or a timer is due;
 * then serve the work session's socket (notifications, a lost session). */
static void wait_for_work(producer_t *p, bool stopping)
{
    struct pollfd fds[4];
    int nfds = 0;
    int kfd = p->sink->ops->wait_fd ? p->sink->ops->wait_fd(p->sink) : -1;
    if (kfd >= 0)
        fds[nfds++] = (struct pollfd){.fd = kfd, .events = POLLIN};
    int pfd = p->store_ok ? PQsocket(srl_store_conn(p->st)) : -1;
    if (pfd >= 0)
        fds[nfds++] = (struct pollfd){.fd = pfd, .events = POLLIN};
    if (p->deleting && p->store_ok)
        fds[nfds++] = (struct pollfd){.fd = PQsocket(srl_store_conn(p->lock)), .events = POLLIN};
    int wfd = srl__drain_wal_socket(p);
    if (wfd >= 0)
        fds[nfds++] = (struct pollfd){.fd = wfd, .events = POLLIN};
    int64_t timeout = srl__drain_idle(p) ? p->next_poll_ms - srl_clock_mono_ms() : 100;
    if (p->wal_streaming)
        timeout = p->wal ? (p->once ? 50 : 1000) : 200; /* the stream wakes us */
    if (srl__drain_may_read(p, stopping))
        timeout = 0;
    if (timeout > LOCK_CHECK_MS)
        timeout = LOCK_CHECK_MS;
    if (timeout < 0)
        timeout = 0;
    if (kfd < 0 && p->ring_count)
        timeout = 5; /* a sink without a descriptor is polled every few ms */
    int64_t w0 = srl_clock_mono_us();
    if (poll(fds, (nfds_t)nfds, (int)timeout) < 0 && errno != EINTR)
        srl__producer_nap(p, 10);
    p->wait_us += srl_clock_mono_us() - w0;
    if (pfd >= 0)
        srl__sessions_serve(p);
}

/* The drain loop (one thread): reconnect, deliver, retire, read, report,
 * sleep. Returns the exit code. */
static int run_loop(producer_t *p)
{
    int exit_code = EXIT_OK;
    int64_t stop_deadline = 0;
    p->stats_at_ms = p->state_at_ms = srl_clock_mono_ms();
    for (;;) {
        int64_t now = srl_clock_mono_ms();
        if (stop_requested && !stop_deadline) {
            stop_deadline = now + STOP_GRACE_MS;
            srl_log(SRL_LOG_INFO, "producer", "stopping: waiting for records in flight",
                    "in_flight=%zu", p->sink->ops->in_flight(p->sink));
        }
        if (!p->store_ok && !stop_requested && !srl__sessions_connect(p, false, &exit_code)) {
            if (exit_code)
                return exit_code;
            continue; /* stop requested */
        }
        if (reload_requested)
            reload_config(p);
        p->sink->ops->poll(p->sink, 0);
        srl__drain_retire(p);
        if (stop_deadline && (srl__drain_idle(p) || now >= stop_deadline))
            break;
        if (p->sink_broken && p->ring_count == 0 && !srl__startup_sink_again(p, &exit_code))
            return exit_code;
        if (p->once && p->idle_seen && srl__drain_idle(p))
            break;
        srl__sessions_check_lock(p);
        if (p->snapshot_due && p->ring_count == 0 && !stop_deadline) {
            /* the slot was lost at a reconnect (drain.c) */
            p->snapshot_due = false;
            if (!srl__startup_topics(p, true, &exit_code))
                return exit_code;
        }
        srl__drain_step(p, stop_deadline != 0);
        srl__stats_tick(p, now);
        wait_for_work(p, stop_deadline != 0);
    }
    return exit_code;
}

static const srl_cmdline_opt_t producer_opts[] = {
    {"snapshot", 0, NULL,
     "publish the full state first, and tombstone keys the topics hold but the store does "
     "not (also done on a first start against empty topics)"},
    {"once", 0, NULL, "exit 0 once the outbox is empty (tests, benchmarks)"},
    {"ack-log", 0, "FILE", "write \"version wallclock_us\" per delivered record (debug)"},
    {NULL, 0, NULL, NULL}};
enum { OPT_SNAPSHOT, OPT_ONCE, OPT_ACK_LOG, OPT_COUNT };

static const srl_cmdline_t producer_cmdline = {
    .program = "sysrepl-producer",
    .prog_mask = SRL_PROG_PRODUCER,
    .synopsis = "[-c FILE] [-X key=value]... [--snapshot] [--once]",
    .about = "Publishes the hub store's changes (its outbox) to the Kafka topics.",
    .opts = producer_opts,
    .epilog = "Exit codes: 0 stopped cleanly, 1 config or usage error, 2 refused to run (a topic\n"
              "that would lose state, topics of another hub), 3 store unusable, 4 fatal error.",
};

/* The kinds a replicate list covers, as (1u << kind) bits. */
static unsigned kind_mask_of(unsigned replicate)
{
    unsigned m = 0;
    if (replicate & SRL_REPLICATE_ASSESSMENTS)
        m |= 1u << SRL_KIND_ASSESSMENT_TYPE | 1u << SRL_KIND_ASSESSMENT;
    if (replicate & SRL_REPLICATE_POLICIES)
        m |= 1u << SRL_KIND_POLICY;
    return m;
}

/* Command line and config into p. false with *exit_code when the program
 * must end here (EXIT_OK after --help or --print-config). */
static bool configure(producer_t *p, int argc, char **argv, bool *snapshot, int *exit_code)
{
    char err[512];
    const char *opt[OPT_COUNT];
    *exit_code = EXIT_CONFIG;
    int rc = srl_cmdline_parse(&producer_cmdline, p->cfg, &argc, argv, opt);
    if (rc != SRL_CMDLINE_RUN) {
        *exit_code = rc == 0 ? EXIT_OK : EXIT_CONFIG;
        return false;
    }
    *snapshot = opt[OPT_SNAPSHOT] != NULL;
    p->once = opt[OPT_ONCE] != NULL;
    const char *ack_log = opt[OPT_ACK_LOG];
    if (!srl_config_require(p->cfg, SRL_KEY_STORE_DSN, err, sizeof(err))) {
        fprintf(stderr, "sysrepl-producer: %s\n", err);
        return false;
    }
    srl_config_apply_log(p->cfg);
    snprintf(p->instance_id, sizeof(p->instance_id), "%s",
             srl_config_str(p->cfg, SRL_KEY_INSTANCE_ID));
    p->kind_mask = kind_mask_of(srl_config_mask(p->cfg, SRL_KEY_REPLICATE));
    p->batch_size = (int)srl_config_int(p->cfg, SRL_KEY_PRODUCER_BATCH_SIZE);
    p->capture = srl_config_enum(p->cfg, SRL_KEY_PRODUCER_CAPTURE);
    p->poll_interval_ms = srl_config_int(p->cfg, SRL_KEY_PRODUCER_POLL_INTERVAL_MS);
    p->stats_interval_ms = srl_config_int(p->cfg, SRL_KEY_STATS_INTERVAL_MS);
    p->log_retention_ms = srl_config_int(p->cfg, SRL_KEY_LOG_RETENTION);
    srl_store_set_application_name("sysrepl-producer", p->instance_id);
    if (ack_log && !(p->ack_log = fopen(ack_log, "w"))) {
        fprintf(stderr, "sysrepl-producer: --ack-log %s: %s\n", ack_log, strerror(errno));
        return false;
    }
    *exit_code = EXIT_OK;
    return true;
}

int main(int argc, char **argv)
{
    producer_t p = {.stop = &stop_requested};
    char err[512];
    int exit_code = EXIT_OK;
    bool snapshot = false;

    p.cfg = srl_config_new(SRL_PROG_PRODUCER);
    p.logq = srl_logq_new("producer", SRL_LOG_INFO);
    if (!p.cfg || !p.logq) {
        fprintf(stderr, "sysrepl-producer: out of memory\n");
        exit_code = EXIT_FATAL;
        goto cleanup;
    }
    if (!configure(&p, argc, argv, &snapshot, &exit_code))
        goto cleanup;

    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    p.reg = srl_registry_new(err, sizeof(err));
    if (!p.reg) {
        srl_log(SRL_LOG_ERROR, "producer", "cannot load the schemas", "reason=%s", srl_log_q(err));
        exit_code = EXIT_FATAL;
        goto cleanup;
    }
    if (!srl__sessions_connect(&p, true, &exit_code))
        goto cleanup;
    srl_log_set_sink(srl_logq_sink, p.logq);
    srl_log(SRL_LOG_INFO, "producer", "starting",
            "instance=%s prefix=%s replicate=0x%x batch_size=%d version=%s",
            srl_log_q(p.instance_id), srl_log_q(srl_config_str(p.cfg, SRL_KEY_TOPIC_PREFIX)),
            p.kind_mask, p.batch_size, SRL_VERSION);
    bool snap = snapshot || p.snapshot_due;
    p.snapshot_due = false;
    if (!srl__startup_sink(&p, &exit_code) || !srl__startup_topics(&p, snap, &exit_code))
        goto cleanup;
    srl__stats_bookkeeping(&p, true);
    exit_code = run_loop(&p);
    srl__drain_finish(&p);
    srl__stats_log(&p, "stopped");
    srl__stats_bookkeeping(&p, true);

cleanup:
    srl_log_set_sink(NULL, NULL);
    if (p.sink)
        p.sink->ops->close(p.sink);
    srl__drain_free(&p);
    srl__sessions_drop(&p);
    srl_registry_free(p.reg);
    if (p.ack_log)
        fclose(p.ack_log);
    srl_logq_free(p.logq);
    srl_config_free(p.cfg);
    return exit_code;
}
