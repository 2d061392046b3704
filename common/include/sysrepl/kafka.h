/*
 * kafka.h - what the producer, the consumer and the bridge share about
 * Kafka: topic names, the record headers we write, topic creation and
 * checking through the Admin API, and the one place where librdkafka
 * errors are classified as retriable or fatal.
 */
#ifndef SRL_KAFKA_H
#define SRL_KAFKA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "sysrepl/config.h"
#include "sysrepl/model.h"

/* Record headers. Values are ASCII so any Kafka tool shows them:
 *   sysrepl.version  decimal version of the change (on every record, and
 *                    the only carrier of the version on a tombstone)
 *   sysrepl.origin   instance id of the hub that wrote the record */
#define SRL_HDR_VERSION "sysrepl.version"
#define SRL_HDR_ORIGIN "sysrepl.origin"

/* Topic suffix of the schema topic: <prefix>.schemas, keyed by the
 * fingerprint as 16 lowercase hex digits, value the schema JSON. */
#define SRL_SCHEMAS_SUFFIX "schemas"

/* "<prefix>.<kind name>" into buf; returns false if it does not fit. */
bool srl_topic_name(const char *prefix, srl_kind_t kind, char *buf, size_t buf_size);
bool srl_topic_name_schemas(const char *prefix, char *buf, size_t buf_size);
/* The kind a topic carries, from its name and the prefix. */
bool srl_topic_kind(const char *prefix, const char *topic, srl_kind_t *kind);

/* Settings of the topics the hub creates. */
typedef struct srl_topic_settings {
    int partitions;
    int replication_factor;
    int min_insync_replicas;
    int64_t segment_ms;
    int64_t delete_retention_ms;
} srl_topic_settings_t;

/* Defaults of srl_topic_settings_t when a field is 0 ("auto"): the
 * replication factor is the smaller of this and the brokers' number; the
 * min.insync.replicas is this when the replication factor reaches 3, else
 * 1 (a second replica alone must not stop the writes when one is down). */
#define SRL_TOPIC_DEFAULT_REPLICATION_FACTOR 3
#define SRL_TOPIC_DEFAULT_MIN_INSYNC_REPLICAS 2

/* Fill the 0 ("auto") fields of s for a cluster of brokers brokers (>= 1),
 * then check them: false with errstr naming the keys when
 * min_insync_replicas is greater than replication_factor ("a write could
 * never be acknowledged"). */
bool srl_topic_settings_resolve(srl_topic_settings_t *s, int brokers, char *errstr,
                                size_t errstr_size);

/* Create each topic that is missing (compacted, with the settings above);
 * check each that exists: its cleanup.policy must include "compact", or
 * it is refused ("topic sysrepl.policies has cleanup.policy=delete: ...").
 * partitions_override: when not NULL, the schema topic and such single-
 * partition topics can pass their own count (index-aligned with topics;
 * 0 = use s->partitions). The 0 fields of s are resolved first
 * (srl_topic_settings_resolve) for the brokers the cluster's metadata
 * lists; settings it refuses fail here with its message, which names
 * topic.min_insync_replicas. Blocks up to timeout_ms. */
bool srl_kafka_ensure_topics(rd_kafka_t *rk, const srl_topic_settings_t *s,
                             const char *const *topics, const int *partitions_override,
                             size_t count, int timeout_ms, char *errstr, size_t errstr_size);

/* Read one config value of a topic (e.g. "delete.retention.ms") from the
 * broker into value (NUL-terminated). */
bool srl_kafka_topic_config(rd_kafka_t *rk, const char *topic, const char *name, char *value,
                            size_t value_size, int timeout_ms, char *errstr, size_t errstr_size);

/* The fewest replicas any partition of the topic has, from metadata; -1
 * with errstr if the topic does not exist or the broker did not answer. */
int srl_kafka_topic_replicas(rd_kafka_t *rk, const char *topic, int timeout_ms, char *errstr,
                             size_t errstr_size);

/* A hub whose content topics have one replica loses its published changes
 * with that broker's disk (spokes could not rebuild): one warning line of
 * component per such topic ("topic has a single replica"), said at every
 * start whoever created the topics. Metadata errors stay silent here: the
 * first publish reports a broker that is away. */
void srl_kafka_warn_single_replica(rd_kafka_t *rk, const char *component, const char *const *topics,
                                   size_t count, int timeout_ms);

/* Number of partitions of a topic, from metadata; -1 with errstr if the
 * topic does not exist or the broker did not answer. */
int srl_kafka_partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms, char *errstr,
                              size_t errstr_size);

/* Find a header's value as a NUL-terminated copy in buf. */
bool srl_kafka_header_str(const rd_kafka_message_t *m, const char *name, char *buf,
                          size_t buf_size);
/* The sysrepl.version header of a message, or -1 when missing/malformed. */
int64_t srl_kafka_header_version(const rd_kafka_message_t *m);

/* Build a librdkafka conf in three layers, the one way every client of
 * ours does it: our defaults (a user's kafka.* key may override them),
 * then the kafka.* keys of cfg, then the properties the program cannot
 * work without (they override the user). Each table is {name, value}
 * pairs ending with {NULL, NULL}; either may be NULL. false with errstr
 * naming the property and librdkafka's reason; conf is left to the caller
 * to destroy. */
bool srl_kafka_conf_layer(rd_kafka_conf_t *conf, const srl_config_t *cfg,
                          const char *const defaults[][2], const char *const forced[][2],
                          char *errstr, size_t errstr_size);

/* The one classification of librdkafka errors: true when waiting and
 * retrying can succeed (broker away, timeouts, leader changes), false when
 * it cannot (authorization, unknown topic after creation, config). */
bool srl_kafka_err_is_retriable(rd_kafka_resp_err_t err);

/* True for the errors that say this client is not let in or not allowed:
 * authentication (wrong password, unknown user), TLS (untrusted
 * certificate, host name mismatch) and authorization (a missing ACL).
 * Retrying cannot fix them; at start they are fatal, later they are
 * logged, shown in status and retried with backoff (docs/operations.md). */
bool srl_kafka_err_is_denied(rd_kafka_resp_err_t err);

/* Every message about a refusal by the broker's authorizer contains this
 * ("not authorized to Create topic sysrepl.policies ..."), so a caller that
 * got only an errstr can tell a refusal from a broker that is away. */
#define SRL_KAFKA_DENIED_MARK "not authorized"

typedef enum {
    SRL_KAFKA_ACCESS_OK,     /* a broker answered a metadata request */
    SRL_KAFKA_ACCESS_AWAY,   /* no broker answered in time: retry */
    SRL_KAFKA_ACCESS_DENIED, /* refused: authentication, TLS, or a bad kafka.* config */
} srl_kafka_access_t;

/* The start-up check every program makes before anything else: connect
 * with cfg's kafka.* properties (a short-lived client of its own) and ask
 * for metadata, for up to timeout_ms. DENIED puts one line naming the
 * cause into errstr ("Kafka refused the connection (_AUTHENTICATION):
 * ... invalid credentials ..."), AWAY the last connection error; AWAY
 * returns as soon as every bootstrap broker failed without a refusal
 * (connection refused), so a broker that is down costs no wait here. */
srl_kafka_access_t srl_kafka_check_access(const srl_config_t *cfg, int timeout_ms, char *errstr,
                                          size_t errstr_size);

#endif
