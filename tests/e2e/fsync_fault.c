/* tests/e2e/fsync_fault.c - LD_PRELOAD shim: make fsync() (and syncfs()) fail under one directory.
 *
 * Built by tests/e2e/test_power_loss.py with gcc into a temporary directory; never part of
 * the product. Power-loss safety means "nothing is acknowledged that was not fsynced", and the
 * only way to see that from outside is to make fsync fail under the real binary.
 *
 *   FSYNC_FAULT_PREFIX  directory (absolute, as the process sees it) whose files are affected
 *   FSYNC_FAULT_FLAG    a file; while it exists and holds "MODE ERRNO", matching fsync() calls
 *                       fail with ERRNO (e.g. "file 5" = EIO): MODE is "file" (regular files),
 *                       "dir" (directories) or "all". Absent file: fsync() works normally.
 * syncfs(fd) with fd under the directory counts as "file": it is what makes the queue files'
 * content durable with spool.sync = "filesystem".
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* as_file: 1 = treat the call as syncing a regular file (syncfs); 0 = look at the fd. */
static int injected_errno(int fd, int as_file) {
    const char *prefix = getenv("FSYNC_FAULT_PREFIX");
    const char *flag = getenv("FSYNC_FAULT_FLAG");
    if (!prefix || !flag) return 0;
    FILE *f = fopen(flag, "re");
    if (!f) return 0;
    char mode[16] = "";
    int err = 0;
    int n = fscanf(f, "%15s %d", mode, &err);
    fclose(f);
    if (n != 2 || err <= 0) return 0;

    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t len = readlink(link, path, sizeof path - 1);
    if (len < 0) return 0;
    path[len] = '\0';
    size_t plen = strlen(prefix);
    if (strncmp(path, prefix, plen) != 0 || (path[plen] != '/' && path[plen] != '\0')) return 0;

    struct stat st;
    if (fstat(fd, &st) != 0) return 0;
    int is_dir = as_file ? 0 : S_ISDIR(st.st_mode);
    if (strcmp(mode, "all") == 0 || (strcmp(mode, "dir") == 0 && is_dir) ||
        (strcmp(mode, "file") == 0 && !is_dir))
        return err;
    return 0;
}

/* The injected error, or the real call (looked up each time: a test shim, not a hot path). */
static int faulty_sync(int fd, const char *name, int as_file) {
    int err = injected_errno(fd, as_file);
    if (err) {
        errno = err;
        return -1;
    }
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, name);
    return real(fd);
}

int fsync(int fd) { return faulty_sync(fd, "fsync", 0); }

int fdatasync(int fd) { return faulty_sync(fd, "fdatasync", 0); }

int syncfs(int fd) { return faulty_sync(fd, "syncfs", 1); }
