// kernel_trace: every GPU kernel, copy and memset a program runs, timed by CUPTI's activity
// API, summed by name; for machines without Nsight Systems. Preload it:
//
//   KERNEL_TRACE_OUT=trace.csv LD_PRELOAD=./libkernel_trace.so program ...
//
// With KERNEL_TRACE_SIZES=1 a kernel's name carries its launch size, `name <blocks x threads>`
// (an elementwise kernel's threads tell its tensor's size). At exit it writes KERNEL_TRACE_OUT
// (default kernel_trace.csv): one line per name with its
// count and total and longest GPU time in nanoseconds, then `#busy`, the time the GPU spent in
// at least one of them, and `#span`, the first start to the last end. Run a program twice with
// different amounts of work (e.g. 2 and 3 training steps) and subtract to get one unit of it
// (gpu/tools/kernel_trace_diff.py). Built by gpu/tools/build-kernel-trace.sh.
#include <cupti.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUFFER_BYTES (16u << 20)

typedef struct {
    char* name;
    uint64_t count, total, longest;
} Entry;

typedef struct {
    uint64_t start, end;
} Interval;

static Entry* entries;
static size_t entry_count, entry_capacity;
static Interval* intervals;
static size_t interval_count, interval_capacity;
// CUPTI hands buffers over from its own thread, and from the caller's at the final flush.
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
// KERNEL_TRACE_SIZES=1: names carry the launch size.
static int with_sizes;

static void check(CUptiResult r, const char* what) {
    if (r != CUPTI_SUCCESS) {
        const char* text = "?";
        cuptiGetResultString(r, &text);
        fprintf(stderr, "kernel_trace: %s failed: %s\n", what, text);
    }
}

// A linear search is enough: a training step has a few hundred distinct names.
static void add(const char* name, uint64_t start, uint64_t end) {
    uint64_t time = end > start ? end - start : 0;
    size_t i = 0;
    for (; i < entry_count; ++i)
        if (strcmp(entries[i].name, name) == 0) break;
    if (i == entry_count) {
        if (entry_count == entry_capacity) {
            entry_capacity = entry_capacity ? 2 * entry_capacity : 256;
            entries = realloc(entries, entry_capacity * sizeof(Entry));
        }
        entries[i].name = strdup(name);
        entries[i].count = entries[i].total = entries[i].longest = 0;
        ++entry_count;
    }
    entries[i].count += 1;
    entries[i].total += time;
    if (time > entries[i].longest) entries[i].longest = time;
    if (interval_count == interval_capacity) {
        interval_capacity = interval_capacity ? 2 * interval_capacity : 65536;
        intervals = realloc(intervals, interval_capacity * sizeof(Interval));
    }
    intervals[interval_count].start = start;
    intervals[interval_count].end = end;
    ++interval_count;
}

static void CUPTIAPI buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
    *buffer = aligned_alloc(8, BUFFER_BYTES);
    *size = BUFFER_BYTES;
    *max_records = 0;
}

static void CUPTIAPI buffer_completed(CUcontext context, uint32_t stream, uint8_t* buffer,
                                      size_t size, size_t valid) {
    (void)context, (void)stream, (void)size;
    CUpti_Activity* record = NULL;
    pthread_mutex_lock(&lock);
    while (cuptiActivityGetNextRecord(buffer, valid, &record) == CUPTI_SUCCESS) {
        switch (record->kind) {
        case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL:
        case CUPTI_ACTIVITY_KIND_KERNEL: {
            const CUpti_ActivityKernel10* k = (const CUpti_ActivityKernel10*)record;
            const char* name = k->name ? k->name : "(unnamed kernel)";
            if (with_sizes) {
                char sized[512];
                snprintf(sized, sizeof sized, "%.400s <%lld x %d>", name,
                         (long long)k->gridX * k->gridY * k->gridZ,
                         k->blockX * k->blockY * k->blockZ);
                add(sized, k->start, k->end);
            } else {
                add(name, k->start, k->end);
            }
            break;
        }
        case CUPTI_ACTIVITY_KIND_MEMCPY: {
            const CUpti_ActivityMemcpy6* m = (const CUpti_ActivityMemcpy6*)record;
            char name[64];
            snprintf(name, sizeof name, "[memcpy kind %u]", (unsigned)m->copyKind);
            add(name, m->start, m->end);
            break;
        }
        case CUPTI_ACTIVITY_KIND_MEMSET: {
            const CUpti_ActivityMemset4* m = (const CUpti_ActivityMemset4*)record;
            add("[memset]", m->start, m->end);
            break;
        }
        default:
            break;
        }
    }
    pthread_mutex_unlock(&lock);
    size_t dropped = 0;
    cuptiActivityGetNumDroppedRecords(context, stream, &dropped);
    if (dropped) fprintf(stderr, "kernel_trace: %zu records dropped\n", dropped);
    free(buffer);
}

static int by_start(const void* a, const void* b) {
    const Interval *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

static int by_total(const void* a, const void* b) {
    const Entry *x = a, *y = b;
    return x->total < y->total ? 1 : x->total > y->total ? -1 : 0;
}

__attribute__((constructor)) static void kernel_trace_start(void) {
    const char* sizes = getenv("KERNEL_TRACE_SIZES");
    with_sizes = sizes && strcmp(sizes, "1") == 0;
    check(cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed), "register");
    check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL), "enable kernels");
    check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_MEMCPY), "enable copies");
    check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_MEMSET), "enable memsets");
}

__attribute__((destructor)) static void kernel_trace_finish(void) {
    check(cuptiActivityFlushAll(1), "flush");
    pthread_mutex_lock(&lock);
    const char* path = getenv("KERNEL_TRACE_OUT");
    FILE* out = fopen(path ? path : "kernel_trace.csv", "w");
    if (!out) {
        perror("kernel_trace: cannot write its output");
        pthread_mutex_unlock(&lock);
        return;
    }
    qsort(entries, entry_count, sizeof(Entry), by_total);
    fprintf(out, "name,count,total_ns,longest_ns\n");
    for (size_t i = 0; i < entry_count; ++i) {
        // Names with commas (templates) are quoted.
        fprintf(out, "\"%s\",%llu,%llu,%llu\n", entries[i].name,
                (unsigned long long)entries[i].count, (unsigned long long)entries[i].total,
                (unsigned long long)entries[i].longest);
    }
    qsort(intervals, interval_count, sizeof(Interval), by_start);
    uint64_t busy = 0, reach = 0;
    for (size_t i = 0; i < interval_count; ++i) {
        uint64_t s = intervals[i].start > reach ? intervals[i].start : reach;
        if (intervals[i].end > s) busy += intervals[i].end - s;
        if (intervals[i].end > reach) reach = intervals[i].end;
    }
    uint64_t span = interval_count ? reach - intervals[0].start : 0;
    fprintf(out, "\"#busy\",%zu,%llu,0\n", interval_count, (unsigned long long)busy);
    fprintf(out, "\"#span\",1,%llu,0\n", (unsigned long long)span);
    fclose(out);
    pthread_mutex_unlock(&lock);
}
