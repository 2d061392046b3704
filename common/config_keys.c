/*
 * config_keys.c - the key table: every configuration key of every program.
 *
 * Adding a key is one line here; the loader, --help, the example config and
 * docs/config-reference.md follow (regenerate the doc: see
 * tests/unit/test_config.c, config_reference_doc_matches_table). Defaults
 * are written in config syntax and parsed by the loader itself, so a
 * default that does not validate fails the unit tests.
 *
 * RELOAD means what a SIGHUP does (srl_config_reload, config.h): the new
 * value is applied and the daemon reads it again. Mark a key RELOAD only
 * when every program that uses it re-reads it after a reload; otherwise
 * RESTART, and a SIGHUP logs that the change "needs a restart".
 */
#include "sysrepl/config.h"

#define P SRL_PROG_PRODUCER
#define C SRL_PROG_CONSUMER
#define B SRL_PROG_BRIDGE
#define L SRL_PROG_CLI
#define ALL SRL_PROG_ALL
#define RELOAD true
#define RESTART false

/* name, default, [range | choices], programs, reloadable, description */
#define STR(n, d, pr, rl, ds)                                \
    {                                                        \
        n, SRL_CONF_STRING, d, 0, 0, NULL, pr, rl, false, ds \
    }
#define SECRET(n, d, pr, rl, ds)                            \
    {                                                       \
        n, SRL_CONF_STRING, d, 0, 0, NULL, pr, rl, true, ds \
    }
#define INT(n, d, lo, hi, pr, rl, ds)                       \
    {                                                       \
        n, SRL_CONF_INT, d, lo, hi, NULL, pr, rl, false, ds \
    }
#define BOOL(n, d, pr, rl, ds)                             \
    {                                                      \
        n, SRL_CONF_BOOL, d, 0, 0, NULL, pr, rl, false, ds \
    }
#define ENUM(n, d, ch, pr, rl, ds)                       \
    {                                                    \
        n, SRL_CONF_ENUM, d, 0, 0, ch, pr, rl, false, ds \
    }
#define LIST(n, d, ch, minn, pr, rl, ds)                    \
    {                                                       \
        n, SRL_CONF_LIST, d, minn, 0, ch, pr, rl, false, ds \
    }
#define DUR(n, d, lo, hi, pr, rl, ds)                               \
    {                                                               \
        n, SRL_CONF_DURATION_MS, d, lo, hi, NULL, pr, rl, false, ds \
    }

#define SECOND 1000LL
#define MINUTE (60 * SECOND)
#define HOUR (60 * MINUTE)
#define DAY (24 * HOUR)

