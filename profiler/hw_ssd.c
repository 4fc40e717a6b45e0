/* SSD part of the hardware profile: reads of a scratch file through io_uring
 * with O_DIRECT (no page cache, as the expert streamer reads), 1 MiB blocks
 * at random aligned offsets with 1..128 reads in flight, then 4 KiB random
 * reads for IOPS. The file is written once with random data and fsync'ed,
 * and removed on every way out, including Ctrl-C and SIGTERM. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <liburing.h>

#include "hw_internal.h"

#define BLOCK ((uint32_t)1 << 20)
#define WRITE_CHUNK ((size_t)8 << 20)
#define MAX_QD 128

static const int qds[] = {1, 2, 4, 8, 16, 32, 64, 128};
static const int iops_qds[] = {1, 32, 128};

/* ---- the scratch file survives nothing ------------------------------------ */

static char scratch_path[4096];
static volatile sig_atomic_t scratch_live;
static const int scratch_signals[] = {SIGINT, SIGTERM, SIGHUP};
static struct sigaction scratch_old[3];

static void on_signal(int sig) {
    if (scratch_live) unlink(scratch_path); /* async-signal-safe */
    for (int i = 0; i < 3; i++) {
        if (scratch_signals[i] == sig) sigaction(sig, &scratch_old[i], NULL);
    }
    raise(sig); /* delivered to the old disposition once this handler returns */
}

static void guard_scratch(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    scratch_live = 1;
    for (int i = 0; i < 3; i++) {
        sigaction(scratch_signals[i], NULL, &scratch_old[i]);
        /* an ignored signal (background jobs ignore SIGINT) stays ignored */
        if (scratch_old[i].sa_handler != SIG_IGN) sigaction(scratch_signals[i], &sa, NULL);
    }
}

static void remove_scratch(void) {
    for (int i = 0; i < 3; i++) sigaction(scratch_signals[i], &scratch_old[i], NULL);
    if (scratch_live) unlink(scratch_path);
    scratch_live = 0;
}

clv_status clv_hw_ssd_check(const char *dir, uint64_t bytes) {
    struct statvfs vs;
    if (statvfs(dir, &vs) == 0) {
        uint64_t avail = (uint64_t)vs.f_bavail * (uint64_t)vs.f_frsize;
        if (avail < bytes + ((uint64_t)64 << 20)) {
            return clv_fail(CLV_ERR_IO,
                            "scratch directory %s: %llu MiB free, the %llu MiB scratch file needs more "
                            "(choose another --dir or a smaller --ssd-size)",
                            dir, (unsigned long long)(avail >> 20), (unsigned long long)(bytes >> 20));
        }
    }
    return CLV_OK;
}

static uint64_t xorshift(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static clv_status write_scratch(int fd, uint64_t bytes, uint8_t *buf, double *gbps) {
    uint64_t rng = 0x853c49e6748fea9bull;
    for (size_t i = 0; i < WRITE_CHUNK; i += 8) {
        uint64_t r = xorshift(&rng);
        memcpy(buf + i, &r, 8);
    }
    double t0 = clv_hw_now();
    for (uint64_t off = 0; off < bytes; off += WRITE_CHUNK) {
        size_t n = bytes - off < WRITE_CHUNK ? (size_t)(bytes - off) : WRITE_CHUNK;
        /* a distinct head in every 4 KiB so that no layer can deduplicate it */
        for (size_t p = 0; p < n; p += 4096) memcpy(buf + p, &(uint64_t){off + p}, 8);
        for (size_t done = 0; done < n;) {
            ssize_t w = pwrite(fd, buf + done, n - done, (off_t)(off + done));
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) return clv_fail(CLV_ERR_IO, "%s: write: %s", scratch_path, w < 0 ? strerror(errno) : "no progress");
            done += (size_t)w;
        }
    }
    if (fsync(fd) != 0) return clv_fail(CLV_ERR_IO, "%s: fsync: %s", scratch_path, strerror(errno));
    *gbps = (double)bytes / (clv_hw_now() - t0) / 1e9;
    return CLV_OK;
}

