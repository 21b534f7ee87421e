/* heap_sites: an LD_PRELOAD heap recorder for `make bench-heap-sites`
 * (bench/rssl_heap_sites.erl drives it): where the memory of idle
 * connections goes inside the VM, rssl's own allocations and OpenSSL's.
 *
 * Every malloc, calloc, realloc and aligned allocation of the process is
 * recorded with its call stack while the file $HEAP_SITES_DIR/on exists;
 * frees drop the record. When $HEAP_SITES_DIR/dump appears, the records
 * still live are written to $HEAP_SITES_DIR/live.txt, one a line:
 *
 *     A <bytes> <module>+0x<offset> <module>+0x<offset> ...
 *
 * innermost frame first (offsets are from each module's load address, for
 * addr2line), then a line "END <records>". Only the beam process runs the
 * watcher thread (the erl script and erlexec load the library too). The
 * stacks come from glibc's backtrace(): frames without unwind information
 * (the VM's JIT code, OpenSSL's async job fibres) end them early. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <execinfo.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);

#define DEPTH 16
/* Open addressing by address; a freed record keeps its slot as a
 * tombstone (so probe chains stay whole). Enough for a few thousand idle
 * pairs (~200 allocations each). */
#define CAP (1u << 22)
#define TOMBSTONE ((void *)1)

struct record {
    void *ptr;
    size_t size;
    int depth;
    void *stack[DEPTH];
};

static struct record *table;
static atomic_int recording;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
/* Set while this thread is inside the recorder: backtrace() and the
 * watcher's own allocations are not recorded. */
static __thread int inside;
static char dir[512];

static size_t slot_of(void *ptr)
{
    return (size_t)(((uintptr_t)ptr >> 4) * 2654435761u) & (CAP - 1);
}

static void note(void *ptr, size_t size)
{
    if (!ptr || inside || !table || !atomic_load_explicit(&recording, memory_order_relaxed))
        return;
    inside = 1;
    void *stack[DEPTH + 2];
    int depth = backtrace(stack, DEPTH + 2) - 2; /* without note() and the wrapper */
    pthread_mutex_lock(&lock);
    size_t i = slot_of(ptr);
    while (table[i].ptr && table[i].ptr != ptr && table[i].ptr != TOMBSTONE)
        i = (i + 1) & (CAP - 1);
    table[i].ptr = ptr;
    table[i].size = size;
    table[i].depth = depth > 0 ? depth : 0;
    if (depth > 0)
        memcpy(table[i].stack, stack + 2, sizeof(void *) * (size_t)depth);
    pthread_mutex_unlock(&lock);
    inside = 0;
}

static void forget(void *ptr)
{
    if (!ptr || !table)
        return;
    pthread_mutex_lock(&lock);
    for (size_t i = slot_of(ptr); table[i].ptr; i = (i + 1) & (CAP - 1))
        if (table[i].ptr == ptr) {
            table[i].ptr = TOMBSTONE;
            break;
        }
    pthread_mutex_unlock(&lock);
}

void *malloc(size_t n)
{
    void *p = __libc_malloc(n);
    note(p, n);
    return p;
}

void *calloc(size_t count, size_t n)
{
    void *p = __libc_calloc(count, n);
    note(p, count * n);
    return p;
}

void *realloc(void *old, size_t n)
{
    forget(old);
    void *p = __libc_realloc(old, n);
    note(p, n);
    return p;
}

void free(void *p)
{
    forget(p);
    __libc_free(p);
}

void *memalign(size_t align, size_t n)
{
    void *p = __libc_memalign(align, n);
    note(p, n);
    return p;
}

void *aligned_alloc(size_t align, size_t n)
{
    return memalign(align, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    void *p = memalign(align, n);
    if (!p)
        return 12; /* ENOMEM */
    *out = p;
    return 0;
}

static int exists(const char *name)
{
    char path[600];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0;
}

static void dump(void)
{
    char path[600], tmp[600];
    snprintf(path, sizeof path, "%s/live.txt", dir);
    snprintf(tmp, sizeof tmp, "%s/live.tmp", dir);
    FILE *out = fopen(tmp, "w");
    if (!out)
        return;
    size_t records = 0;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < CAP; i++) {
        struct record *r = &table[i];
        if (!r->ptr || r->ptr == TOMBSTONE)
            continue;
        records++;
        fprintf(out, "A %zu", r->size);
        for (int j = 0; j < r->depth; j++) {
            Dl_info info;
            if (dladdr(r->stack[j], &info) && info.dli_fname) {
                const char *base = strrchr(info.dli_fname, '/');
                fprintf(out, " %s+0x%lx", base ? base + 1 : info.dli_fname,
                        (unsigned long)((char *)r->stack[j] - (char *)info.dli_fbase));
            } else {
                fprintf(out, " ?+0x%lx", (unsigned long)(uintptr_t)r->stack[j]);
            }
        }
        fputc('\n', out);
    }
    pthread_mutex_unlock(&lock);
    fprintf(out, "END %zu\n", records);
    fclose(out);
    rename(tmp, path);
}

static void *watch(void *arg)
{
    (void)arg;
    inside = 1;
    for (int dumped = 0;;) {
        atomic_store(&recording, exists("on"));
        if (!dumped && exists("dump")) {
            dump();
            dumped = 1;
        }
        usleep(20000);
    }
    return NULL;
}

__attribute__((constructor)) static void start(void)
{
    inside = 1;
    const char *d = getenv("HEAP_SITES_DIR");
    char exe[256] = {0};
    if (readlink("/proc/self/exe", exe, sizeof exe - 1) > 0 && strstr(exe, "beam") && d) {
        snprintf(dir, sizeof dir, "%s", d);
        void *warm[2];
        backtrace(warm, 2); /* loads the unwinder now, not inside malloc */
        table = mmap(NULL, sizeof(struct record) * CAP, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (table == MAP_FAILED) {
            table = NULL;
        } else {
            pthread_t t;
            pthread_create(&t, NULL, watch, NULL);
        }
    }
    inside = 0;
}
