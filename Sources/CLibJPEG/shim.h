#ifndef SEGKIT_CLIBJPEG_SHIM_H
#define SEGKIT_CLIBJPEG_SHIM_H
#include <stdio.h>
#include <jpeglib.h>
#endif
