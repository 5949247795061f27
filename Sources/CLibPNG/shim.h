#ifndef SEGKIT_CLIBPNG_SHIM_H
#define SEGKIT_CLIBPNG_SHIM_H
#include <png.h>
#endif
