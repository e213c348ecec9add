/* SPDX-License-Identifier: MIT */
/* cpu.h: the pause hint for spin-wait loops. */
#ifndef RINGFLOW_CPU_H
#define RINGFLOW_CPU_H

/*
 * Tells the core we are spinning: it saves power, leaves the pipeline to a
 * sibling hyperthread, and avoids the memory-order flush when the spin ends.
 */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        __asm__ __volatile__("yield");
#endif
}

#endif
