/*
 * clock.h - the clocks every program reads, in one place.
 *
 * wall: CLOCK_REALTIME, ms (or us) since the Unix epoch: for what is stored
 *       or compared with other hosts (changed_at, expires_at, ack logs).
 * mono: CLOCK_MONOTONIC: for intervals, timeouts and deadlines inside one
 *       process; never jumps, but stops while the system is suspended.
 * boot: CLOCK_BOOTTIME, ms: like mono but keeps counting during a system
 *       suspend, for "how long were we away" (e.g. a spoke's horizon).
 *
 * Every function may be called from any thread and never fails (a clock
 * the kernel refuses reads as 0, which no caller can mistake for a time).
 */
#ifndef SRL_CLOCK_H
#define SRL_CLOCK_H

#include <stdint.h>

int64_t srl_clock_wall_ms(void);
int64_t srl_clock_wall_us(void);
int64_t srl_clock_mono_ms(void);
int64_t srl_clock_mono_us(void);
int64_t srl_clock_boot_ms(void);

#endif