/* Reads `block`-byte pieces at random aligned offsets with qd in flight for
 * about `seconds`; *rate is bytes/s. Returns 0, or the negative errno of a
 * failed read (-EINVAL: O_DIRECT refused at read time). */
static int run_reads(struct io_uring *ring, int fd, uint8_t *bufs, uint32_t block, uint64_t file_bytes, int qd,
                     double seconds, double *rate) {
    uint64_t rng = 0x9e3779b97f4a7c15ull ^ ((uint64_t)qd * block);
    uint64_t n_blocks = file_bytes / block;
    int free_slots[MAX_QD], n_free = 0, inflight = 0, err = 0;
    for (int i = qd - 1; i >= 0; i--) free_slots[n_free++] = i; /* a buffer per read in flight */
    uint64_t done = 0;
    double t0 = clv_hw_now(), deadline = t0 + seconds;
    bool stop = false;
    for (;;) {
        while (!stop && !err && n_free > 0) {
            struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
            if (!sqe) break;
            int slot = free_slots[--n_free];
            io_uring_prep_read(sqe, fd, bufs + (size_t)slot * block, block, (xorshift(&rng) % n_blocks) * block);
            io_uring_sqe_set_data(sqe, (void *)(uintptr_t)slot);
            inflight++;
        }
        int ret = io_uring_submit(ring);
        if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) return ret;
        if (inflight == 0) break;
        struct io_uring_cqe *cqe;
        ret = io_uring_wait_cqe(ring, &cqe);
        if (ret == -EINTR) continue;
        if (ret < 0) return ret;
        unsigned head, n_seen = 0;
        io_uring_for_each_cqe(ring, head, cqe) {
            n_seen++;
            free_slots[n_free++] = (int)(uintptr_t)io_uring_cqe_get_data(cqe);
            if (cqe->res == (int)block) done++;
            else if (!err) err = cqe->res < 0 ? cqe->res : -EIO; /* a short read is an error too */
        }
        io_uring_cq_advance(ring, n_seen);
        inflight -= (int)n_seen;
        if (clv_hw_now() >= deadline) stop = true;
        if ((stop || err) && inflight == 0) break;
    }
    if (err) return err;
    *rate = (double)done * block / (clv_hw_now() - t0);
    return 0;
}

