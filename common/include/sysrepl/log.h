/*
 * log.h - one logfmt line per event, to stderr (and to an optional sink).
 *
 *   ts=2026-11-26T12:00:00.123Z level=warn component=consumer msg="record dead-lettered" topic=x
 * partition=0 offset=1234 reason="unknown schema"
 *
 * ts is UTC with milliseconds. component and msg are quoted when needed;
 * the tail is a printf format the caller writes as key=value pairs, where
 * every value that may hold spaces, quotes, '=' or control characters goes
 * through srl_log_q():
 *
 *   srl_log(SRL_LOG_WARN, "consumer", "record dead-lettered",
 *           "topic=%s partition=%d offset=%lld reason=%s",
 *           srl_log_q(topic), partition, (long long)offset, srl_log_q(reason));
 *
 * The tail is parsed back into pairs and every value written again through
 * srl_log_quote, so a line is valid logfmt even when a value was not
 * quoted: text that is not " key=value" continues the value before it
 * (`reason=Broker: Not leader` becomes `reason="Broker: Not leader"`), and
 * text before the first key goes under `detail`. srl_log_q stays the rule:
 * only it keeps a value holding " key=" whole. With SRL_LOG_DIR set (the
 * test suite), a value that needed that repair is marked with
 * srl_log_unquoted=<key>, and every line written to stderr is also appended
 * to $SRL_LOG_DIR/<program>.<pid>.log for tests/tools/logfmt_check.py.
 *
 * log.format = json writes the same fields as one JSON object per line:
 *   {"ts":"...","level":"warn","component":"consumer","msg":"record
 * dead-lettered","topic":"x","partition":0,...} Values that read as decimal numbers are JSON
 * numbers, the others strings.
 *
 * Quoting (srl_log_quote, srl_log_q): a value is written as is unless it is
 * empty or holds a space, '=', '"', '\\' or a control character; then it is
 * put in double quotes with \" \\ \n \r \t escaped and other control bytes as
 * \u00XX. Bytes >= 0x80 (UTF-8) pass through.
 *
 * Secrets: never pass API keys, passwords, DSNs with passwords or
 * kafka.*password* values to srl_log, in msg or in the tail. The log does not
 * know what is secret; the caller does (config.h marks secret keys).
 *
 * Thread-safety: every function may be called from any thread. A line is
 * formatted outside the lock and written with one fwrite under a mutex; the
 * sink is called under the same mutex, so lines reach stream and sink in
 * the same order.
 */
#ifndef SRL_LOG_H
#define SRL_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* In severity order; also the order of the log.level choices in config. */
typedef enum {
    SRL_LOG_DEBUG,
    SRL_LOG_INFO,
    SRL_LOG_WARN,
    SRL_LOG_ERROR,
} srl_log_level_t;

/* Write one line when lvl is at or above the threshold. component, msg:
 * plain text (quoted here when needed). fmt_kv: printf format of the
 * key=value tail, or NULL for none. Never fails: out of memory, a fixed
 * line says one was dropped. errno is preserved. */
void srl_log(srl_log_level_t lvl, const char *component, const char *msg, const char *fmt_kv, ...)
    __attribute__((format(printf, 4, 5)));

typedef enum {
    SRL_LOG_FORMAT_LOGFMT, /* key=value (default) */
    SRL_LOG_FORMAT_JSON,   /* one JSON object per line */
} srl_log_format_t;        /* also the order of the log.format choices */

void srl_log_set_format(srl_log_format_t format);
srl_log_format_t srl_log_get_format(void);

/* Threshold: lines below it are dropped (default SRL_LOG_INFO). */
void srl_log_set_level(srl_log_level_t lvl);
srl_log_level_t srl_log_get_level(void);
/* True when a line at lvl would be written: guard costly arguments. */
bool srl_log_enabled(srl_log_level_t lvl);

/* "debug", "info", "warn", "error". */
const char *srl_log_level_name(srl_log_level_t lvl);
/* Parse a level name (case-insensitive); false when unknown. */
bool srl_log_level_parse(const char *name, srl_log_level_t *out);

/* Where lines go: stream (NULL restores stderr). The stream stays the
 * caller's; tests point it at a tmpfile. Each line is flushed. */
void srl_log_set_stream(FILE *stream);

/* A second destination, e.g. the store's replication_log table. Called for
 * every line that passes the threshold with its parts: kv is the formatted
 * tail as logfmt ("" when none; values quoted as on the line, whatever
 * log.format is), without ts/level/component/msg. fn NULL removes the
 * sink. fn runs under the log mutex: it must not block for long; lines it
 * logs itself go to the stream only (never back into the sink). */
typedef void (*srl_log_sink_fn)(void *ctx, srl_log_level_t lvl, const char *component,
                                const char *msg, const char *kv);
void srl_log_set_sink(srl_log_sink_fn fn, void *ctx);

/* Quote s for a logfmt value into buf (always NUL-terminated when size >
 * 0). Returns the length of the full quoted form, like snprintf: a result
 * >= size means buf holds a truncated form (still a closed quoted string). */
size_t srl_log_quote(char *buf, size_t size, const char *s);

/* srl_log_quote into a thread-local buffer, for use in srl_log arguments.
 * The result stays valid until the 8th next call on the same thread, so at
 * most 8 srl_log_q() per srl_log call. Values longer than about 1000 bytes
 * are cut and end in "...". NULL gives the string "(null)". */
const char *srl_log_q(const char *s);

#endif
