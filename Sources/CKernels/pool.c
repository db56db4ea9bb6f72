// Thread pools for the inference threads (see ckernels.h): each `tp_pool` has its own workers,
// generation counter, condition variable and dispatch lock, so two pools never wait for each other.
// A dispatch wakes a pool's workers by bumping its generation counter; workers watch it after each
// task (the next convolution follows within microseconds): a few hundred pauses, then yielding the
// CPU between checks, for SPIN_ROUNDS checks in all (some milliseconds), and then they sleep on the
// pool's condition variable, so an idle process uses no CPU. Not reentrant: a task must not
// dispatch on its own pool.
#include "internal.h"
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

struct tp_pool {
    /// Bumped once per dispatch (and once by tp_pool_destroy); the workers watch it. On a cache
    /// line of its own: every worker reads it while it spins.
    _Alignas(64) _Atomic uint64_t generation;
    /// Workers still running the current dispatch's tasks; the dispatcher waits for 0.
    _Alignas(64) _Atomic int64_t pending;
    /// Set by tp_pool_destroy before its last bump of `generation`: the workers then return.
    _Atomic int stop;
    _Alignas(64) pthread_mutex_t lock;  // with `wake`: workers asleep between dispatches
    pthread_cond_t wake;
    pthread_mutex_t dispatch_lock;  // one dispatch of this pool at a time
    /// Workers this pool may start (its thread count minus the caller's).
    int max_workers;
    int workers;  // started so far (guarded by dispatch_lock)
    /// The current dispatch (written under dispatch_lock before `generation` is bumped).
    tp_task_fn task_fn;
    void *task_ctx;
    int64_t task_count;
    pthread_t threads[MAX_WORKERS];  // the workers started, joined by tp_pool_destroy
};

/// A new worker's pool, its task index (1-based: the caller runs index 0) and the generation it
/// was started in, before the dispatch that started it: that dispatch is its first task.
typedef struct { tp_pool *pool; int64_t index; uint64_t generation; } worker_start;

static void *worker_main(void *arg) {
    const worker_start start = *(worker_start *)arg;
    free(arg);
    tp_pool *const p = start.pool;
    const int64_t index = start.index;
    uint64_t seen = start.generation;
    for (;;) {
        uint64_t now = seen;
        for (int spin = 0; spin < SPIN_ROUNDS; spin++) {
            now = atomic_load_explicit(&p->generation, memory_order_acquire);
            if (now != seen) break;
            wait_step(spin);
        }
        if (now == seen) {
            pthread_mutex_lock(&p->lock);
            while ((now = atomic_load_explicit(&p->generation, memory_order_acquire)) == seen) pthread_cond_wait(&p->wake, &p->lock);
            pthread_mutex_unlock(&p->lock);
        }
        seen = now;
        if (atomic_load_explicit(&p->stop, memory_order_acquire)) return NULL;
        if (index < p->task_count) p->task_fn(p->task_ctx, index);
        atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel);
    }
    return NULL;
}

tp_pool *tp_pool_create(int32_t threads) {
    tp_pool *p = NULL;
    if (posix_memalign((void **)&p, 64, sizeof *p) != 0) return NULL;
    atomic_init(&p->generation, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->stop, 0);
    if (pthread_mutex_init(&p->lock, NULL) != 0) goto fail_lock;
    if (pthread_cond_init(&p->wake, NULL) != 0) goto fail_wake;
    if (pthread_mutex_init(&p->dispatch_lock, NULL) != 0) goto fail_dispatch;
    p->max_workers = threads <= 1 ? 0 : threads - 1 < MAX_WORKERS ? threads - 1 : MAX_WORKERS;
    p->workers = 0;
    p->task_fn = NULL;
    p->task_ctx = NULL;
    p->task_count = 0;
    return p;
fail_dispatch:
    pthread_cond_destroy(&p->wake);
fail_wake:
    pthread_mutex_destroy(&p->lock);
fail_lock:
    free(p);
    return NULL;
}

void tp_pool_destroy(tp_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->dispatch_lock);  // a dispatch still running finishes first
    // Spinning workers see the bump; sleeping ones are woken (the bump is made under `lock`, which
    // they hold while they check it before waiting, so none misses it).
    pthread_mutex_lock(&p->lock);
    atomic_store_explicit(&p->stop, 1, memory_order_release);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_acq_rel);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->workers; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_unlock(&p->dispatch_lock);
    pthread_mutex_destroy(&p->dispatch_lock);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

int32_t tp_pool_threads(const tp_pool *p) { return p ? p->max_workers + 1 : 1; }

void tp_pool_run(tp_pool *p, int64_t count, tp_task_fn fn, void *ctx) {
    if (count <= 1 || !p || p->max_workers == 0) {
        for (int64_t i = 0; i < count; i++) fn(ctx, i);
        return;
    }
    pthread_mutex_lock(&p->dispatch_lock);
    int64_t wanted = count - 1 < p->max_workers ? count - 1 : p->max_workers;
    while (p->workers < wanted) {
        worker_start *start = malloc(sizeof *start);
        if (!start) break;
        start->pool = p;
        start->index = p->workers + 1;
        start->generation = atomic_load_explicit(&p->generation, memory_order_acquire);
        if (pthread_create(&p->threads[p->workers], NULL, worker_main, start) != 0) {
            free(start);
            break;
        }
        p->workers++;
    }
    const int workers = p->workers;
    // Tasks beyond the workers (more tasks than the pool's threads, or a thread that could not
    // be started) run on the caller.
    const int64_t shared = count - 1 > workers ? workers + 1 : count;
    p->task_fn = fn;
    p->task_ctx = ctx;
    p->task_count = shared;
    atomic_store_explicit(&p->pending, workers, memory_order_release);
    pthread_mutex_lock(&p->lock);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_acq_rel);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    fn(ctx, 0);
    for (int64_t i = shared; i < count; i++) fn(ctx, i);
    for (int spin = 0; atomic_load_explicit(&p->pending, memory_order_acquire) > 0; spin++) wait_step(spin);
    pthread_mutex_unlock(&p->dispatch_lock);
}
