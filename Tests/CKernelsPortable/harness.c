// The C kernels' portable part, run on whatever CPU this is compiled for (x86-64 natively, aarch64
// under qemu-aarch64: `make check-arm64`). Checks, against scalar references written here:
//   - tp_kernels_available() is 0 off x86-64 and the FMA probe reports 0 FLOPs there; no
//     instruction set is available there; on x86-64, AVX2 is wherever AVX-512 is, the selected
//     one is the best (TORCHPORT_ISA unset) and the FMA probe counts its vector width;
//   - the plain-C layers (maxpool, NCHW <-> bordered NHWC, global average) give torch's values
//     (on x86-64 in the selected instruction set's build of them: AVX-512, AVX2 or baseline);
//   - a thread pool runs every task exactly once, with several workers; a thread count below 1
//     (or no pool at all) runs the tasks on the caller; two pools run at the same time, from two
//     threads (neither waits for the other); destroying a pool joins its workers, spinning or
//     asleep (no thread left behind);
//   - where the packed kernels are unavailable, calling one aborts with a message (no silent stub).
// Prints "N passed, N failed" and exits non-zero on a failure.
#include "ckernels.h"
#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int passed, failed;
#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        if (cond) passed++;                                                                                            \
        else { failed++; printf("FAIL %s:%d: ", __FILE__, __LINE__); printf(__VA_ARGS__); printf("\n"); }              \
    } while (0)

static float value(int64_t i) { return (float)((i * 7919) % 23) - 11.0f + 0.25f * (float)(i % 3); }

static int64_t at(const tp_map *m, int64_t n, int64_t y, int64_t x, int64_t c) {
    return ((n * (m->h + 2 * m->border) + y + m->border) * (m->w + 2 * m->border) + x + m->border) * m->cs + c;
}

static tp_map make_map(int n, int h, int w, int c, int border, int cs) {
    tp_map m = {NULL, n, h, w, c, border, cs};
    m.data = calloc((size_t)n * (h + 2 * border) * (w + 2 * border) * cs, sizeof(float));
    return m;
}

