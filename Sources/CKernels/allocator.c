#include "segkit_kernels.h"
#include <malloc.h>
#include <limits.h>

int segkit_keep_freed_blocks(void) {
    // No block is served by its own mapping (a threshold alone cannot do it:
    // glibc caps M_MMAP_THRESHOLD at 32 MiB, below a U-Net's largest
    // activations), and the heap is never trimmed.
    int mmaps = mallopt(M_MMAP_MAX, 0);
    int trim = mallopt(M_TRIM_THRESHOLD, INT_MAX);
    return mmaps == 1 && trim == 1;
}
