#ifndef TICKETLOG_CZLIB_SHIM_H
#define TICKETLOG_CZLIB_SHIM_H
#include <zlib.h>
#endif
