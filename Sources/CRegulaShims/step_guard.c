/*
 * The step guard: which rule's kernel each worker is running, and what the process says when a kernel ends it
 * (exit, a fatal signal) or never returns (the watchdog). Everything a signal handler or atexit handler reads
 * is plain memory written before; the handlers only call write(2), sigaction, raise and _exit.
 */
#include "regula_shims.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define REGULA_GUARD_SLOTS 256

/* Slot i: the name of the rule whose kernel worker i runs now, or NULL. Each worker writes its slot around
 * every kernel call, so each slot has a cache line of its own: slots sharing a line would move it between the
 * cores at every block of every rule. */
struct guard_slot {
    _Alignas(64) const char *name;
};
static struct guard_slot slots[REGULA_GUARD_SLOTS];
static atomic_bool claimed[REGULA_GUARD_SLOTS];
/* Written by workers beyond the last slot: never reported. */
static const char *spare;

/* Steps running now, and steps begun so far (the watchdog's sign of progress). */
static atomic_long depth;
static atomic_long begun;

const char **regula_guard_claim_slot(void) {
    for (int i = 0; i < REGULA_GUARD_SLOTS; i++) {
        bool expected = false;
        if (atomic_compare_exchange_strong(&claimed[i], &expected, true)) return &slots[i].name;
    }
    return &spare;
}

void regula_guard_release_slot(const char **slot) {
    if (slot == &spare) return;
    __atomic_store_n(slot, NULL, __ATOMIC_RELAXED);
    atomic_store(&claimed[(struct guard_slot *)slot - slots], false);
}

void regula_guard_step_begin(void) {
    atomic_fetch_add(&begun, 1);
    atomic_fetch_add(&depth, 1);
}

void regula_guard_step_end(void) { atomic_fetch_sub(&depth, 1); }

static void say(const char *text) {
    size_t length = strlen(text);
    while (length > 0) {
        ssize_t written = write(STDERR_FILENO, text, length);
        if (written <= 0) return;
        text += written;
        length -= (size_t)written;
    }
}

/* Writes `before`, the running rules' names quoted and separated by ", ", then `after`. 0 when none ran. */
static int say_running(const char *before, const char *after) {
    int found = 0;
    for (int i = 0; i < REGULA_GUARD_SLOTS; i++) {
        const char *name = __atomic_load_n(&slots[i].name, __ATOMIC_RELAXED);
        if (name == NULL) continue;
        say(found++ == 0 ? before : ", ");
        say("\"");
        say(name);
        say("\"");
    }
    if (found) say(after);
    return found;
}

/* MARK: exit during a step */

static void exit_guard(void) {
    if (atomic_load(&depth) == 0) return;
    if (!say_running("regula: the kernel of rule ", " called exit during a step; the run did not finish\n"))
        say("regula: exit was called during a step; the run did not finish\n");
    _exit(REGULA_GUARD_EXIT_STATUS);
}

/* MARK: fatal signals */

static const int fatal_signals[] = {SIGABRT, SIGSEGV, SIGBUS, SIGILL, SIGFPE};
static const char *const fatal_names[] = {"SIGABRT", "SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE"};
#define FATAL_COUNT (sizeof fatal_signals / sizeof fatal_signals[0])
/* What each signal did before: the default, or Swift's backtracer. */
static struct sigaction previous[FATAL_COUNT];

static void crash_guard(int signal, siginfo_t *info, void *context) {
    (void)info;
    (void)context;
    for (size_t i = 0; i < FATAL_COUNT; i++) {
        if (fatal_signals[i] != signal) continue;
        if (say_running("regula: the kernel of rule ", " was running when the process received ")) {
            say(fatal_names[i]);
            say("; the run did not finish\n");
        } else if (atomic_load(&depth) > 0) {
            say("regula: the process received ");
            say(fatal_names[i]);
            say(" during a step; the run did not finish\n");
        }
        sigaction(signal, &previous[i], NULL);
        break;
    }
    /* Blocked until this handler returns; then the previous action takes it. A fault raises it again anyway. */
    raise(signal);
}

void regula_guard_install(void) {
    static atomic_bool installed;
    if (atomic_exchange(&installed, true)) return;
    atexit(exit_guard);
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = crash_guard;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    for (size_t i = 0; i < FATAL_COUNT; i++) sigaction(fatal_signals[i], &action, &previous[i]);
}

/* MARK: watchdog */

static double watchdog_seconds;

static void *watch(void *unused) {
    (void)unused;
    long seen = -1;
    double stalled = 0;
    double interval = watchdog_seconds / 8 < 0.25 ? watchdog_seconds / 8 : 0.25;
    struct timespec pause = {(time_t)interval, (long)((interval - (double)(time_t)interval) * 1e9)};
    for (;;) {
        nanosleep(&pause, NULL);
        long now = atomic_load(&begun);
        if (atomic_load(&depth) == 0 || now != seen) {
            seen = now;
            stalled = 0;
            continue;
        }
        stalled += interval;
        if (stalled < watchdog_seconds) continue;
        if (!say_running("regula: the kernel of rule ", " did not return within the step timeout; the run did not finish\n"))
            say("regula: a step did not finish within the step timeout; the run did not finish\n");
        _exit(REGULA_GUARD_TIMEOUT_STATUS);
    }
    return NULL;
}

int regula_guard_start_watchdog(double seconds) {
    static atomic_bool started;
    if (!(seconds > 0)) return -1;
    if (atomic_exchange(&started, true)) return -2;
    watchdog_seconds = seconds;
    pthread_t thread;
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    int status = pthread_create(&thread, &attributes, watch, NULL);
    pthread_attr_destroy(&attributes);
    return status == 0 ? 0 : -3;
}
