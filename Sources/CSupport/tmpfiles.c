#define _GNU_SOURCE
#include "CSupport.h"
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#define SLOTS 64
#define PATH_BYTES 4096

// A slot's path is written before its flag is set and the flag is cleared before the slot is reused, so the
// handler (which only reads flagged slots and calls unlink, which is async-signal-safe) never sees a half path.
static char paths[SLOTS][PATH_BYTES];
static atomic_int used[SLOTS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

int sq_tmp_remember(const char *path) {
    if (strlen(path) >= PATH_BYTES) return -1;
    pthread_mutex_lock(&lock);
    int slot = -1;
    for (int i = 0; i < SLOTS; i++) {
        if (atomic_load(&used[i]) == 0) { slot = i; break; }
    }
    if (slot >= 0) {
        strcpy(paths[slot], path);
        atomic_store(&used[slot], 1);
    }
    pthread_mutex_unlock(&lock);
    return slot;
}

void sq_tmp_forget(int slot) {
    if (slot < 0 || slot >= SLOTS) return;
    atomic_store(&used[slot], 0);
}

static void unlink_remembered(void) {
    for (int i = 0; i < SLOTS; i++) {
        if (atomic_load(&used[i])) unlink(paths[i]);
    }
}

static atomic_int committing, pending;

static void on_signal(int sig) {
    if (atomic_load(&committing)) {
        atomic_store(&pending, sig);
        return;
    }
    unlink_remembered();
    signal(sig, SIG_DFL);
    raise(sig);
}

void sq_tmp_begin_commit(void) { atomic_store(&committing, 1); }

void sq_tmp_end_commit(void) {
    atomic_store(&committing, 0);
    int sig = atomic_exchange(&pending, 0);
    if (sig) on_signal(sig);
}

// A crash (a Swift trap is SIGILL or SIGTRAP) removes the temporary files too, then hands the signal to the
// handler that was there before (Swift's backtracer): a fault re-executes the faulting instruction under it,
// a raised signal is raised again.
static const int crash_signals[] = {SIGILL, SIGTRAP, SIGABRT, SIGSEGV, SIGBUS, SIGFPE};
static struct sigaction previous[6];

static void on_crash(int sig, siginfo_t *info, void *context) {
    (void)context;
    unlink_remembered();
    for (int i = 0; i < 6; i++) {
        if (crash_signals[i] == sig) sigaction(sig, &previous[i], NULL);
    }
    if (info == NULL || info->si_code <= 0) raise(sig);  // sent by raise/kill/abort, not a fault
}

void sq_tmp_install_signal_handlers(void) {
    static atomic_int installed;
    if (atomic_exchange(&installed, 1)) return;
    int signals[] = {SIGINT, SIGTERM, SIGHUP};
    for (int i = 0; i < 3; i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        struct sigaction old;
        // A signal the parent set to be ignored (nohup) stays ignored.
        if (sigaction(signals[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN) continue;
        sigaction(signals[i], &sa, NULL);
    }
    for (int i = 0; i < 6; i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_crash;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        sigaction(crash_signals[i], &sa, &previous[i]);
    }
}
