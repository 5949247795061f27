// SegKit's worker pool: one helper thread per extra core, kept spinning for a
// short while between parallel regions.
//
// Why not Dispatch: DispatchQueue.concurrentPerform wakes parked pool threads
// on demand, and on these machines a woken thread arrived ~1 ms late: two
// 1 ms halves of an op ran one after the other on the calling thread (2.0 ms
// wall, measured), which is most ops of a training step here. OpenMP runtimes
// spin for the same reason.

#include "segkit_kernels.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

// A region's claim word: generation (24 bits) | parts (20) | next part (20).
// Parts are claimed by compare-and-swap on the whole word, so a helper that
// arrives after its region ended can never take a part of the next one.
#define PART_BITS 20
#define PART_MASK ((UINT64_C(1) << PART_BITS) - 1)
#define GEN_SHIFT (2 * PART_BITS)

static _Atomic uint64_t claim;
static segkit_task region_task;
static void *region_context;
static _Atomic int finished;
static pthread_mutex_t sleep_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static int sleepers;
static pthread_mutex_t busy = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t started = PTHREAD_ONCE_INIT;
static int helper_count;
static _Thread_local int inside_region;

/// How long an idle helper spins before it sleeps: longer than the gaps
/// between the ops of a step, short enough that an idle process sleeps.
#define SPIN_NANOSECONDS 200000

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static inline void relax(void) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
}

/// Runs parts of generation `gen` until none is left.
static void take_parts(uint64_t gen) {
    uint64_t word = atomic_load_explicit(&claim, memory_order_acquire);
    for (;;) {
        uint64_t parts = (word >> PART_BITS) & PART_MASK, next = word & PART_MASK;
        if ((word >> GEN_SHIFT) != gen || next >= parts) return;
        if (atomic_compare_exchange_weak_explicit(&claim, &word, word + 1, memory_order_acq_rel, memory_order_acquire)) {
            region_task(region_context, (int)next);
            atomic_fetch_add_explicit(&finished, 1, memory_order_release);
            word = atomic_load_explicit(&claim, memory_order_acquire);
        }
    }
}

static void *helper(void *unused) {
    (void)unused;
    inside_region = 1;
    uint64_t seen = 0;
    for (;;) {
        uint64_t spin_start = now_ns();
        unsigned spins = 0;
        uint64_t gen;
        while ((gen = atomic_load_explicit(&claim, memory_order_acquire) >> GEN_SHIFT) == seen) {
            relax();
            if (++spins % 1024 == 0 && now_ns() - spin_start > SPIN_NANOSECONDS) {
                pthread_mutex_lock(&sleep_lock);
                sleepers++;
                while ((atomic_load_explicit(&claim, memory_order_acquire) >> GEN_SHIFT) == seen)
                    pthread_cond_wait(&wake, &sleep_lock);
                sleepers--;
                pthread_mutex_unlock(&sleep_lock);
                spin_start = now_ns();
            }
        }
        seen = gen;
        take_parts(gen);
    }
    return NULL;
}

static void start_helpers(void) {
    for (int i = 0; i < helper_count; i++) {
        pthread_t thread;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int failed = pthread_create(&thread, &attr, helper, NULL) != 0;
        pthread_attr_destroy(&attr);
        // Fewer helpers only means less parallelism: the caller takes every part no helper takes.
        if (failed) break;
    }
}

void segkit_parallel_configure(int workers) {
    if (helper_count == 0 && workers > 1) helper_count = workers - 1;
}

void segkit_parallel_run(int parts, segkit_task task, void *context) {
    // Serially: one part, a region started inside a region, or a region
    // already running on another thread (callers never wait on each other).
    if (parts <= 1 || helper_count == 0 || inside_region || (uint64_t)parts > PART_MASK
        || pthread_mutex_trylock(&busy) != 0) {
        for (int p = 0; p < parts; p++) task(context, p);
        return;
    }
    pthread_once(&started, start_helpers);
    region_task = task;
    region_context = context;
    atomic_store_explicit(&finished, 0, memory_order_relaxed);
    uint64_t gen = ((atomic_load_explicit(&claim, memory_order_relaxed) >> GEN_SHIFT) + 1) & ((UINT64_C(1) << 24) - 1);
    if (gen == 0) gen = 1;  // 0 is the helpers' initial "seen"
    atomic_store_explicit(&claim, (gen << GEN_SHIFT) | ((uint64_t)parts << PART_BITS), memory_order_release);
    pthread_mutex_lock(&sleep_lock);
    if (sleepers) pthread_cond_broadcast(&wake);
    pthread_mutex_unlock(&sleep_lock);
    inside_region = 1;
    take_parts(gen);
    inside_region = 0;
    while (atomic_load_explicit(&finished, memory_order_acquire) < parts) relax();
    pthread_mutex_unlock(&busy);
}
