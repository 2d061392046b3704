/*
 * wal.h - the hub's changes read from its WAL (logical decoding).
 *
 * The producer reads what writers committed to the content tables from a
 * logical replication slot of the store, through a replication connection
 * and the built-in `pgoutput` plugin (publication `sysrepl_content`, made by
 * migration 007). Writers pay nothing for it but the stamp (version, origin,
 * changed_at) their rows always carried: no outbox row, no notification.
 *
 * A read turns the decoded changes into a result shaped like the outbox
 * batch query's (outbox.c: version, kind, key, deleted, then each kind's
 * content columns), so one batch builder serves both sources:
 *   - an insert or update is the new row, with the version it was stamped
 *     with (unchanged TOASTed values the WAL leaves out are read from the
 *     table: srl_wal_complete);
 *   - a delete, and the old key of an update that changed the key, is a
 *     tombstone with the version the deleting transaction took, from the
 *     logical message `sysrepl.delete` its trigger wrote (migration 007);
 *   - of a key changed several times in one result only the last change
 *     is published (srl_wal_complete);
 *   - a transaction that emitted the logical message `sysrepl.applying`
 *     first (the consumer's apply transactions do) is skipped: rows applied
 *     by a consumer are not captured.
 * The slot's confirmed position moves (srl_wal_confirm) only to the end of
 * a transaction whose every record was delivered, so after a crash of the
 * producer or of the store the stream resumes at a transaction boundary
 * and at worst publishes some records again (same versions: idempotent).
 */
#ifndef SRL_PRODUCER_WAL_H
#define SRL_PRODUCER_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "sysrepl/store.h"

#define SRL_WAL_PUBLICATION "sysrepl_content"
#define SRL_WAL_APPLYING_PREFIX "sysrepl.applying"
#define SRL_WAL_MARK_PREFIX "sysrepl.mark"
#define SRL_WAL_DELETE_PREFIX "sysrepl.delete"

typedef struct srl_wal srl_wal_t;

/* Connect for replication (the store DSN, replication=database) and start
 * streaming the slot from its confirmed position. */
srl_wal_t *srl_wal_open(const char *dsn, const char *slot, srl_store_rc_t *rc, char *errstr,
                        size_t errstr_size);
void srl_wal_close(srl_wal_t *w);
int srl_wal_socket(const srl_wal_t *w);

/* Decode what has arrived, up to limit rows, into *res (NULL: no row yet).
 * *commit_lsn: the end of the last transaction whose rows are all in this
 * or an earlier result (0: none completed). Waits (up to 200 ms) only for
 * the rest of a transaction already begun, so a result that is not full
 * ends between transactions. */
srl_store_rc_t srl_wal_read(srl_wal_t *w, int limit, PGresult **res, uint64_t *commit_lsn,
                            char *errstr, size_t errstr_size);

/* Finish a result of srl_wal_read: only a key's last change in it is
 * published (the earlier ones count as superseded), and rows the WAL sent
 * without their unchanged TOASTed values get them from the table, read on
 * the work session conn. */
srl_store_rc_t srl_wal_complete(PGconn *conn, PGresult *res, char *errstr, size_t errstr_size);

/* Everything up to lsn is delivered: tell the server (at most every 100 ms
 * unless force; force also asks it for a keepalive). */
srl_store_rc_t srl_wal_confirm(srl_wal_t *w, uint64_t lsn, bool force, char *errstr,
                               size_t errstr_size);

/* The LSN of the newest non-transactional SRL_WAL_MARK_PREFIX message the
 * stream has passed (0: none): --once writes one and stops once it is
 * passed with nothing in flight. */
uint64_t srl_wal_mark_seen(const srl_wal_t *w);

/* Nothing is being decoded (no transaction half read) and the server said
 * it has sent everything up to *sent_lsn. */
bool srl_wal_between_transactions(const srl_wal_t *w, uint64_t *sent_lsn);

/* "X/Y" LSN text (pg_lsn) to a number. */
bool srl_wal_parse_lsn(const char *s, uint64_t *out);

/* "X/Y" of an LSN into buf. */
const char *srl_wal_lsn_str(uint64_t lsn, char *buf, size_t size);

#endif
