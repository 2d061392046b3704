/*
 * signals.c - what a signal means to sysrepl-consumer. The handlers only
 * set flags; the loops act on them:
 *   SIGTERM, SIGINT  srl__consumer_stop: finish the batch in hand, exit 0
 *                    (every wait in the daemon wakes up for it)
 *   SIGHUP           srl__consumer_reload: the main loop reloads the config
 *   SIGPIPE          ignored (a peer closing a socket is an error return)
 */
#include <signal.h>
#include <unistd.h>

#include "consumer.h"

volatile sig_atomic_t srl__consumer_stop;
volatile sig_atomic_t srl__consumer_reload;

static void on_stop(int sig)
{
    (void)sig;
    srl__consumer_stop = 1;
}

static void on_reload(int sig)
{
    (void)sig;
    srl__consumer_reload = 1;
}

void srl__consumer_signals_install(void)
{
    struct sigaction sa = {0};
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_reload;
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

void srl__consumer_nap(int64_t ms)
{
    int64_t end = srl_clock_mono_ms() + ms;
    while (!srl__consumer_stop && srl_clock_mono_ms() < end)
        usleep(20000);
}
