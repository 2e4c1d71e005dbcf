/* The writer lock of an activation store (store.h: musae_store_lock) and the files a writer must not leave
 * behind when its process exits. No HDF5 here. */
#include "host/io/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "host/core/check.h"
#include "host/core/log.h"
#include "host/io/store.h"

/* "<store>.lock", made with O_CREAT|O_EXCL (atomic on local and network file systems, unlike flock/fcntl locks
 * on some NFS and Lustre mounts, and independent of HDF5_USE_FILE_LOCKING), holding "PID HOST\n". A lock whose
 * PID is dead on this host is stale (a killed writer) and is taken over. This process's locks and a
 * half-made store are removed at exit, also on a musae_fail, and on quick_exit (musae_fail_now). */
enum { MAX_HELD = 16 };
typedef struct {
    char lock[4200];
    int refs;
    pid_t pid; /* a forked child inherits the table but not the lock */
} held_lock;
static pthread_mutex_t g_lock_mu = PTHREAD_MUTEX_INITIALIZER;
static held_lock g_held[MAX_HELD];
static char g_creating[4200]; /* the temporary file of a store being created */
static pid_t g_creating_pid;
static int g_registered; /* cleanup_at_exit is registered */

static void cleanup_at_exit(void) {
    for (int i = 0; i < MAX_HELD; i++)
        if (g_held[i].refs > 0 && g_held[i].pid == getpid()) unlink(g_held[i].lock);
    if (g_creating[0] && g_creating_pid == getpid()) unlink(g_creating);
}
static void lock_name(const char *store, char *out, size_t cap) { snprintf(out, cap, "%s.lock", store); }

/* The holder recorded in a lock file: 0, or -1 when it cannot be read or is (still) empty. */
static int read_holder(const char *lock, long *pid, char *host, size_t cap) {
    FILE *f = fopen(lock, "r");
    if (!f) return -1;
    char line[512] = "", h[256] = "";
    int ok = fgets(line, sizeof line, f) && sscanf(line, "%ld %255s", pid, h) == 2 && *pid > 0;
    fclose(f);
    if (ok) snprintf(host, cap, "%s", h);
    return ok ? 0 : -1;
}

static int process_alive(long pid) { return kill((pid_t)pid, 0) == 0 || errno == EPERM; }

/* Takes over a stale lock: renamed aside first, so of two processes breaking it at once only one removes it,
 * and a fresh lock made meanwhile by a third is put back. */
static void break_stale(const char *lock, long pid, const char *host) {
    char aside[4300], h2[256];
    long p2;
    snprintf(aside, sizeof aside, "%s.stale.%ld", lock, (long)getpid());
    if (rename(lock, aside) != 0) return;
    if (read_holder(aside, &p2, h2, sizeof h2) == 0 && p2 == pid && !strcmp(h2, host)) {
        LOG_WARN("%s: removed the stale lock of PID %ld on %s (that process is gone)", lock, pid, host);
        unlink(aside);
    } else {
        if (link(aside, lock) != 0 && errno != EEXIST) rename(aside, lock);
        unlink(aside);
    }
}

void musae_store_lock(const char *store) {
    char lock[4200], host[256] = "", self[256] = "";
    lock_name(store, lock, sizeof lock);
    gethostname(self, sizeof self - 1);
    pthread_mutex_lock(&g_lock_mu);
    for (int i = 0; i < MAX_HELD; i++)
        if (g_held[i].refs > 0 && g_held[i].pid == getpid() && !strcmp(g_held[i].lock, lock)) {
            g_held[i].refs++;
            pthread_mutex_unlock(&g_lock_mu);
            return;
        }
    if (!g_registered) atexit(cleanup_at_exit), at_quick_exit(cleanup_at_exit), g_registered = 1;
    for (int attempt = 0;; attempt++) {
        int fd = open(lock, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd >= 0) {
            char line[512];
            int n = snprintf(line, sizeof line, "%ld %s\n", (long)getpid(), self[0] ? self : "unknown-host");
            int ok = write(fd, line, (size_t)n) == n;
            close(fd);
            if (!ok) {
                unlink(lock);
                pthread_mutex_unlock(&g_lock_mu);
                musae_fail("%s: cannot write its lock file %s: %s", store, lock, strerror(errno));
            }
            int slot = 0;
            while (slot < MAX_HELD && g_held[slot].refs > 0 && g_held[slot].pid == getpid()) slot++;
            MUSAE_ASSERT(slot < MAX_HELD, "more than %d stores open for writing", MAX_HELD);
            snprintf(g_held[slot].lock, sizeof g_held[slot].lock, "%s", lock);
            g_held[slot].refs = 1;
            g_held[slot].pid = getpid();
            pthread_mutex_unlock(&g_lock_mu);
            return;
        }
        if (errno != EEXIST) {
            const int e = errno;
            pthread_mutex_unlock(&g_lock_mu);
            musae_fail("%s: cannot create its lock file %s: %s", store, lock, strerror(e));
        }
        long pid = 0;
        if (read_holder(lock, &pid, host, sizeof host) != 0) {
            if (attempt < 50) { /* being written by its maker right now */
                usleep(20000);
                continue;
            }
            pthread_mutex_unlock(&g_lock_mu);
            musae_fail("%s is in use: its lock file %s holds no PID and host (remove it if no musae writes the store)",
                       store, lock);
        }
        /* our own PID in a lock this process does not hold: a writer that had our PID before (containers
         * often start every run as the same PID) */
        if (!strcmp(host, self) && (pid == (long)getpid() || !process_alive(pid)) && attempt < 50) {
            break_stale(lock, pid, host);
            continue;
        }
        pthread_mutex_unlock(&g_lock_mu);
        musae_fail("%s is in use by PID %ld on %s (another musae writes it; if no such process runs there, remove %s)",
                   store, pid, host, lock);
    }
}

void musae_store_unlock(const char *store) {
    char lock[4200];
    lock_name(store, lock, sizeof lock);
    pthread_mutex_lock(&g_lock_mu);
    for (int i = 0; i < MAX_HELD; i++)
        if (g_held[i].refs > 0 && g_held[i].pid == getpid() && !strcmp(g_held[i].lock, lock) && --g_held[i].refs == 0)
            unlink(lock);
    pthread_mutex_unlock(&g_lock_mu);
}

int musae_store_lock_holder(const char *store, long *pid, char *host, size_t cap) {
    char lock[4200];
    lock_name(store, lock, sizeof lock);
    return read_holder(lock, pid, host, cap);
}

void musae_store_remove_at_exit(const char *path) {
    pthread_mutex_lock(&g_lock_mu);
    snprintf(g_creating, sizeof g_creating, "%s", path ? path : "");
    g_creating_pid = getpid();
    if (path && !g_registered) atexit(cleanup_at_exit), at_quick_exit(cleanup_at_exit), g_registered = 1;
    pthread_mutex_unlock(&g_lock_mu);
}