static void layers(void) {
    const int n = 2, c = 5, h = 9, w = 7;
    float *nchw = malloc(sizeof(float) * n * c * h * w);
    for (int64_t i = 0; i < (int64_t)n * c * h * w; i++) nchw[i] = value(i);
    tp_map in = make_map(n, h, w, c, 1, 8);
    tp_from_nchw(nchw, &in, 0, (int64_t)n * h);
    int ok = 1;
    for (int b = 0; b < n; b++)
        for (int ch = 0; ch < c; ch++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    ok &= in.data[at(&in, b, y, x, ch)] == nchw[((b * c + ch) * h + y) * w + x];
    CHECK(ok, "tp_from_nchw puts every element at its NHWC place");
    float *back = calloc((size_t)n * c * h * w, sizeof(float));
    tp_to_nchw(&in, back);
    CHECK(memcmp(back, nchw, sizeof(float) * n * c * h * w) == 0, "tp_to_nchw undoes tp_from_nchw");

    // MaxPool2d(3, 2, 1): torch's output size floor((h + 2 - 3) / 2) + 1.
    const int oh = (h - 1) / 2 + 1, ow = (w - 1) / 2 + 1;
    tp_map out = make_map(n, oh, ow, c, 0, c);
    tp_maxpool3s2(&in, &out, 0, (int64_t)n * oh);
    ok = 1;
    for (int b = 0; b < n; b++)
        for (int ch = 0; ch < c; ch++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    float best = -INFINITY;
                    for (int y = 2 * oy - 1; y <= 2 * oy + 1; y++)
                        for (int x = 2 * ox - 1; x <= 2 * ox + 1; x++)
                            if (y >= 0 && y < h && x >= 0 && x < w && nchw[((b * c + ch) * h + y) * w + x] > best)
                                best = nchw[((b * c + ch) * h + y) * w + x];
                    ok &= out.data[at(&out, b, oy, ox, ch)] == best;
                }
    CHECK(ok, "tp_maxpool3s2 matches a scalar MaxPool2d(3, 2, 1)");

    float avg[2 * 5];
    tp_global_average(&in, avg);
    ok = 1;
    for (int b = 0; b < n; b++)
        for (int ch = 0; ch < c; ch++) {
            double sum = 0;
            for (int i = 0; i < h * w; i++) sum += nchw[(b * c + ch) * h * w + i];
            ok &= fabs(avg[b * c + ch] - sum / (h * w)) <= 1e-5 * (1 + fabs(sum / (h * w)));
        }
    CHECK(ok, "tp_global_average matches a scalar mean");
    free(nchw); free(back); free(in.data); free(out.data);
}

static atomic_int hits[1000];
static void count_task(void *ctx, int64_t index) { (void)ctx; atomic_fetch_add(&hits[index], 1); }

/// Runs `count` tasks on `p`; 1 when each ran exactly once.
static int runs_each_once(tp_pool *p, int64_t count) {
    for (int i = 0; i < 1000; i++) atomic_store(&hits[i], 0);
    tp_pool_run(p, count, count_task, NULL);
    int ok = 1;
    for (int64_t i = 0; i < 1000; i++) ok &= atomic_load(&hits[i]) == (i < count ? 1 : 0);
    return ok;
}

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/// Threads of this process (entries of /proc/self/task); -1 where that cannot be read.
static int thread_count(void) {
    DIR *d = opendir("/proc/self/task");
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/// Waits (up to 10 s) until the process has `want` threads again: a joined thread can still be
/// listed for a moment after pthread_join returns.
static int threads_back_to(int want) {
    const double until = seconds() + 10;
    while (thread_count() != want && seconds() < until) sched_yield();
    return thread_count() == want;
}

// Two pools at once: pool A's task 1 waits for pool B's task 1, which a second thread dispatches
// while A's run is in progress. With one lock for every pool, B's run would wait for A's, which
// waits for B: the wait times out instead.
static atomic_int a_started, b_ran, a_saw_b;
static void wait_for_b(void *ctx, int64_t index) {
    (void)ctx;
    if (index != 1) return;
    atomic_store(&a_started, 1);
    const double until = seconds() + 10;
    while (!atomic_load(&b_ran) && seconds() < until) sched_yield();
    atomic_store(&a_saw_b, atomic_load(&b_ran));
}
static void mark_b(void *ctx, int64_t index) {
    (void)ctx;
    if (index == 1) atomic_store(&b_ran, 1);
}
static void *run_a(void *pool) {
    tp_pool_run(pool, 2, wait_for_b, NULL);
    return NULL;
}

static void pool(void) {
    const int before = thread_count();
    tp_pool *p = tp_pool_create(4);
    CHECK(p != NULL && tp_pool_threads(p) == 4, "tp_pool_create(4) makes a pool of 4 threads");
    for (int round = 0; round < 4; round++) {
        const int64_t count = round == 0 ? 1 : round == 1 ? 4 : round == 2 ? 3 : 1000;
        CHECK(runs_each_once(p, count), "tp_pool_run(%lld) on 4 threads runs each task exactly once", (long long)count);
    }
    if (before > 0) CHECK(thread_count() == before + 3, "a pool of 4 threads started 3 workers (%d threads, %d before)",
                          thread_count(), before);
    tp_pool_destroy(p);  // its workers are still spinning
    if (before > 0) CHECK(threads_back_to(before), "tp_pool_destroy joins spinning workers (%d threads, %d before)",
                          thread_count(), before);

    for (int32_t threads = 0; threads >= -5; threads -= 5) {
        tp_pool *one = tp_pool_create(threads);
        CHECK(one != NULL && tp_pool_threads(one) == 1, "tp_pool_create(%d) makes a pool of 1 thread", threads);
        CHECK(runs_each_once(one, 7), "a pool of 1 thread runs each of 7 tasks on the caller");
        tp_pool_destroy(one);
    }
    CHECK(tp_pool_threads(NULL) == 1 && runs_each_once(NULL, 5), "no pool (NULL) runs each task on the caller");
    tp_pool_destroy(NULL);

    tp_pool *a = tp_pool_create(2), *b = tp_pool_create(2);
    pthread_t thread;
    pthread_create(&thread, NULL, run_a, a);
    const double until = seconds() + 10;
    while (!atomic_load(&a_started) && seconds() < until) sched_yield();
    tp_pool_run(b, 2, mark_b, NULL);
    pthread_join(thread, NULL);
    CHECK(atomic_load(&a_saw_b), "two pools run at the same time: a task of one saw a task of the other finish");
    // Long enough for the workers to stop spinning and sleep on their condition variables (20,000
    // checks, most of them sched_yield), though a slow emulator may still find them spinning.
    struct timespec pause = {0, 300 * 1000 * 1000};
    nanosleep(&pause, NULL);
    tp_pool_destroy(a);
    tp_pool_destroy(b);
    if (before > 0) CHECK(threads_back_to(before), "tp_pool_destroy wakes and joins sleeping workers (%d threads, %d before)",
                          thread_count(), before);
}

/// Runs `call` in a child; 1 when it died of SIGABRT.
static int aborts(void (*call)(void)) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        freopen("/dev/null", "w", stderr);
        call();
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

static void call_conv_run(void) {
    tp_conv c = {0};
    tp_map m = {0};
    tp_conv_run(&c, &m, &m, NULL, 0, 0, 1, NULL);
}
static void call_run_blocks(void) {
    tp_conv c = {0};
    tp_map m = {0};
    tp_conv_run_blocks(&c, &m, &m, NULL, 0, 0, 1, NULL, 0, 1);
}

int main(void) {
    const int available = tp_kernels_available();
    const int32_t selected = tp_isa_selected();
    CHECK(strcmp(tp_isa_name(TP_ISA_NONE), "reference") == 0 && strcmp(tp_isa_name(TP_ISA_AVX2), "avx2") == 0
              && strcmp(tp_isa_name(TP_ISA_AVX512), "avx512") == 0, "tp_isa_name");
    CHECK(!tp_isa_available(TP_ISA_NONE) && !tp_isa_available(7), "no kernels for TP_ISA_NONE or unknown values");
    CHECK(available == (selected != TP_ISA_NONE), "tp_kernels_available() is whether an instruction set is selected");
    double sink = 0;
#if defined(__x86_64__)
    printf("x86-64: packed kernels %savailable on this CPU (%s; avx512 %d, avx2 %d)\n", available ? "" : "not ",
           tp_isa_name(selected), tp_isa_available(TP_ISA_AVX512), tp_isa_available(TP_ISA_AVX2));
    if (tp_isa_available(TP_ISA_AVX512)) CHECK(tp_isa_available(TP_ISA_AVX2), "AVX2 + FMA wherever AVX-512 is");
    const char *forced = getenv("TORCHPORT_ISA");
    if (forced == NULL || *forced == 0) {
        const int32_t best = tp_isa_available(TP_ISA_AVX512) ? TP_ISA_AVX512
                           : tp_isa_available(TP_ISA_AVX2) ? TP_ISA_AVX2 : TP_ISA_NONE;
        CHECK(selected == best, "the best instruction set is selected (%d, best %d)", selected, best);
    }
    const double width = selected == TP_ISA_AVX512 ? 16 : selected == TP_ISA_AVX2 ? 8 : 0;
    CHECK(tp_fma_flops(1000, &sink) == 1000 * 12 * width * 2, "the FMA probe counts the selected vectors' FLOPs");
#else
    CHECK(available == 0 && selected == TP_ISA_NONE, "no packed kernels off x86-64 (got %d)", available);
    CHECK(!tp_isa_available(TP_ISA_AVX2) && !tp_isa_available(TP_ISA_AVX512), "no x86 instruction sets off x86-64");
    CHECK(tp_fma_flops(1000, &sink) == 0, "the FMA probe reports 0 FLOPs where the kernels are unavailable");
#endif
    // The layers run everywhere: on x86-64 in the selected instruction set's build (AVX-512, AVX2,
    // or the baseline's when none is), elsewhere plain C.
    layers();
    pool();
    tp_trim_heap();
    // An unplanned descriptor (isa 0), like any where the kernels are unavailable, aborts.
    CHECK(aborts(call_conv_run), "tp_conv_run aborts where the kernels are unavailable");
    CHECK(aborts(call_run_blocks), "tp_conv_run_blocks aborts where the kernels are unavailable");
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
