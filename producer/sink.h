/*
 * sink.h - the producer's transport seam: where published records go.
 * This file is private to sysrepl-producer.
 *
 * The drain (outbox.c, drain.c) knows nothing of Kafka: it hands a
 * batch of srl_record_t to a sink, polls the sink until every record of the
 * batch has a delivery result, and deletes the outbox rows of a batch only
 * when all of its records were delivered. Two sinks:
 *   sink_kafka.c  transport = kafka: librdkafka, idempotent, acks=all
 *   sink_http.c   transport = http: POST the batch to a sysrepl-bridge
 *                 (to be written: publish() starts the request, poll()
 *                 completes it and marks every record of the batch at once)
 *
 * Contract of a sink:
 *   - publish() starts delivering every record of a batch and returns at
 *     once; the records (and the bytes they point to) stay the caller's and
 *     must live until the batch is complete (b->pending == 0).
 *   - Records of one key, published in order (also across batches), are
 *     delivered in that order (Kafka: same partition, idempotent producer).
 *   - poll() waits up to timeout_ms for delivery results and records them
 *     in the batches: b->pending drops to 0 when every record has a result;
 *     b->failed counts the failed ones, b->error holds the first reason.
 *     A sink retries transient failures itself for as long as it is
 *     configured to; a failure reported here is one it gave up on.
 *   - wait_fd() (optional) is a descriptor that becomes readable when
 *     poll() has work, so the loop can sleep on it with the store's socket.
 *   - The optional operations (NULL when a transport cannot do them) are
 *     the hub's checks at start: publishing writer schemas, refusing topics
 *     another hub writes, and the snapshot's read-back of the topics' keys.
 */
#ifndef SRL_PRODUCER_SINK_H
#define SRL_PRODUCER_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sysrepl/config.h"
#include "sysrepl/record.h"

/* One batch of records in flight. The caller fills records/count and zeroes
 * the rest; the sink owns nothing in it. */
typedef struct srl_sink_batch {
    srl_record_t *records;
    size_t count;
    size_t pending;       /* records without a result yet */
    size_t failed;        /* records the sink gave up on */
    bool failed_fatal;    /* a failure retrying cannot fix (authorization, config) */
    char error[256];      /* the first failure's reason */
    int64_t published_us; /* monotonic time of publish(), for latency stats */
} srl_sink_batch_t;

/* Called for each key found in a topic by scan_keys: tombstone is true
 * when the key's last record there is a tombstone. key is not
 * NUL-terminated and only valid during the call. */
typedef void (*srl_sink_key_fn)(void *arg, const char *key, size_t key_len, bool tombstone);

typedef struct srl_sink srl_sink_t;

typedef struct srl_sink_ops {
    const char *name; /* "kafka", "http" */

    /* Start delivering b's records (see the contract above). false: none
     * was published (errstr says why); the batch can be published again. */
    bool (*publish)(srl_sink_t *sink, srl_sink_batch_t *b, char *errstr, size_t errstr_size);
    /* Collect delivery results for up to timeout_ms (0: only what is ready). */
    void (*poll)(srl_sink_t *sink, int timeout_ms);
    /* Descriptor readable when poll() has work, or -1. */
    int (*wait_fd)(srl_sink_t *sink);
    /* Records published and without result, over all batches. */
    size_t (*in_flight)(srl_sink_t *sink);
    /* Free everything; in-flight batches get no more results. NULL accepted. */
    void (*close)(srl_sink_t *sink);

    /* ---- optional ---- */

    /* Publish a writer schema (key: fingerprint as 16 hex digits) and block
     * until it is delivered or timeout_ms passes. With value.format =
     * confluent it also gets the schema's id (registered with
     * schema.registry.url, or derived); false with *refused set when the
     * registry refuses the schema (incompatible, invalid): retrying cannot
     * help. */
    bool (*publish_schema)(srl_sink_t *sink, uint64_t fingerprint, const char *schema_json,
                           int timeout_ms, bool *refused, char *errstr, size_t errstr_size);
    /* Is the content topic of kind empty (never written: high watermark 0 on
     * every partition)? */
    bool (*topic_empty)(srl_sink_t *sink, srl_kind_t kind, bool *empty, char *errstr,
                        size_t errstr_size);
    /* Refuse a topic whose last record of any partition was written by
     * another hub (sysrepl.origin differs from instance_id): false with
     * *refused set. false without *refused: the check could not be made
     * (broker away); try again. */
    bool (*check_origin)(srl_sink_t *sink, srl_kind_t kind, const char *instance_id, bool *refused,
                         char *errstr, size_t errstr_size);
    /* Read the content topic of kind from its beginning to its end and call
     * fn for every key in it. */
    bool (*scan_keys)(srl_sink_t *sink, srl_kind_t kind, srl_sink_key_fn fn, void *arg,
                      char *errstr, size_t errstr_size);
} srl_sink_ops_t;

struct srl_sink {
    const srl_sink_ops_t *ops;
};

/* The Kafka sink: creates the topics that are missing (refusing topics that
 * would lose state), then returns a connected producer. NULL with errstr on
 * a config error or when the broker cannot be reached within timeout_ms;
 * *retriable tells whether trying again may help. */
srl_sink_t *srl_sink_kafka_new(const srl_config_t *cfg, int timeout_ms, bool *retriable,
                               char *errstr, size_t errstr_size);

#endif
