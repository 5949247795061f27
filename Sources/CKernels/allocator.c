#include "segkit_kernels.h"
#include <malloc.h>
#include <limits.h>

int segkit_keep_freed_blocks(void) {
    // glibc caps M_MMAP_THRESHOLD at 32 MiB on 64-bit systems (HEAP_MAX / 2).
    int threshold = mallopt(M_MMAP_THRESHOLD, 32 << 20);
    int trim = mallopt(M_TRIM_THRESHOLD, INT_MAX);
    return threshold == 1 && trim == 1;
}
