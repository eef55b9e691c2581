// Asynchronous copies from global to shared memory (cp.async, sm_80 and later): no registers,
// every copy of a block in flight at once. Start copies, `commit_copies()` closes the group,
// `wait_copies()` waits for this thread's; a __syncthreads() after it makes every thread's
// visible. The block is 256 threads.
#pragma once
#include <stdint.h>

// Starts copying `count` float4 from `from` to `to` (both 16-byte aligned).
__device__ __forceinline__ void stage(float* to, const float* from, int count, int thread) {
    for (int i = thread; i < count; i += 256) {
        const unsigned dst = (unsigned)__cvta_generic_to_shared(to + 4 * i);
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(dst), "l"(from + 4 * i));
    }
}

// Starts copying a `rows` x `cols` tile of floats (cols % 4 == 0) whose rows lie `from_stride`
// floats apart into shared rows `to_stride` floats apart (both strides % 4 == 0, both
// addresses 16-byte aligned).
__device__ __forceinline__ void stage_tile(float* to, int to_stride, const float* from,
                                           int64_t from_stride, int rows, int cols, int thread) {
    const int per_row = cols / 4;
    for (int i = thread; i < rows * per_row; i += 256) {
        const int r = i / per_row, c = 4 * (i % per_row);
        const unsigned dst = (unsigned)__cvta_generic_to_shared(to + r * to_stride + c);
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(dst),
                     "l"(from + r * from_stride + c));
    }
}

__device__ __forceinline__ void commit_copies() { asm volatile("cp.async.commit_group;\n" ::); }

// Waits for this thread's copies; a __syncthreads() after it makes every thread's visible.
__device__ __forceinline__ void wait_copies() { asm volatile("cp.async.wait_group 0;\n" ::: "memory"); }
