// A small persistent thread pool for the kernels' parallel loops (in the manner of XNNPACK's pthreadpool):
// workers spin briefly between jobs, so the many short parallel regions of one network run do not pay a
// thread wake-up each, then sleep on a condition variable when idle.
//
// Parts are claimed from one atomic word that names the job, its part count and the next part, and the caller
// returns as soon as every part is done: it never waits for a worker that took no part. On a shared machine a
// worker may not be running when a job starts (its core lent to another process, or to another guest of the
// host); the caller then runs the parts itself instead of waiting for the worker to be scheduled only to find
// nothing left (with a busy loop on the second core, MobileNetV2 at 2 threads ran at 0.85x ONNX Runtime's speed).
#include "CKernels.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <immintrin.h>

enum { MAX_WORKERS = 63, SPIN_ROUNDS = 20000, YIELD_EVERY = 1000, MAX_PARTS = 0xFFFF };

static pthread_mutex_t run_lock = PTHREAD_MUTEX_INITIALIZER;    // one job at a time
static pthread_mutex_t sleep_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static int started;                                             // workers created so far
static _Atomic unsigned long generation;                       // bumped once per job, to wake the workers
static _Atomic int sleepers;
// The job: bits 32-63 its number, 16-31 its parts, 0-15 the next part to claim. A claim is a compare-and-swap of
// the whole word, so it succeeds only while the job it read is still the current one, and then that job cannot
// end before the claimed part is done: what the claimer reads of the job below is that job's.
static _Atomic uint64_t job_word;
static _Atomic int parts_done;
static _Atomic(sq_task) job_fn;
static _Atomic(void *) job_ctx;
static _Atomic int job_workers;                                 // workers 0 ..< job_workers take part
static _Atomic int held;                                        // tests: workers stop before looking at a job
static _Thread_local int inside_job;

// Claims and runs parts of the current job until none is left; `index` is the worker's (-1: the caller, who always
// takes part).
static void work(int index) {
    for (;;) {
        uint64_t w = atomic_load_explicit(&job_word, memory_order_acquire);
        int parts = (int)(w >> 16 & MAX_PARTS), p = (int)(w & MAX_PARTS);
        if (p >= parts) return;
        if (index >= atomic_load_explicit(&job_workers, memory_order_relaxed)) return;
        if (!atomic_compare_exchange_weak_explicit(&job_word, &w, w + 1, memory_order_acq_rel, memory_order_relaxed)) continue;
        atomic_load_explicit(&job_fn, memory_order_relaxed)(atomic_load_explicit(&job_ctx, memory_order_relaxed), p);
        atomic_fetch_add_explicit(&parts_done, 1, memory_order_release);
    }
}

static unsigned long start_generation[MAX_WORKERS];

// One round of a spin-wait: a pause, and every YIELD_EVERY rounds the core offered to whoever else waits for it
// (another process's threads).
static inline void relax(int spins) {
    if (spins % YIELD_EVERY == YIELD_EVERY - 1) sched_yield(); else _mm_pause();
}

static void *worker_main(void *arg) {
    int index = (int)(long)arg;
    inside_job = 1;
    unsigned long seen = start_generation[index];   // the generation before this worker's first job
    for (;;) {
        unsigned long g;
        int spins = 0;
        while ((g = atomic_load_explicit(&generation, memory_order_acquire)) == seen && spins < SPIN_ROUNDS) relax(spins++);
        if (g == seen) {
            pthread_mutex_lock(&sleep_lock);
            atomic_fetch_add(&sleepers, 1);
            while ((g = atomic_load(&generation)) == seen) pthread_cond_wait(&wake, &sleep_lock);
            atomic_fetch_sub(&sleepers, 1);
            pthread_mutex_unlock(&sleep_lock);
        }
        seen = g;
        // Tests hold the workers here, as if their core were lent elsewhere: they have not looked at the job.
        for (int spins = 0; atomic_load_explicit(&held, memory_order_acquire); spins++) relax(spins);
        work(index);
    }
    return NULL;
}

struct slice { sq_task fn; void *ctx; int first; };
static void run_slice(void *ctx, int part) {
    struct slice *s = ctx;
    s->fn(s->ctx, s->first + part);
}

void sq_parallel(int threads, int parts, sq_task fn, void *ctx) {
    if (parts <= 0) return;
    if (threads <= 1 || parts == 1 || inside_job) {
        for (int p = 0; p < parts; p++) fn(ctx, p);
        return;
    }
    if (parts > MAX_PARTS) {
        // More parts than the job word counts: jobs of MAX_PARTS at a time.
        for (int first = 0; first < parts; first += MAX_PARTS) {
            struct slice s = { fn, ctx, first };
            sq_parallel(threads, parts - first < MAX_PARTS ? parts - first : MAX_PARTS, run_slice, &s);
        }
        return;
    }
    pthread_mutex_lock(&run_lock);
    int want = threads - 1 < MAX_WORKERS ? threads - 1 : MAX_WORKERS;
    while (started < want) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 1 << 20);
        start_generation[started] = atomic_load(&generation);
        if (pthread_create(&t, &attr, worker_main, (void *)(long)started) != 0) { pthread_attr_destroy(&attr); break; }
        pthread_attr_destroy(&attr);
        pthread_detach(t);
        started++;
    }
    // The previous job's parts are all claimed and done: no worker reads what is written here until the new job word
    // is published (release), and a worker still holding the old word fails its claim.
    atomic_store_explicit(&job_fn, fn, memory_order_relaxed);
    atomic_store_explicit(&job_ctx, ctx, memory_order_relaxed);
    atomic_store_explicit(&job_workers, want < started ? want : started, memory_order_relaxed);
    atomic_store_explicit(&parts_done, 0, memory_order_relaxed);
    uint64_t number = (atomic_load_explicit(&job_word, memory_order_relaxed) >> 32) + 1;
    atomic_store_explicit(&job_word, number << 32 | (uint64_t)parts << 16, memory_order_release);
    atomic_fetch_add_explicit(&generation, 1, memory_order_release);
    if (atomic_load(&sleepers) > 0) {
        pthread_mutex_lock(&sleep_lock);
        pthread_cond_broadcast(&wake);
        pthread_mutex_unlock(&sleep_lock);
    }
    inside_job = 1;
    work(-1);
    inside_job = 0;
    // Wait for the parts workers took, offering the core every YIELD_EVERY rounds: when other processes hold the
    // cores (two jobs on a 2-core machine), a worker finishing its part must not find the caller burning the core it
    // needs. Without the yields two concurrent calibrations of MobileNetV2 took 25.6 s each against 2.2 s alone;
    // with them 4.2 s.
    for (int spins = 0; atomic_load_explicit(&parts_done, memory_order_acquire) < parts; spins++) relax(spins);
    pthread_mutex_unlock(&run_lock);
}

void sq_pool_hold_workers(int hold) { atomic_store(&held, hold); }
