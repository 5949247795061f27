#ifndef SEGKIT_COPENBLAS_SHIM_H
#define SEGKIT_COPENBLAS_SHIM_H

#include <cblas.h>
#include <cpuid.h>
#include <stdint.h>

/* OpenBLAS's dynamic-architecture entry points. They are exported by the
   Debian build (DYNAMIC_ARCH) but not declared in cblas.h. Re-running the
   selection after setting OPENBLAS_CORETYPE is how SegKit gets the fast
   kernels on CPUs this OpenBLAS release does not recognise. */
void gotoblas_dynamic_init(void);
void gotoblas_dynamic_quit(void);

/* What the CPU and the operating system together support: an instruction set
   counts only if cpuid reports it AND the OS saves the matching register
   state (XCR0), otherwise using it would fault. */
typedef struct {
    int avx2;
    int fma;
    int avx512;   /* F + DQ + CD + BW + VL: what OpenBLAS's SkylakeX kernels need */
} segkit_cpu_features;

static inline uint64_t segkit_xgetbv0(void) {
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}

static inline segkit_cpu_features segkit_cpu_detect(void) {
    segkit_cpu_features f = {0, 0, 0};
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return f;
    int osxsave = (ecx >> 27) & 1;
    int avx = (ecx >> 28) & 1;
    int fma = (ecx >> 12) & 1;
    if (!osxsave || !avx) return f;
    uint64_t xcr0 = segkit_xgetbv0();
    int ymm_state = (xcr0 & 0x6) == 0x6;            /* SSE + AVX state */
    int zmm_state = (xcr0 & 0xE6) == 0xE6;          /* + opmask, ZMM_Hi256, Hi16_ZMM */
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return f;
    int avx2 = (ebx >> 5) & 1;
    int avx512f = (ebx >> 16) & 1, avx512dq = (ebx >> 17) & 1, avx512cd = (ebx >> 28) & 1;
    int avx512bw = (ebx >> 30) & 1, avx512vl = (ebx >> 31) & 1;
    f.avx2 = ymm_state && avx2;
    f.fma = ymm_state && fma;
    f.avx512 = zmm_state && avx512f && avx512dq && avx512cd && avx512bw && avx512vl;
    return f;
}

#endif
