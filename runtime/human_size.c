#include "human_size.h"

#include <stdio.h>

char *clv_human_size(uint64_t bytes, char *buf, size_t cap) {
    double b = (double)bytes;
    if (bytes >= (1ull << 30)) snprintf(buf, cap, "%.2f GiB", b / (double)(1ull << 30));
    else if (bytes >= (1ull << 20)) snprintf(buf, cap, "%.2f MiB", b / (double)(1ull << 20));
    else if (bytes >= 1024) snprintf(buf, cap, "%.1f KiB", b / 1024.0);
    else snprintf(buf, cap, "%llu B", (unsigned long long)bytes);
    return buf;
}
