/* executor.h - the op-stream executor: the timed batch path of the benchmark.
 *
 * Not part of the index API (nfl.h): bench/ reaches it through the same cffi
 * module, which reads the text between the CDEF markers here too.
 */
#ifndef NFL_EXECUTOR_H
#define NFL_EXECUTOR_H

#include "nfl.h"

/* CDEF-BEGIN */

#define NFL_OP_READ 0
#define NFL_OP_UPDATE 1
#define NFL_OP_INSERT 2
#define NFL_OP_SCAN 3
#define NFL_OP_RMW 4
#define NFL_OP_DELETE 5

typedef struct {
    uint64_t ops_done;
    int64_t first_mismatch; /* first op whose result differs from expected, or -1 */
    uint64_t scanned;       /* entries returned by all scans */
    uint64_t checksum;      /* folds every result, so nothing is optimized away */
} nfl_exec_report;

/* Runs an op stream in batches of `batch` ops, each batch fused (a batch
 * lookup, or its keys prepared and prefetched together; its ops share the
 * fused pass's time).  expected[i] is the value a read or read-modify-write
 * must return (-1: the key must be absent).  op_ticks (n entries) and
 * batch_ticks (ceil(n / batch)) may be NULL.  Returns NFL_OK, NFL_EINVAL for
 * a bad op code or a missing array, NFL_ENOMEM, or an index error. */
int nfl_execute(nfl_index *index, const uint8_t *op, const uint64_t *key,
                const uint64_t *value, const int64_t *scan_len,
                const int64_t *expected, size_t n, size_t batch,
                uint64_t *op_ticks, uint64_t *batch_ticks,
                nfl_exec_report *report);
/* nfl_execute without fusion: one op at a time, each timed alone between two
 * counter reads (op_ticks[i] is op i's own time plus one counter read); the
 * index lock is taken once per batch, outside the timed ops. */
int nfl_execute_each(nfl_index *index, const uint8_t *op, const uint64_t *key,
                     const uint64_t *value, const int64_t *scan_len,
                     const int64_t *expected, size_t n, size_t batch,
                     uint64_t *op_ticks, uint64_t *batch_ticks,
                     nfl_exec_report *report);
/* The cycle counter, its rate (calibrated once) and the cost of reading it. */
uint64_t nfl_ticks(void);
double nfl_ticks_per_ns(void);
double nfl_timer_overhead_ticks(void);

/* CDEF-END */

#endif /* NFL_EXECUTOR_H */
