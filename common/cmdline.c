/*
 * cmdline.c - the option grammar of every program (see cmdline.h): the
 * common options, the program's own option table, and the --help made from
 * both and the key table. -c and -X themselves are srl_config_parse_args'.
 */
#include "sysrepl/cmdline.h"

#include <string.h>

static const srl_cmdline_opt_t common_opts[] = {
    {"config", 'c', "FILE", "read configuration keys from FILE (key = value lines)"},
    {"set", 'X', "KEY=VALUE", "set a configuration key, wins over -c (repeatable)"},
    {"print-config", 0, NULL, "print the effective configuration (secrets redacted) and exit"},
    {"version", 0, NULL, "print the program's name and version and exit"},
    {"help", 'h', NULL, "show this help and exit"},
    {NULL, 0, NULL, NULL}};

static void print_opts(FILE *out, const srl_cmdline_opt_t *opts)
{
    for (const srl_cmdline_opt_t *o = opts; o != NULL && o->name != NULL; o++) {
        char left[64];
        if (o->short_name)
            snprintf(left, sizeof left, "-%c, --%s%s%s", o->short_name, o->name, o->arg ? " " : "",
                     o->arg ? o->arg : "");
        else
            snprintf(left, sizeof left, "    --%s%s%s", o->name, o->arg ? " " : "",
                     o->arg ? o->arg : "");
        fprintf(out, "  %-28s %s\n", left, o->help);
    }
}

void srl_cmdline_print_common(FILE *out)
{
    print_opts(out, common_opts);
}

void srl_cmdline_print_help(const srl_cmdline_t *spec, FILE *out)
{
    if (spec->usage != NULL) {
        /* Its own text may predate some common options: list them all. */
        spec->usage(out);
        fprintf(out, "\nOptions of every sysrepl program:\n");
        print_opts(out, common_opts);
        return;
    }
    fprintf(out, "usage: %s %s\n\n%s\n\noptions:\n", spec->program, spec->synopsis, spec->about);
    print_opts(out, spec->opts);
    print_opts(out, common_opts);
    if (spec->epilog != NULL)
        fprintf(out, "\n%s\n", spec->epilog);
    fputc('\n', out);
    srl_config_print_help(out, spec->prog_mask);
}

/* The row of opts that arg names ("--name", "--name=v", "-s"), or -1;
 * *inline_value gets the text after '=' of "--name=v". */
static int find_opt(const srl_cmdline_opt_t *opts, const char *arg, const char **inline_value)
{
    *inline_value = NULL;
    for (int i = 0; opts != NULL && opts[i].name != NULL; i++) {
        const srl_cmdline_opt_t *o = &opts[i];
        if (o->short_name && arg[0] == '-' && arg[1] == o->short_name && arg[2] == '\0')
            return i;
        if (strncmp(arg, "--", 2) != 0)
            continue;
        size_t n = strlen(o->name);
        if (strncmp(arg + 2, o->name, n) != 0)
            continue;
        if (arg[2 + n] == '\0')
            return i;
        if (arg[2 + n] == '=') {
            *inline_value = arg + 3 + n;
            return i;
        }
    }
    return -1;
}

/* Does argv[i] take the next argument as its value? (the common options'
 * separate values, and the program's own) */
static bool takes_next(const srl_cmdline_t *spec, const char *arg)
{
    static const char *const valued[] = {"-c", "--config", "-X", "--set"};
    for (size_t i = 0; i < sizeof valued / sizeof valued[0]; i++)
        if (strcmp(arg, valued[i]) == 0)
            return true;
    const char *inline_value;
    int k = find_opt(spec->opts, arg, &inline_value);
    return k >= 0 && spec->opts[k].arg != NULL && inline_value == NULL;
}

int srl_cmdline_parse(const srl_cmdline_t *spec, srl_config_t *cfg, int *argc, char **argv,
                      const char **values)
{
    char errstr[1024];
    const char *prog = spec->program;

    /* --version and --help first, before the config is read: they must
     * answer even when the config is what the user is trying to fix. */
    for (int i = 1; i < *argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "--version") == 0) {
            printf("%s %s\n", prog, SRL_VERSION);
            return fflush(stdout) == 0 ? 0 : 1;
        }
        if (!spec->pass_through && (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)) {
            srl_cmdline_print_help(spec, stdout);
            return fflush(stdout) == 0 ? 0 : 1;
        }
        if (takes_next(spec, argv[i]))
            i++;
    }

    if (!srl_config_parse_args(cfg, argc, argv, errstr, sizeof errstr)) {
        fprintf(stderr, "%s: %s\n", prog, errstr);
        return 1;
    }

    size_t nopts = 0;
    while (spec->opts != NULL && spec->opts[nopts].name != NULL)
        values[nopts++] = NULL;
    bool print_config = false;
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--") == 0) {
            if (!spec->pass_through) {
                if (i + 1 < *argc) {
                    fprintf(stderr, "%s: unexpected argument \"%s\" (see %s --help)\n", prog,
                            argv[i + 1], prog);
                    return 1;
                }
                break;
            }
            while (i < *argc)
                argv[out++] = argv[i++];
            break;
        }
        if (strcmp(arg, "--print-config") == 0) {
            print_config = true;
            continue;
        }
        const char *value;
        int k = find_opt(spec->opts, arg, &value);
        if (k < 0) {
            if (spec->pass_through) {
                argv[out++] = argv[i];
                continue;
            }
            if (arg[0] == '-' && arg[1] != '\0')
                fprintf(stderr, "%s: unknown option \"%s\" (see %s --help)\n", prog, arg, prog);
            else
                fprintf(stderr, "%s: unexpected argument \"%s\" (see %s --help)\n", prog, arg,
                        prog);
            return 1;
        }
        const srl_cmdline_opt_t *o = &spec->opts[k];
        if (o->arg == NULL && value != NULL) {
            fprintf(stderr, "%s: option --%s takes no value\n", prog, o->name);
            return 1;
        }
        if (o->arg != NULL && value == NULL) {
            if (i + 1 >= *argc) {
                fprintf(stderr, "%s: option --%s needs a value (%s)\n", prog, o->name, o->arg);
                return 1;
            }
            value = argv[++i];
        }
        if (values[k] != NULL) {
            fprintf(stderr, "%s: option --%s given twice\n", prog, o->name);
            return 1;
        }
        values[k] = value != NULL ? value : "";
    }
    *argc = out;
    argv[out] = NULL;

    if (print_config) {
        srl_config_write_effective(cfg, stdout);
        return fflush(stdout) == 0 ? 0 : 1;
    }
    return SRL_CMDLINE_RUN;
}
