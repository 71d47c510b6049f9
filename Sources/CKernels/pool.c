// A small persistent thread pool for the kernels' parallel loops (in the manner of XNNPACK's pthreadpool):
// workers spin briefly between jobs, so the many short parallel regions of one network run do not pay a
// thread wake-up each, then sleep on a condition variable when idle.
#include "CKernels.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <immintrin.h>

enum { MAX_WORKERS = 63, SPIN_ROUNDS = 20000, YIELD_EVERY = 1000 };

static pthread_mutex_t run_lock = PTHREAD_MUTEX_INITIALIZER;    // one job at a time
static pthread_mutex_t sleep_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static int started;                                             // workers created so far
static _Atomic unsigned long generation;                       // bumped once per job
static _Atomic int sleepers;
static _Atomic int next_part, parts_done, active_workers;
static int job_parts, job_workers;
static sq_task job_fn;
static void *job_ctx;
static _Thread_local int inside_job;

static void work(void) {
    int parts = job_parts;
    for (;;) {
        int p = atomic_fetch_add_explicit(&next_part, 1, memory_order_relaxed);
        if (p >= parts) break;
        job_fn(job_ctx, p);
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
        if (index < job_workers) {
            work();
        }
        atomic_fetch_sub_explicit(&active_workers, 1, memory_order_release);
    }
    return NULL;
}

void sq_parallel(int threads, int parts, sq_task fn, void *ctx) {
    if (parts <= 0) return;
    if (threads <= 1 || parts == 1 || inside_job) {
        for (int p = 0; p < parts; p++) fn(ctx, p);
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
    job_fn = fn;
    job_ctx = ctx;
    job_parts = parts;
    job_workers = want < started ? want : started;
    atomic_store(&next_part, 0);
    atomic_store(&parts_done, 0);
    atomic_store(&active_workers, started);
    atomic_fetch_add_explicit(&generation, 1, memory_order_release);
    if (atomic_load(&sleepers) > 0) {
        pthread_mutex_lock(&sleep_lock);
        pthread_cond_broadcast(&wake);
        pthread_mutex_unlock(&sleep_lock);
    }
    inside_job = 1;
    work();
    inside_job = 0;
    // Wait for the parts other threads took, and for every worker to have left this job, offering the core every
    // YIELD_EVERY rounds: when other processes hold the cores (two jobs on a 2-core machine), a worker waiting to
    // be scheduled must not find the caller (or its own idle siblings) burning the core it needs. Without the
    // yields two concurrent calibrations of MobileNetV2 took 25.6 s each against 2.2 s alone; with them 4.2 s.
    for (int spins = 0; atomic_load_explicit(&parts_done, memory_order_acquire) < parts || atomic_load_explicit(&active_workers, memory_order_acquire) > 0; spins++) relax(spins);
    pthread_mutex_unlock(&run_lock);
}
