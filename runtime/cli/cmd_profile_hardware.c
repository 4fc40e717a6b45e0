/* `cleave profile --hardware`: measures this machine (CPU matvec GB/s per
 * weight type and thread count, GPU and PCIe GB/s, SSD GB/s per queue depth),
 * prints the table and writes FILE.hw for the placement solver; --show prints
 * a saved one. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "commands.h"
#include "hardware.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: cleave profile --hardware [-o FILE.hw] [options]\n"
            "       cleave profile --hardware --show FILE.hw\n"
            "Measures the speeds placement plans with (about a minute) and prints them:\n"
            "  CPU  matrix-vector GB/s for every weight type at 1, 2, 4, ... threads and all cores\n"
            "  GPU  device-memory read GB/s; host->device GB/s from pinned and pageable memory,\n"
            "       a plain cudaMemcpy to compare; device->host GB/s (needs a CUDA build and device)\n"
            "  SSD  1 MiB O_DIRECT random reads through io_uring at queue depths 1..128 and\n"
            "       4 KiB random-read IOPS, on a scratch file removed afterwards (needs liburing)\n"
            "options:\n"
            "  -o, --output FILE.hw   write the profile (GGUF, general.type = hardware)\n"
            "  --dir DIR              where the SSD scratch file goes (default: .); pick a\n"
            "                         directory on the drive the models will stream from\n"
            "  --ssd-size SIZE        scratch file size, e.g. 512M, 2G (default 1G)\n"
            "  -t, --threads N        most CPU threads to measure (default: all physical cores)\n"
            "  --gpu N                CUDA device index (default 0)\n"
            "  --quick                tiny sizes and short timings (tests; not for planning)\n"
            "  --show FILE.hw         print a saved profile and exit\n"
            "  -h, --help             this text\n");
}

/* "1G", "512M", "64MiB", "1048576" -> bytes. */
static bool parse_size(const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *s == '-') return false;
    int shift = 0;
    if (*end) {
        switch (*end) {
        case 'k': case 'K': shift = 10; break;
        case 'm': case 'M': shift = 20; break;
        case 'g': case 'G': shift = 30; break;
        case 't': case 'T': shift = 40; break;
        default: return false;
        }
        end++;
        if (*end && strcasecmp(end, "iB") && strcasecmp(end, "B")) return false;
    }
    if (v > (UINT64_MAX >> shift)) return false;
    *out = (uint64_t)v << shift;
    return true;
}

static bool parse_int(const char *s, int lo, int hi, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return false;
    *out = (int)v;
    return true;
}

static void progress(void *user, const char *line) {
    (void)user;
    fprintf(stderr, "  %s\n", line);
}

int clv_cmd_profile_hardware(int argc, char **argv) {
    clv_hw_params prm = clv_hw_default_params();
    const char *output = NULL, *show = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--hardware")) continue; /* the switch that brought us here */
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--quick")) {
            prm.quick = true;
            continue;
        }
        bool takes_value = !strcmp(a, "-o") || !strcmp(a, "--output") || !strcmp(a, "--dir") ||
                           !strcmp(a, "--ssd-size") || !strcmp(a, "-t") || !strcmp(a, "--threads") ||
                           !strcmp(a, "--gpu") || !strcmp(a, "--show");
        if (!takes_value) {
            fprintf(stderr, "cleave profile --hardware: unknown option '%s' (see --help)\n", a);
            return 2;
        }
        if (!val) {
            fprintf(stderr, "cleave profile --hardware: option %s needs a value\n", a);
            return 2;
        }
        i++;
        bool ok = true;
        if (!strcmp(a, "-o") || !strcmp(a, "--output")) output = val;
        else if (!strcmp(a, "--show")) show = val;
        else if (!strcmp(a, "--dir")) prm.ssd_dir = val;
        else if (!strcmp(a, "--ssd-size")) ok = parse_size(val, &prm.ssd_bytes) && prm.ssd_bytes > 0;
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) ok = parse_int(val, 1, 1024, &prm.max_threads);
        else ok = parse_int(val, 0, 1023, &prm.gpu_device);
        if (!ok) {
            fprintf(stderr, "cleave profile --hardware: bad value '%s' for %s\n", val, a);
            return 2;
        }
    }

    clv_hw_profile *hw = NULL;
    clv_status st;
    if (show) {
        st = clv_hw_load(show, &hw);
        if (st) {
            fprintf(stderr, "cleave: %s\n", clv_last_error());
            return 1;
        }
        clv_hw_print(stdout, hw);
        free(hw);
        return 0;
    }

    if (prm.ssd_bytes && (prm.ssd_bytes < ((uint64_t)4 << 20) || prm.ssd_bytes % ((uint64_t)1 << 20))) {
        fprintf(stderr, "cleave profile --hardware: --ssd-size must be a whole number of MiB, at least 4M\n");
        return 2;
    }
    fprintf(stderr, "measuring the hardware%s...\n", prm.quick ? " (quick mode)" : "");
    st = clv_hw_measure(&prm, progress, NULL, &hw);
    if (st) {
        fprintf(stderr, "cleave: hardware profile: %s\n", clv_last_error());
        return 1;
    }
    printf("\n");
    clv_hw_print(stdout, hw);
    int rc = 0;
    if (output) {
        st = clv_hw_save(hw, output);
        if (st) {
            fprintf(stderr, "cleave: %s\n", clv_last_error());
            rc = 1;
        } else {
            printf("\nwrote %s\n", output);
        }
    } else {
        printf("\n(not saved: give -o FILE.hw to keep it)\n");
    }
    free(hw);
    return rc;
}
