/* Byte counts for people: "17.28 GiB", "34.23 MiB", "146.5 KiB", "512 B".
 * One format for every message and table that shows sizes. */
#ifndef CLV_HUMAN_SIZE_H
#define CLV_HUMAN_SIZE_H

#include <stddef.h>
#include <stdint.h>

#define CLV_HUMAN_SIZE_MAX 32 /* bytes a formatted size needs, with its NUL */

/* Formats bytes into buf (cap bytes, CLV_HUMAN_SIZE_MAX is enough) and
 * returns buf. */
char *clv_human_size(uint64_t bytes, char *buf, size_t cap);

#endif
