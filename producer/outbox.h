/*
 * outbox.h - draining the hub's outbox: read a batch of changes in version
 * order joined to the current content rows, turn them into records, and
 * delete the rows once their records were delivered.
 * This file is private to sysrepl-producer.
 *
 * Guarantees: a batch's outbox rows are deleted only by
 * srl_outbox_delete(), which the caller runs after the sink delivered every
 * record of the batch. A row that is not published is still deleted with
 * its batch when publishing it is unnecessary: its content row now has a
 * higher version (a later outbox row publishes it), or its kind is not
 * replicated here. A row that cannot be turned into a record (a content
 * row the codec refuses) is left in the outbox and reported.
 */
#ifndef SRL_PRODUCER_OUTBOX_H
#define SRL_PRODUCER_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "sink.h"
#include "sysrepl/codec.h"
#include "sysrepl/store.h"

/* One batch read from the outbox. Owns its records' keys and values. */
typedef struct srl_outbox_batch {
    srl_sink_batch_t sink; /* the records to publish (count may be 0) */
    size_t capacity;       /* of sink.records */
    int64_t *versions;     /* every outbox version to delete with the batch */
    size_t version_count;
    int64_t min_version;     /* lowest version read */
    int64_t max_version;     /* highest version read (the next read starts above) */
    int64_t max_published;   /* highest version published, 0 if none */
    size_t superseded;       /* rows skipped: a later change publishes the key */
    size_t not_replicated;   /* rows of kinds this hub does not replicate */
    size_t tombstones;       /* records with a NULL value */
    size_t unpublishable;    /* rows left in the outbox (codec refused them) */
    size_t rows;             /* outbox rows read */
    bool wal;                /* read from the WAL (wal.c), not the outbox */
    uint64_t wal_commit_lsn; /* WAL: every change up to here is in this
                              * batch or an earlier one (0: none) */
} srl_outbox_batch_t;

/* Where the time went, accumulated by fetch (µs). */
typedef struct srl_outbox_timing {
    int64_t read_us;   /* waiting for and taking read results, building batches */
    int64_t encode_us; /* Avro encoding */
    int64_t delete_us; /* DELETE of delivered rows */
} srl_outbox_timing_t;

/* Reading a batch takes three steps, so the server can run the next read
 * while the caller turns the previous one into records:
 *
 * read_send: send the read of up to limit outbox rows with version > after
 * (or, when below > 0, with version < below), in version order, each joined
 * to its current content row. conn must be idle.
 * read_take: the result, once there: with wait false, *res is NULL while
 * the server is still working (call again when conn's socket is readable).
 * *res is the caller's. Errors: the store's class (UNREACHABLE/RETRY:
 * reconnect and read again).
 * result_range: lowest and highest version of a result (0 when empty).
 * batch_build: the records of a result into *b (cleared first); takes res
 * (frees it). kind_mask: bit (1u << kind) set for each replicated kind;
 * origin: the sysrepl.origin header of every record. */
srl_store_rc_t srl_outbox_read_send(PGconn *conn, int64_t after, int64_t below, int limit,
                                    char *errstr, size_t errstr_size);
srl_store_rc_t srl_outbox_read_take(PGconn *conn, bool wait, PGresult **res, char *errstr,
                                    size_t errstr_size);
void srl_outbox_result_range(const PGresult *res, int64_t *min_version, int64_t *max_version);
srl_store_rc_t srl_outbox_batch_build(PGresult *res, srl_registry_t *reg, unsigned kind_mask,
                                      const char *origin, srl_outbox_batch_t *b,
                                      srl_outbox_timing_t *timing, char *errstr,
                                      size_t errstr_size);

/* Delete the outbox rows of versions[0..n) in one statement, without
 * waiting: send the DELETE on conn (which must be idle) and return;
 * srl_outbox_delete_poll() tells when it finished. The caller reads the
 * next batch on another session meanwhile. */
srl_store_rc_t srl_outbox_delete_send(PGconn *conn, const int64_t *versions, size_t n, char *errstr,
                                      size_t errstr_size);
/* *done false: still running (call again when conn's socket is readable);
 * *done true: finished, the result is returned and conn is idle again. */
srl_store_rc_t srl_outbox_delete_poll(PGconn *conn, bool *done, char *errstr, size_t errstr_size);

/* Turn an entity into a record of b (key and value copied/owned by b).
 * Used by the drain and the snapshot. value NULL: a tombstone. */
bool srl_outbox_batch_add(srl_outbox_batch_t *b, srl_kind_t kind, const char *key, uint8_t *value,
                          size_t value_len, int64_t version, const char *origin);

/* Free what b owns and zero it; NULL accepted. */
void srl_outbox_batch_clear(srl_outbox_batch_t *b);

#endif