const srl_config_key_t srl_config_keys[] = {
    STR("instance.id", "", ALL, RESTART,
        "This instance's id: the origin on every record it publishes (required by producer, consumer and bridge)."),
    ENUM("role", "hub", "hub|spoke", ALL, RESTART,
         "hub pushes its content to the topics; spoke pulls from them and mirrors it."),
    SECRET(
        "store.dsn", "", P | C | L, RESTART,
        "PostgreSQL conninfo of this instance's store (\"host=... dbname=...\" or a postgresql:// URI); may hold a password, so never logged."),
    STR("topic.prefix", "sysrepl", ALL, RESTART,
        "Topics are <prefix>.assessment-types, <prefix>.vulnerability-assessments, <prefix>.policies, <prefix>.schemas."),
    LIST("replicate", "assessments,policies", "assessments|policies", 1, ALL, RESTART,
         "Kinds to replicate: assessments (with their types) and/or policies."),
    ENUM("transport", "kafka", "kafka|http", P | C, RESTART,
         "kafka talks to the broker directly; http goes through a sysrepl-bridge at bridge.url."),

    INT("topic.partitions", "3", 1, 1024, P | B | L, RESTART,
        "Partitions of each content topic when sysrepl creates it."),
    INT("topic.replication_factor", "1", 1, 32, P | B | L, RESTART,
        "Replication factor of each topic when sysrepl creates it."),
    INT("topic.min_insync_replicas", "1", 1, 32, P | B | L, RESTART,
        "min.insync.replicas of each topic when sysrepl creates it."),
    DUR("topic.segment_ms", "1h", 1 * SECOND, 365 * DAY, P | B | L, RESTART,
        "segment.ms of each topic: how soon a closed segment can be compacted."),
    DUR("topic.delete_retention_ms", "7d", 1 * MINUTE, 3650 * DAY, P | B | L, RESTART,
        "delete.retention.ms: how long tombstones stay, so the longest a spoke may be offline without a full rebuild."),

    INT("producer.batch_size", "20000", 1, 100000, P, RELOAD,
        "Outbox rows read and published per batch."),
    DUR("producer.poll_interval_ms", "1000", 1, 1 * HOUR, P, RELOAD,
        "How often the outbox is polled when it was empty."),
    DUR("producer.linger_ms", "1", 0, 900 * SECOND, P, RESTART,
        "librdkafka linger.ms: how long to wait to fill a Kafka batch."),

    INT("consumer.batch_size", "20000", 1, 100000, C, RELOAD,
        "Records read and applied per batch (one transaction, or one per session when split). A rebuild reads at most 5000 at a time."),
    DUR("consumer.poll_timeout_ms", "100", 1, 1 * MINUTE, C, RELOAD,
        "How long one poll waits for records."),
    INT("consumer.apply_sessions", "2", 1, 8, C, RESTART,
        "Database sessions that apply one large batch side by side, each taking the assessments of its share of keys (types and policies stay on the first); the offsets are committed after all of them. 1: every batch in one transaction with its offsets."),
    BOOL(
        "consumer.synchronous_commit", "true", C, RESTART,
        "Apply transactions wait for their WAL to reach disk, so a crash of the spoke's PostgreSQL never takes back a version a reader has seen. false: faster commits (SET LOCAL synchronous_commit = off); a server crash may then roll back the last moments of applies, which are read again from the topics, and readers may briefly see an entity at an older version."),
    INT("consumer.apply_split_min", "1000", 1, 100000, C, RESTART,
        "A batch is split over the sessions only when each would get at least this many records; smaller batches (the low-latency case) take one transaction."),

    STR("bridge.url", "", P | C, RESTART,
        "Base URL of the sysrepl-bridge (transport http), e.g. https://hub.example:8443."),
    SECRET("bridge.api_key", "", P | C, RESTART,
           "API key sent to the bridge (transport http). Never logged."),
    STR("bridge.ca_file", "", P | C, RESTART,
        "CA certificate file to verify the bridge's TLS certificate; empty: system CAs."),
    DUR("bridge.timeout_ms", "30000", 1, 1 * HOUR, P | C, RESTART,
        "Timeout of one HTTP request to the bridge."),

    STR("bridge.listen", "127.0.0.1", B, RESTART, "Address the bridge listens on."),
    INT("bridge.port", "8443", 1, 65535, B, RESTART, "Port the bridge listens on."),
    STR("bridge.tls_cert", "", B, RESTART,
        "TLS certificate file (PEM) of the bridge; required unless bridge.plain_http."),
    STR("bridge.tls_key", "", B, RESTART, "TLS private key file (PEM) of the bridge."),
    BOOL("bridge.plain_http", "false", B, RESTART,
         "Serve plain HTTP without TLS (only behind a TLS-terminating proxy or for tests)."),
    STR("bridge.keys_file", "", B, RESTART,
        "File of API keys the bridge accepts and what each may do."),
    INT("bridge.max_body_bytes", "16777216", 1024, 1073741824, B, RELOAD,
        "Largest request body accepted; larger gets 413."),
    INT("bridge.max_batch_records", "10000", 1, 1000000, B, RELOAD,
        "Most records accepted or returned in one request."),
    INT("bridge.max_connections", "2000", 1, 1000000, B, RESTART,
        "Most concurrent client connections; lowered at start (and logged) to fit the open-files limit (RLIMIT_NOFILE, raised to its hard limit first)."),
    INT("bridge.max_connections_per_ip", "0", 0, 1000000, B, RESTART,
        "Most concurrent connections from one client address; more are closed at once, unanswered (0: no limit but bridge.max_connections)."),
    DUR("bridge.header_timeout_ms", "10000", 100, 1 * HOUR, B, RESTART,
        "Time a connection has to deliver a request's whole header, from its opening or its previous answer; then it is closed (slow-header clients; idle keep-alive connections too)."),
    STR("bridge.tls_priorities",
        "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:+CHACHA20-POLY1305:-MAC-ALL:+AEAD",
        B, RESTART,
        "GnuTLS priority string of the bridge's TLS: by default TLS 1.2 and 1.3 only, forward-secret (ECDHE) key exchange and AEAD ciphers only."),
    DUR("bridge.request_timeout_ms", "30000", 1, 1 * HOUR, B, RELOAD,
        "Time allowed to receive a request and send its response."),
    INT("bridge.http_threads", "2", 1, 64, B, RESTART,
        "HTTP server threads (epoll each); waiting requests hold no thread."),
    INT("bridge.readers", "4", 1, 64, B, RESTART,
        "Kafka reader threads for reads below the in-memory window (rebuilds) and broker queries."),
    INT("bridge.window_bytes", "8388608", 0, 1073741824, B, RESTART,
        "Bytes of the most recent records kept in memory per partition, served without the broker."),
    DUR("bridge.long_poll_max_ms", "30000", 0, 5 * MINUTE, B, RELOAD,
        "Longest a fetch waits for new records before returning empty."),

    ENUM("log.level", "info", "debug|info|warn|error", ALL, RELOAD,
         "Least severe level written to the log."),
    ENUM("log.format", "logfmt", "logfmt|json", ALL, RELOAD,
         "Log line format: logfmt (key=value) or json (one object per line, the same fields)."),
    DUR("log.retention", "7d", 1 * HOUR, 3650 * DAY, P | C, RESTART,
        "How long rows stay in the store's sysrepl.replication_log (stats lines, errors); older rows are deleted by the producer and the consumer."),
    DUR("stats.interval_ms", "10000", 0, 1 * DAY, P | C | B, RELOAD,
        "Interval of the one-line stats summary in the log; 0 turns it off."),

    {"kafka.", SRL_CONF_KAFKA, "kafka.bootstrap.servers = localhost:9092", 0, 0, NULL,
     P | C | B | L, false, false,
     "kafka.<property> passes <property> to librdkafka (see its CONFIGURATION.md); checked at load time."},
};

const size_t srl_config_key_count = sizeof srl_config_keys / sizeof srl_config_keys[0];
