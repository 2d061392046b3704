/*
 * config.h - the one configuration loader of every sysrepl program.
 *
 * Sources, later wins: the key table's defaults, one file of `key = value`
 * lines (-c FILE), then `-X key=value` overrides from the command line.
 * Every key lives in one table (one row per key in sysrepl/config_keys.def,
 * the srl_config_keys[] of common/config_keys.c); parsing, validation,
 * --help, the example config and docs/config-reference.md all come from it.
 * Values are typed and checked at load time, so a program never sees a bad
 * value: an unknown key, a bad number, a bad enum value, a key the program
 * does not use, a duplicate key in a file or a kafka.* value librdkafka
 * rejects stops the program at start with a message naming the file and line
 * (or "-X") and the key:
 *     sysrepl.conf:12: unknown key "topic.prefx" (did you mean "topic.prefix"?)
 *     sysrepl.conf:3: key "topic.partitions": value "abc" is not an integer
 *     -X: key "kafka.acks": Invalid value "banana" for configuration property "acks"
 *
 * File syntax, one setting per line:
 *     # a comment line; blank lines are ignored
 *     key = value                 # a comment after whitespace
 *     key = "a value # with hash" # quoted: \" and \\ are the escapes
 * Unquoted values run to the end of the line or to a '#' preceded by
 * whitespace; surrounding whitespace is trimmed. Keys are lower case,
 * namespaced ("topic.partitions"); `kafka.<property>` passes <property>
 * through to librdkafka.
 *
 * Value types:
 *   string       any text ("" allowed)
 *   int          decimal integer in [min, max]
 *   bool         true|false|yes|no|on|off|1|0
 *   enum         one of the listed choices
 *   list         comma-separated choices, each at most once, at least min
 *   duration_ms  milliseconds: an integer, or a number with a unit
 *                ms|s|m|h|d ("1500", "30s", "1h", "7d"), in [min, max]
 *
 * Errors: functions returning bool write a reason into errstr (caller-owned,
 * errstr_size bytes) on failure. After a failed load or override the config
 * may be partly updated; programs stop at start, so it is not rolled back.
 *
 * Code reads a key through its handle, not its name: every row of the table
 * is also an srl_key_t constant, SRL_KEY_<NAME> ("consumer.batch_size" is
 * SRL_KEY_CONSUMER_BATCH_SIZE), so a misspelt key is a compile error:
 *     size_t batch = (size_t)srl_config_int(cfg, SRL_KEY_CONSUMER_BATCH_SIZE);
 * Names (strings) are only for what is named at run time: the file and -X
 * (srl_config_load_file, srl_config_set_override, srl_config_key_find), the
 * reload diff and the generated text, which walk the table, and the kafka.*
 * properties (srl_config_kafka_*), which are not in it.
 *
 * Misuse is a programming error, not a config error: an accessor called with
 * the handle of a key of another type (srl_config_int(cfg, SRL_KEY_ROLE)),
 * or with SRL_KEY_KAFKA, prints the key and aborts (a test catches it at
 * once rather than a silent zero in production).
 *
 * Secrets: keys marked secret in the table (bridge.api_key) and kafka.*
 * properties whose name contains "password" or "secret" are never echoed in
 * error messages nor in srl_config_write_effective(). Callers must not log
 * them either (see log.h).
 *
 * Thread-safety: load, then share read-only; accessors do not modify.
 */
#ifndef SRL_CONFIG_H
#define SRL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <librdkafka/rdkafka.h>

/* The programs, as a bitmask: each key names the programs that use it. */
#define SRL_PROG_PRODUCER 0x1u /* sysrepl-producer */
#define SRL_PROG_CONSUMER 0x2u /* sysrepl-consumer */
#define SRL_PROG_BRIDGE 0x4u   /* sysrepl-bridge */
#define SRL_PROG_CLI 0x8u      /* sysrepl (admin CLI) */
#define SRL_PROG_ALL 0xfu

typedef enum {
    SRL_CONF_STRING,
    SRL_CONF_INT,
    SRL_CONF_BOOL,
    SRL_CONF_ENUM,
    SRL_CONF_LIST,
    SRL_CONF_DURATION_MS,
    SRL_CONF_KAFKA, /* the "kafka." prefix: properties passed to librdkafka */
} srl_conf_type_t;

