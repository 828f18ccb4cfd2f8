#ifndef TICKETLOG_CMALLOC_SHIM_H
#define TICKETLOG_CMALLOC_SHIM_H
// glibc's malloc tuning and statistics (mallopt, mallinfo2), which Swift's Glibc module leaves
// out. Nothing on other platforms.
#if defined(__linux__)
#include <features.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#endif
#endif
