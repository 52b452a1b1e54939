/* tests/e2e/open_gate.c - LD_PRELOAD shim: hold the open(2) of one file until the test lets it go.
 *
 * Built by the e2e tests with gcc into a temporary directory (conftest.build_shim); never part
 * of the product. It holds a server thread in the middle of reading the spool at a moment the
 * test chooses (the spool only opens regular files, so a FIFO cannot do that).
 *
 *   OPEN_GATE_SUFFIX  an open()/openat() of a path ending in this string first creates the file
 *                     OPEN_GATE_DIR/reached, then waits (at most 30 s) until OPEN_GATE_DIR/go
 *                     exists, then opens as usual. Every other open passes straight through.
 *   OPEN_GATE_DIR     the directory of those two marker files.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void gate(const char *path) {
    const char *suffix = getenv("OPEN_GATE_SUFFIX");
    const char *dir = getenv("OPEN_GATE_DIR");
    if (!suffix || !dir || !path) return;
    size_t n = strlen(path), s = strlen(suffix);
    if (n < s || strcmp(path + n - s, suffix) != 0) return;
    char marker[4096];
    snprintf(marker, sizeof marker, "%s/reached", dir);
    int (*real_open)(const char *, int, ...) = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open");
    int fd = real_open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) close(fd);
    snprintf(marker, sizeof marker, "%s/go", dir);
    struct stat st;
    for (int i = 0; i < 3000 && stat(marker, &st) != 0; ++i) usleep(10000);
}

static mode_t mode_of(int flags, va_list ap) {
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

int open(const char *path, int flags, ...) {
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_of(flags, ap);
    va_end(ap);
    gate(path);
    int (*real)(const char *, int, ...) = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open");
    return real(path, flags, mode);
}

int open64(const char *path, int flags, ...) {
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_of(flags, ap);
    va_end(ap);
    gate(path);
    int (*real)(const char *, int, ...) = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open64");
    return real(path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...) {
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_of(flags, ap);
    va_end(ap);
    gate(path);
    int (*real)(int, const char *, int, ...) = (int (*)(int, const char *, int, ...))dlsym(RTLD_NEXT, "openat");
    return real(dirfd, path, flags, mode);
}