/* One row of the key table. */
typedef struct srl_config_key {
    const char *name; /* "topic.partitions"; "kafka." for the passthrough */
    srl_conf_type_t type;
    const char *def;     /* default in config syntax ("3", "1h", "hub"); for
                          * SRL_CONF_KAFKA an example "property = value" */
    long long min, max;  /* int, duration_ms: range; list: min items */
    const char *choices; /* enum, list: "hub|spoke" (index = position) */
    unsigned progs;      /* SRL_PROG_* using the key */
    bool reloadable;     /* may change without a restart */
    bool secret;         /* value never echoed */
    const char *desc;    /* one line */
} srl_config_key_t;

/* The handle of every key: SRL_KEY_<NAME>, the name upper-cased with '.'
 * and '-' as '_', in table order, so srl_config_keys[SRL_KEY_ROLE] is the
 * row of "role". Both come from the same line of sysrepl/config_keys.def.
 * SRL_KEY_KAFKA is the "kafka." row (the properties have no handles). */
typedef enum {
#define SRL_CONFIG_KEY(handle, ...) handle
#include "sysrepl/config_keys.def"
#undef SRL_CONFIG_KEY
    SRL_KEY__COUNT /* not a key: the number of rows */
} srl_key_t;

/* The key table (common/config_keys.c), indexed by srl_key_t, and its
 * length (SRL_KEY__COUNT). */
extern const srl_config_key_t srl_config_keys[SRL_KEY__COUNT];
extern const size_t srl_config_key_count;

/* The row of a key named at run time (a file line, -X), or NULL;
 * "kafka.<anything>" gives the kafka. row. Code that knows the key uses
 * srl_config_keys[SRL_KEY_...]. */
const srl_config_key_t *srl_config_key_find(const char *name);

/* Enum indices, in the order of the table's choices (a unit test checks). */
enum { SRL_ROLE_HUB, SRL_ROLE_SPOKE };                          /* role */
enum { SRL_TRANSPORT_KAFKA, SRL_TRANSPORT_HTTP };               /* transport */
enum { SRL_CAPTURE_AUTO, SRL_CAPTURE_WAL, SRL_CAPTURE_OUTBOX }; /* producer.capture */
/* value.format: srl_value_format_t (codec.h) order. */
/* log.level is in srl_log_level_t order (log.h). */
/* Bits of srl_config_mask(cfg, SRL_KEY_REPLICATE). */
#define SRL_REPLICATE_ASSESSMENTS 0x1u
#define SRL_REPLICATE_POLICIES 0x2u

typedef struct srl_config srl_config_t;

/* A config for the programs in prog_mask, holding the defaults. Keys not
 * used by any of them are rejected ("unknown for this program"). Returns
 * NULL only when out of memory. */
srl_config_t *srl_config_new(unsigned prog_mask);
void srl_config_free(srl_config_t *cfg); /* NULL accepted */

/* Apply a file. A key given twice in the same file is an error; a key set
 * by an earlier file or override is replaced. */
bool srl_config_load_file(srl_config_t *cfg, const char *path, char *errstr, size_t errstr_size);

/* Apply one "key=value" (as given to -X; the value is taken verbatim, no
 * quotes or comments). Later overrides of the same key win. */
bool srl_config_set_override(srl_config_t *cfg, const char *key_value, char *errstr,
                             size_t errstr_size);

/* Handle `-c FILE`, `-cFILE`, `--config FILE`, `--config=FILE`, `-X k=v`,
 * `-Xk=v`, `--set k=v` and `--set=k=v` anywhere before a `--`: loads the file (at most one -c),
 * then applies the -X overrides in order, so -X always wins over the file. The consumed arguments
 * are removed from argv (argv[0] and the rest keep their order; *argc is updated and argv[*argc] is
 * NULL). Without -c, only defaults and overrides apply. */
bool srl_config_parse_args(srl_config_t *cfg, int *argc, char **argv, char *errstr,
                           size_t errstr_size);

/* Accessors, by handle: they index the table, no lookup by name. Each
 * takes the key types in its comment and aborts on any other (see Misuse
 * above). Pointers returned stay valid until the config is freed or the key
 * is set again (a reload that applies it, srl_config_reload). */
