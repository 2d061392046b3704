/*
 * source.h - private to sysrepl-consumer: the transport seam. Where records
 * come from (Kafka directly, or the bridge over HTTP) hides behind this
 * small vtable; everything above it (apply, rebuild, dead letters, offsets)
 * is the same for every transport.
 *
 * The model is Kafka's, because the bridge serves Kafka's topics: a topic
 * has partitions; a partition is a log of records at increasing offsets
 * (with gaps: the topics are compacted); each partition has a high
 * watermark (the offset the next record written will get).
 *
 * Positions are the caller's. The consumer keeps its offsets in its own
 * store and passes the position of every partition it wants on every
 * fetch; a source may keep state (a Kafka assignment, an HTTP keep-alive)
 * to make the next fetch from the same positions cheap, but it must serve
 * exactly the positions it is given: when the caller moves a position (a
 * re-seek after the store came back, a rebuild from offset 0), the source
 * follows and never returns a record below the given offset.
 *
 * Adding a transport (source_http.c for `transport = http`): implement
 * srl_source_ops_t, give a constructor like srl_source_kafka_new(), and
 * choose it in main.c by srl_config_enum(cfg, SRL_KEY_TRANSPORT).
 *
 * Threads: a source is used by one thread.
 */
#ifndef SRL_CONSUMER_SOURCE_H
#define SRL_CONSUMER_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sysrepl/config.h"
#include "sysrepl/record.h"

/* Result of a source call. RETRY: the transport is away or slow (broker
 * down, timeout, HTTP 5xx); wait and call again. FATAL: waiting will not
 * help (authorisation, unknown topic that should exist, bad config). */
typedef enum srl_source_rc {
    SRL_SOURCE_OK = 0,
    SRL_SOURCE_RETRY,
    SRL_SOURCE_FATAL
} srl_source_rc_t;

/* One partition the caller wants records from, and where. */
typedef struct srl_source_pos {
    const char *topic; /* owned by the caller; stable while fetching */
    srl_kind_t kind;   /* what the topic carries (copied into each record) */
    int32_t partition;
    int64_t offset; /* next offset wanted */
} srl_source_pos_t;

/* What one fetch returned. records[] point into memory the batch owns
 * until release (the Kafka source keeps the librdkafka messages alive).
 * eof[i] is set when, during this fetch, reading pos[i] reached the
 * partition's end as the broker saw it (its high watermark at that
 * moment): exact, but only reported once per arrival at the end.
 * high[i] is the high watermark last seen for pos[i] (-1 when unknown),
 * possibly a little stale: good for lag, never evidence of being caught up
 * (that comes only from highs(), asked of the broker or bridge now).
 * next[i] (-1 when none) is an offset the source vouches for: every record
 * of pos[i] below it was returned by this fetch or an earlier one, or no
 * longer exists (compacted away). It lets a position pass a compacted gap
 * at the end of a partition, where no record arrives to move it. */
typedef struct srl_source_batch {
    srl_record_t *records;
    size_t count;
    size_t capacity;
    bool *eof;     /* one per position passed to fetch */
    int64_t *high; /* one per position passed to fetch */
    int64_t *next; /* one per position passed to fetch */
    size_t npos;
    void *priv;                    /* the source's own memory behind records[] */
    void (*priv_free)(void *priv); /* set by the source that made priv */
} srl_source_batch_t;

typedef struct srl_source srl_source_t;

typedef struct srl_source_ops {
    /* Number of partitions of topic into *count. RETRY when the topic does
     * not exist yet (a hub that has not started) or the transport is away. */
    srl_source_rc_t (*partitions)(srl_source_t *src, const char *topic, int *count, int timeout_ms,
                                  char *errstr, size_t errstr_size);

    /* Low and high watermark of a partition, asked of the broker now. */
    srl_source_rc_t (*watermarks)(srl_source_t *src, const char *topic, int32_t partition,
                                  int64_t *low, int64_t *high, int timeout_ms, char *errstr,
                                  size_t errstr_size);

    /* The high watermark of every position, asked of the broker (or, over
     * http, of the bridge, which asks the broker) now, never a cached
     * value: the only evidence a spoke has of being caught up. OK only when
     * every position got its answer; highs[] has npos entries. */
    srl_source_rc_t (*highs)(srl_source_t *src, const srl_source_pos_t *pos, size_t npos,
                             int64_t *highs, int timeout_ms, char *errstr, size_t errstr_size);

    /* The topic's delete.retention.ms: how long tombstones stay readable.
     * A spoke away longer than this may have missed deletes. */
    srl_source_rc_t (*tombstone_retention_ms)(srl_source_t *src, const char *topic, int64_t *ms,
                                              int timeout_ms, char *errstr, size_t errstr_size);

    /* Fetch up to max_records from the partitions pos[0..npos), each from
     * its offset on; waits up to timeout_ms for the first record, then
     * returns what is there without waiting more. Records of one partition
     * come in offset order. The batch is filled (cleared first) and must be
     * released with release() before the next fetch. OK with count 0 means
     * nothing new within the timeout. */
    srl_source_rc_t (*fetch)(srl_source_t *src, const srl_source_pos_t *pos, size_t npos,
                             size_t max_records, int timeout_ms, srl_source_batch_t *batch,
                             char *errstr, size_t errstr_size);

    /* Release what a fetch left in batch (records, priv); the arrays stay
     * allocated for reuse. NULL-safe. */
    void (*release)(srl_source_t *src, srl_source_batch_t *batch);

    /* Advisory: tell the transport how far the spoke has applied, after
     * the store committed (the Kafka source commits the offsets of group
     * sysrepl.<instance id>, so Kafka tools show each spoke's lag). The
     * store's offsets stay the authority; failures are only logged. */
    void (*committed)(srl_source_t *src, const srl_source_pos_t *pos, size_t npos);

    /* Close the transport and free src. NULL-safe. */
    void (*close)(srl_source_t *src);
} srl_source_ops_t;

/* Every source starts with this, so the generic code can find its ops. */
struct srl_source {
    const srl_source_ops_t *ops;
};

/* Free everything a batch holds (records' memory included) and zero it.
 * Zero-initialise a batch before its first fetch. NULL-safe. */
void srl_source_batch_free(srl_source_batch_t *batch);

/* Make sure batch has room for npos positions and cap records; false when
 * out of memory. Shared by the sources. */
bool srl_source_batch_reserve(srl_source_batch_t *batch, size_t npos, size_t cap);

/* The Kafka source: a librdkafka consumer that assigns partitions itself
 * (rd_kafka_assign, no group rebalancing), with group.id
 * sysrepl.<instance_id> for the advisory commits, and the kafka.*
 * properties of cfg. NULL with errstr on a bad property. */
srl_source_t *srl_source_kafka_new(const srl_config_t *cfg, const char *instance_id, char *errstr,
                                   size_t errstr_size);

#endif
