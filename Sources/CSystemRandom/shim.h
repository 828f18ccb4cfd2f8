#ifndef TICKETLOG_CSYSTEMRANDOM_SHIM_H
#define TICKETLOG_CSYSTEMRANDOM_SHIM_H
// getrandom(2) (glibc >= 2.25, musl), which Swift's Glibc module leaves out: the engine draws
// nonces from the kernel's CSPRNG a page at a time (Sources/Ticketlog/Support/SystemRandom.swift).
// Nothing on other platforms (Darwin uses arc4random_buf).
#if defined(__linux__)
#include <sys/random.h>
#endif
#endif
