/* scratch.h - large temporaries, one kept from a call to the next (internal
 * to the C core).
 *
 * A bulk load needs key-sized temporaries twice: nfl_slot_counts (the auto
 * switch's conflict count) and then nfl_bulk_load.  Fresh pages cost a page
 * fault and a zeroing each, and they are most of what makes a process's
 * first bulk load slower than its next ones; so the slot count's block is
 * kept (one block, the larger of two, at most SCRATCH_KEEP bytes) and the
 * load that follows reuses its pages instead of faulting in new ones; the
 * load frees it.  A fresh block is hinted onto huge pages
 * (scratch_advise_huge).  Blocks come from malloc, so allocation-failure injection and the
 * sanitizers see them; a kept block is poisoned for ASan until taken again,
 * and freed at exit (no still-reachable block for valgrind).  Lock-free: a
 * block is owned by whoever swapped it out of the one slot.
 */
#ifndef NFL_SCRATCH_H
#define NFL_SCRATCH_H

#include <stddef.h>

#define SCRATCH_KEEP ((size_t)64 << 20) /* larger blocks are freed when given back */

/* At least `bytes` bytes (16-byte aligned), or NULL if malloc fails. */
void *scratch_take(size_t bytes);
/* Gives back a block from scratch_take (NULL is ignored): kept for the next
 * taker if keep (a caller whose follower needs the same room: the slot count
 * before the bulk load), else freed (the bulk load: nothing stays held once
 * it returns). */
void scratch_give(void *p, int keep);
/* The caller's bytes of the kept block, 0 if none (for tests). */
size_t scratch_kept(void);

/* Asks for transparent huge pages over the 2 MiB pages inside [p, p + bytes)
 * (nothing for a block under two of them).  A hint only; nothing depends on
 * it.  For blocks whose small pages all get written (so it costs no memory)
 * and asked before they are written: a fresh block's first writes then
 * fault in a 2 MiB page at a time, one fault and one zeroing instead of 512
 * (bench.cold: fresh pages are most of what a first bulk load pays extra),
 * and lookups into a tree block save TLB misses (asked after the writes,
 * the pages stay small until khugepaged merges them, and batch reads were
 * 5-10 % slower in the same run).  scratch_take asks it for its fresh
 * blocks; afli.c for a node's slots and bucket arena. */
void scratch_advise_huge(void *p, size_t bytes);

#endif