clv_status clv_hw_measure_ssd(const clv_hw_params *prm, const char *dir, uint64_t bytes,
                              clv_hw_progress_fn progress, void *user, clv_hw_profile *hw) {
    struct io_uring ring;
    int ret = io_uring_queue_init(MAX_QD * 2, &ring, 0);
    if (ret < 0) {
        return clv_fail(CLV_ERR_UNSUPPORTED, "io_uring unavailable here (%s): SSD figures skipped",
                        strerror(-ret));
    }
    clv_status st = CLV_OK;
    int fd = -1, rfd = -1;
    uint8_t *bufs = NULL, *wbuf = NULL;
    snprintf(scratch_path, sizeof scratch_path, "%s/.cleave-hw-scratch-XXXXXX", dir);
    fd = mkstemp(scratch_path);
    if (fd < 0) {
        io_uring_queue_exit(&ring);
        return clv_fail(CLV_ERR_IO, "cannot create a scratch file in %s: %s", dir, strerror(errno));
    }
    guard_scratch();
    if (posix_memalign((void **)&bufs, 4096, (size_t)MAX_QD * BLOCK) ||
        posix_memalign((void **)&wbuf, 4096, WRITE_CHUNK)) {
        st = clv_fail(CLV_ERR_NOMEM, "SSD benchmark: cannot allocate %u MiB of read buffers",
                      (unsigned)(MAX_QD * (BLOCK >> 20)));
        goto done;
    }
    memset(bufs, 0, (size_t)MAX_QD * BLOCK); /* fault the pages in before timing */

    clv_hw_report(progress, user, "ssd: writing a %llu MiB scratch file in %s", (unsigned long long)(bytes >> 20),
                  dir);
    double wgbps = 0;
    st = write_scratch(fd, bytes, wbuf, &wgbps);
    if (st) goto done;
    clv_hw_report(progress, user, "ssd: written at %.2f GB/s (buffered, with fsync)", wgbps);

    snprintf(hw->ssd_dir, sizeof hw->ssd_dir, "%s", dir);
    hw->ssd_file_bytes = bytes;
    hw->ssd_block_bytes = BLOCK;
    bool direct = true;
    double secs = prm->quick ? 0.03 : 1.0, iops_secs = prm->quick ? 0.02 : 0.5;

    for (;;) {
        rfd = open(scratch_path, O_RDONLY | O_CLOEXEC | (direct ? O_DIRECT : 0));
        if (rfd < 0 && direct && errno == EINVAL) { /* tmpfs and some FUSE file systems */
            snprintf(hw->ssd_note, sizeof hw->ssd_note,
                     "O_DIRECT refused by the file system of %s (%s): buffered reads, figures include the "
                     "page cache",
                     dir, strerror(errno));
            direct = false;
            continue;
        }
        if (rfd < 0) {
            st = clv_fail(CLV_ERR_IO, "%s: open for reading: %s", scratch_path, strerror(errno));
            goto done;
        }
        hw->n_qd = 0;
        for (int k = 0; k < (int)(sizeof qds / sizeof qds[0]); k++) {
            /* buffered: push this file's pages out so the device is read */
            if (!direct) posix_fadvise(rfd, 0, 0, POSIX_FADV_DONTNEED);
            double rate = 0;
            ret = run_reads(&ring, rfd, bufs, BLOCK, bytes, qds[k], secs, &rate);
            if (ret == -EINVAL && direct) break; /* refused at read time: again, buffered */
            if (ret < 0) {
                st = clv_fail(CLV_ERR_IO, "%s: io_uring read: %s", scratch_path, strerror(-ret));
                goto done;
            }
            hw->qd[k] = qds[k];
            hw->ssd_gbps[k] = (float)(rate / 1e9);
            hw->n_qd = k + 1;
            clv_hw_report(progress, user, "ssd: 1 MiB random reads, QD %3d: %.2f GB/s%s", qds[k], rate / 1e9,
                          direct ? "" : " (buffered)");
        }
        if (hw->n_qd == (int)(sizeof qds / sizeof qds[0])) break;
        snprintf(hw->ssd_note, sizeof hw->ssd_note,
                 "O_DIRECT reads refused by the file system of %s: buffered reads, figures include the page cache",
                 dir);
        close(rfd);
        rfd = -1;
        direct = false;
    }
    hw->ssd_direct = direct;

    hw->n_iops_qd = 0;
    for (int k = 0; k < (int)(sizeof iops_qds / sizeof iops_qds[0]); k++) {
        if (!direct) posix_fadvise(rfd, 0, 0, POSIX_FADV_DONTNEED);
        double rate = 0;
        ret = run_reads(&ring, rfd, bufs, 4096, bytes, iops_qds[k], iops_secs, &rate);
        if (ret < 0) {
            st = clv_fail(CLV_ERR_IO, "%s: io_uring read: %s", scratch_path, strerror(-ret));
            goto done;
        }
        hw->iops_qd[k] = iops_qds[k];
        hw->ssd_iops[k] = (float)(rate / 4096);
        hw->n_iops_qd = k + 1;
        clv_hw_report(progress, user, "ssd: 4 KiB random reads, QD %3d: %.1fk IOPS", iops_qds[k], rate / 4096 / 1e3);
    }

done:
    if (st) hw->n_qd = hw->n_iops_qd = 0; /* no half SSD section */
    if (rfd >= 0) close(rfd);
    if (fd >= 0) close(fd);
    remove_scratch();
    io_uring_queue_exit(&ring);
    free(bufs);
    free(wbuf);
    return st;
}
