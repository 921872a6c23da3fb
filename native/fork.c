/* fork.c - indexes stay usable in the child of a fork().
 *
 * The child of fork() has one thread.  A lock that another thread of the
 * parent held at that moment stays held in the child for ever, so an index
 * whose lock a writer (or reader) held would hang the child's first call
 * (multiprocessing's default start method on Linux, pre-forking servers).
 *
 * So every live index is on a list here, and pthread_atfork handlers
 * (installed with the first index) make fork() wait for a quiet moment:
 *   prepare  takes the list's mutex, then the write lock of every index on
 *            it, in list order: the fork waits until the calls inside each
 *            index have finished, and calls that start meanwhile wait for
 *            the fork (a few microseconds unless a long batch is running);
 *   parent   releases them all;
 *   child    initializes them afresh (unlocked): the child's only thread is
 *            not the thread that took them (glibc records a writer's thread
 *            id), and no other thread exists to hold them.
 * The child thus sees every index as it was between two calls, whole.  No
 * call in the core holds one index's lock while waiting for another's, nor
 * waits for the GIL while holding one, so taking them all cannot deadlock.
 * The version counter is left alone: iterators in the parent go on.
 */
#include <pthread.h>

#include "index.h"

static pthread_mutex_t g_mutex = PTHREAD_MUTEX_INITIALIZER;
static nfl_index *g_first; /* live indexes, linked by fork_prev/fork_next */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_installed;    /* pthread_atfork succeeded */

static void before_fork(void)
{
    pthread_mutex_lock(&g_mutex);
    for (nfl_index *idx = g_first; idx; idx = idx->fork_next)
        pthread_rwlock_wrlock(&idx->lock);
}

static void after_fork_in_parent(void)
{
    for (nfl_index *idx = g_first; idx; idx = idx->fork_next)
        pthread_rwlock_unlock(&idx->lock);
    pthread_mutex_unlock(&g_mutex);
}

static void after_fork_in_child(void)
{
    for (nfl_index *idx = g_first; idx; idx = idx->fork_next)
        index_lock_init(&idx->lock); /* cannot fail: no allocation */
    pthread_mutex_init(&g_mutex, NULL);
}

static void install(void)
{
    g_installed = pthread_atfork(before_fork, after_fork_in_parent,
                                 after_fork_in_child) == 0;
}

int fork_register(nfl_index *idx)
{
    pthread_once(&g_once, install);
    if (!g_installed)
        return NFL_ENOMEM; /* the only way pthread_atfork fails */
    pthread_mutex_lock(&g_mutex);
    idx->fork_prev = NULL;
    idx->fork_next = g_first;
    if (g_first)
        g_first->fork_prev = idx;
    g_first = idx;
    pthread_mutex_unlock(&g_mutex);
    return NFL_OK;
}

void fork_unregister(nfl_index *idx)
{
    pthread_mutex_lock(&g_mutex);
    if (idx->fork_prev)
        idx->fork_prev->fork_next = idx->fork_next;
    else if (g_first == idx)
        g_first = idx->fork_next;
    if (idx->fork_next)
        idx->fork_next->fork_prev = idx->fork_prev;
    idx->fork_prev = idx->fork_next = NULL;
    pthread_mutex_unlock(&g_mutex);
}
