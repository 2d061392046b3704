/*
 * clock.c - wall, monotonic and boot-time clocks (see sysrepl/clock.h).
 */
#include "sysrepl/clock.h"

#include <time.h>

static int64_t read_us(clockid_t id)
{
    struct timespec ts;
    if (clock_gettime(id, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t srl_clock_wall_ms(void)
{
    return read_us(CLOCK_REALTIME) / 1000;
}

int64_t srl_clock_wall_us(void)
{
    return read_us(CLOCK_REALTIME);
}

int64_t srl_clock_mono_ms(void)
{
    return read_us(CLOCK_MONOTONIC) / 1000;
}

int64_t srl_clock_mono_us(void)
{
    return read_us(CLOCK_MONOTONIC);
}

int64_t srl_clock_boot_ms(void)
{
    return read_us(CLOCK_BOOTTIME) / 1000;
}