const char *srl_config_str(const srl_config_t *cfg, srl_key_t key); /* string, enum */
long long srl_config_int(const srl_config_t *cfg, srl_key_t key);   /* int, duration_ms */
bool srl_config_bool(const srl_config_t *cfg, srl_key_t key);       /* bool */
int srl_config_enum(const srl_config_t *cfg, srl_key_t key);        /* enum: index into choices */
/* List items in the order given; *items (may be NULL) points to an array
 * the config owns. Returns the count. */
size_t srl_config_list(const srl_config_t *cfg, srl_key_t key, const char *const **items);
/* list: bit i set when the i-th choice is in the list. */
unsigned srl_config_mask(const srl_config_t *cfg, srl_key_t key);
/* True when the key was given in a file or with -X (not just a default);
 * any type but SRL_KEY_KAFKA (srl_config_kafka_is_set). */
bool srl_config_is_set(const srl_config_t *cfg, srl_key_t key);

/* string: fails, naming the key, when it is empty (SRL_KEY_INSTANCE_ID). */
bool srl_config_require(const srl_config_t *cfg, srl_key_t key, char *errstr, size_t errstr_size);

/* kafka.* properties, in the order first given, "kafka." stripped. Their
 * names are librdkafka's, open-ended, so they are read by name. */
size_t srl_config_kafka_count(const srl_config_t *cfg);
/* True when kafka.<property> was given (property without "kafka."). */
bool srl_config_kafka_is_set(const srl_config_t *cfg, const char *property);
bool srl_config_kafka_get(const srl_config_t *cfg, size_t i, const char **name, const char **value);
/* Apply every kafka.* property to conf with rd_kafka_conf_set. conf stays
 * the caller's; on failure it holds the properties applied before the
 * failing one and errstr names the key. */
bool srl_config_kafka_conf(const srl_config_t *cfg, rd_kafka_conf_t *conf, char *errstr,
                           size_t errstr_size);

/* Fails, naming the first key, when a key that is not reloadable differs
 * between the running config and a newly loaded one. */
bool srl_config_check_reload(const srl_config_t *running, const srl_config_t *reloaded,
                             char *errstr, size_t errstr_size);

/* The SIGHUP policy of every daemon: read the same -c file and -X
 * overrides running was loaded from again (srl_config_parse_args,
 * srl_config_load_file and srl_config_set_override remember them, in
 * order) and compare, key by key, the keys of running's programs:
 *   - a reloadable key (the table's Reload column) that changed takes its
 *     new value in running; one line "config key changed; applied"
 *     key=... old=... new=... (secrets as <redacted>);
 *   - any other changed key, kafka.* included, keeps its running value;
 *     one line "config key changed; needs a restart" key=...;
 *   - one line "config reloaded" file=... applied=N needs_restart=M;
 *     then log.level and log.format are applied (srl_config_apply_log),
 *     so these lines are written with the old threshold and format.
 * The caller then reads the reloadable keys it caches again; that is what
 * makes them take effect. A file that does not load (the same checks as at
 * start) changes nothing: false, errstr names file:line (or -X) and the
 * key, and one error line "config not reloaded; the running config stays"
 * is logged. component: the log component ("producer", "bridge", ...).
 * Pointers from srl_config_str for the applied keys become invalid.
 * Run it on the thread that owns running, never in a signal handler.
 * result (may be NULL) receives the counts. */
typedef struct srl_config_reload {
    size_t applied; /* reloadable keys that changed, now in running */
    size_t restart; /* changed keys that need a restart, not applied */
} srl_config_reload_t;
bool srl_config_reload(srl_config_t *running, const char *component, srl_config_reload_t *result,
                       char *errstr, size_t errstr_size);

/* log.level and log.format of cfg to the log (srl_log_set_level/_format):
 * at start, and by srl_config_reload. */
void srl_config_apply_log(const srl_config_t *cfg);

/* Generated text, all from the key table. */
/* --help section: the keys used by the programs in prog_mask. */
void srl_config_print_help(FILE *out, unsigned prog_mask);
/* An example config: every key of prog_mask commented out with its
 * description, type, default and allowed values. Loads cleanly as is, and
 * also with every "#key = value" line uncommented. */
void srl_config_write_example(FILE *out, unsigned prog_mask);
/* docs/config-reference.md: a markdown table of every key. */
void srl_config_write_reference(FILE *out);
/* The effective config, "key = value" per line, secrets as "<redacted>". */
void srl_config_write_effective(const srl_config_t *cfg, FILE *out);

#endif
