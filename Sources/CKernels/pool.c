// One persistent pool of worker threads for the inference threads (see ckernels.h).
// A dispatch wakes the workers by bumping a generation counter; workers watch it after each task
// (the next convolution follows within microseconds): a few hundred pauses, then yielding the CPU
// between checks, for SPIN_ROUNDS checks in all (some milliseconds), and then they sleep on a
// condition variable, so an idle process uses no CPU. Not reentrant: a task must not dispatch.
#include "ckernels.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

enum { MAX_WORKERS = 255, SPIN_ROUNDS = 20000, PAUSES_BEFORE_YIELD = 256 };

/// A wait step: a few hundred pauses, then yield the CPU between checks, so that a thread that
/// shares its core with the one it waits for (before the scheduler spreads them, or with more
/// threads than cores) lets it run instead of spinning through its time slice.
static inline void wait_step(int spin) {
    if (spin < PAUSES_BEFORE_YIELD) CPU_RELAX();
    else sched_yield();
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t dispatch_lock = PTHREAD_MUTEX_INITIALIZER;  // one dispatch at a time
static _Atomic uint64_t generation = 0;
static _Atomic int64_t pending = 0;
static int workers = 0;  // started so far (guarded by dispatch_lock)
static tp_task_fn task_fn;
static void *task_ctx;
static int64_t task_count;

/// A new worker's task index (1-based: the caller runs index 0) and the generation it was
/// started in, before the dispatch that started it: that dispatch is its first task.
typedef struct { int64_t index; uint64_t generation; } worker_start;

static void *worker_main(void *arg) {
    const worker_start start = *(worker_start *)arg;
    free(arg);
    const int64_t index = start.index;
    uint64_t seen = start.generation;
    for (;;) {
        uint64_t now = seen;
        for (int spin = 0; spin < SPIN_ROUNDS; spin++) {
            now = atomic_load_explicit(&generation, memory_order_acquire);
            if (now != seen) break;
            wait_step(spin);
        }
        if (now == seen) {
            pthread_mutex_lock(&lock);
            while ((now = atomic_load_explicit(&generation, memory_order_acquire)) == seen) pthread_cond_wait(&wake, &lock);
            pthread_mutex_unlock(&lock);
        }
        seen = now;
        if (index < task_count) task_fn(task_ctx, index);
        atomic_fetch_sub_explicit(&pending, 1, memory_order_acq_rel);
    }
    return NULL;
}

void tp_pool_run(int64_t count, tp_task_fn fn, void *ctx) {
    if (count <= 1) {
        if (count == 1) fn(ctx, 0);
        return;
    }
    pthread_mutex_lock(&dispatch_lock);
    int64_t wanted = count - 1 < MAX_WORKERS ? count - 1 : MAX_WORKERS;
    while (workers < wanted) {
        worker_start *start = malloc(sizeof *start);
        if (!start) break;
        start->index = workers + 1;
        start->generation = atomic_load_explicit(&generation, memory_order_acquire);
        pthread_t thread;
        if (pthread_create(&thread, NULL, worker_main, start) != 0) {
            free(start);
            break;
        }
        pthread_detach(thread);
        workers++;
    }
    // Tasks beyond the workers (when a thread could not be started) run on the caller.
    const int64_t shared = count - 1 > workers ? workers + 1 : count;
    task_fn = fn;
    task_ctx = ctx;
    task_count = shared;
    atomic_store_explicit(&pending, workers, memory_order_release);
    pthread_mutex_lock(&lock);
    atomic_fetch_add_explicit(&generation, 1, memory_order_acq_rel);
    pthread_cond_broadcast(&wake);
    pthread_mutex_unlock(&lock);
    fn(ctx, 0);
    for (int64_t i = shared; i < count; i++) fn(ctx, i);
    for (int spin = 0; atomic_load_explicit(&pending, memory_order_acquire) > 0; spin++) wait_step(spin);
    pthread_mutex_unlock(&dispatch_lock);
}
