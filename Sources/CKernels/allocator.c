#include "segkit_kernels.h"
#include <malloc.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>

int segkit_keep_freed_blocks(void) {
    // No block is served by its own mapping (a threshold alone cannot do it:
    // glibc caps M_MMAP_THRESHOLD at 32 MiB, below a U-Net's largest
    // activations), and the heap is never trimmed.
    int mmaps = mallopt(M_MMAP_MAX, 0);
    int trim = mallopt(M_TRIM_THRESHOLD, INT_MAX);
    return mmaps == 1 && trim == 1;
}

float *segkit_allocate_store(size_t floats) {
    const size_t huge = (size_t)2 << 20;
    size_t bytes = (floats * sizeof(float) + huge - 1) / huge * huge;
    void *p = NULL;
    if (bytes == 0 || posix_memalign(&p, huge, bytes) != 0) return NULL;
    // Advice only: without transparent huge pages the store still works.
    (void)madvise(p, bytes, MADV_HUGEPAGE);
    return p;
}

void segkit_free_store(float *store) { free(store); }

/* A kernel's scratch allocation failed: the kernel returns without its work,
   and the engine turns the flag into an "out of memory" error after the op. */
static _Atomic int allocation_failed;

void segkit_note_allocation_failure(void) { atomic_store(&allocation_failed, 1); }

int segkit_take_allocation_failure(void) { return atomic_exchange(&allocation_failed, 0); }
