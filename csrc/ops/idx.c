/*
 * idx.c -- the IDX format of MNIST and Fashion-MNIST, plain or gzip'd.
 *
 *   bytes 0-1: 0, byte 2: type (0x08 unsigned byte, 0x09 signed byte,
 *   0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64), byte 3: number of
 *   dimensions d; then d big-endian uint32 sizes; then the values,
 *   big-endian, row-major.
 * zlib's gzread reads both compressed and plain files.  Values come back as
 * float32.  The header's sizes are trusted only as far as the data goes: the
 * values are read before the tensor is allocated.  The file must end with
 * them: bytes past them mean the header does not describe the file, and
 * reading on to the end is what makes zlib check a gzip stream's CRC and
 * length (a stream cut inside its 8-byte trailer still yields every value).
 */
#include "../internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

static int read_exact(gzFile f, void *buf, unsigned n) { return gzread(f, buf, n) == (int)n; }

sl_tensor *sl_idx_read(const char *path)
{
    struct stat st;
    if (!path) {
        sl_errorf("readIdx: expected a file path, got NULL");
        return NULL;
    }
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        sl_errorf_code(SL_EIO, "readIdx: '%s' is a directory, not a file", path);
        return NULL;
    }
    gzFile f = gzopen(path, "rb");
    if (!f) {
        sl_errorf_code(SL_EIO, "readIdx: cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    unsigned char head[4];
    sl_tensor *t = NULL;
    if (!read_exact(f, head, 4)) {
        sl_errorf_code(SL_EFORMAT, "readIdx: '%s' is truncated at byte 0 (no IDX header)", path);
        goto done;
    }
    int type = head[2], nd = head[3], size;
    switch (type) {
    case 0x08: case 0x09: size = 1; break;
    case 0x0B: size = 2; break;
    case 0x0C: case 0x0D: size = 4; break;
    case 0x0E: size = 8; break;
    default: size = 0;
    }
    if (head[0] != 0 || head[1] != 0 || !size || nd < 1 || nd > SL_MAX_DIMS) {
        sl_errorf_code(SL_EFORMAT, "readIdx: '%s' is not an IDX file (magic %02x %02x %02x %02x at byte 0)", path,
                       head[0], head[1], head[2], head[3]);
        goto done;
    }
    int32_t shape[SL_MAX_DIMS];
    for (int d = 0; d < nd; d++) {
        unsigned char b[4];
        if (!read_exact(f, b, 4)) {
            sl_errorf_code(SL_EFORMAT, "readIdx: '%s' is truncated in its header at byte %d", path, 4 + 4 * d);
            goto done;
        }
        uint32_t s = ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
        if (s > 0x7fffffffu) {
            sl_errorf_code(SL_EFORMAT, "readIdx: '%s' declares size %u at byte %d", path, s, 4 + 4 * d);
            goto done;
        }
        shape[d] = (int32_t)s;
    }
    /* the declared size is only believed as far as the data arrives: the
       raw values are read into a buffer that grows with them (a 12-byte
       header or a small gzip stream can declare gigabytes) */
    int64_t numel = 1;
    for (int d = 0; d < nd; d++) {
        if (shape[d] && numel > INT64_MAX / 8 / shape[d]) {
            sl_errorf_code(SL_EFORMAT, "readIdx: '%s' declares more values than can be held", path);
            goto done;
        }
        numel *= shape[d];
    }
    size_t need = (size_t)numel * (size_t)size, got = 0, cap = 0;
    unsigned char *raw = NULL;
    while (got < need) {
        if (got == cap) {
            size_t grow = cap < ((size_t)1 << 20) ? ((size_t)1 << 20) : cap;
            cap = need - cap < grow ? need : cap + grow;
            unsigned char *r = realloc(raw, cap);
            if (!r) {
                free(raw);
                sl_errorf_code(SL_ENOMEM, "readIdx: out of memory reading '%s' (%zu bytes)", path, cap);
                goto done;
            }
            raw = r;
        }
        size_t want = cap - got < ((size_t)1 << 30) ? cap - got : ((size_t)1 << 30);
        int r = gzread(f, raw + got, (unsigned)want);
        if (r <= 0) break;
        got += (size_t)r;
    }
    if (got < need) {
        free(raw);
        sl_errorf_code(SL_EFORMAT, "readIdx: '%s' is truncated: data ends at byte %zu, its header declares %zu", path,
                       (size_t)(4 + 4 * nd) + got, (size_t)(4 + 4 * nd) + need);
        goto done;
    }
    unsigned char extra;
    int tail = gzread(f, &extra, 1), zerr = Z_OK;
    /* a stream cut short reads as its end; zlib notes it (Z_BUF_ERROR) */
    const char *msg = gzerror(f, &zerr);
    if (tail != 0 || zerr != Z_OK) {
        free(raw);
        if (tail > 0)
            sl_errorf_code(SL_EFORMAT, "readIdx: '%s' holds more data than its header declares (%zu bytes)", path,
                           (size_t)(4 + 4 * nd) + need);
        else
            sl_errorf_code(SL_EFORMAT, "readIdx: '%s' is damaged after its %zu bytes of data: %s", path,
                           (size_t)(4 + 4 * nd) + need, msg && *msg ? msg : "read error");
        goto done;
    }
    t = sl_tensor_new(nd, shape, SL_CPU);
    if (!t) {
        free(raw);
        goto done;
    }
    float *o = t->data;
    for (int64_t i = 0; i < numel; i++) {
        const unsigned char *b = raw + i * size;
        switch (type) {
        case 0x08: o[i] = b[0]; break;
        case 0x09: o[i] = (signed char)b[0]; break;
        case 0x0B: o[i] = (int16_t)((b[0] << 8) | b[1]); break;
        case 0x0C: o[i] = (float)(int32_t)(((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3]); break;
        case 0x0D: {
            uint32_t u = ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
            float v;
            memcpy(&v, &u, 4);
            o[i] = v;
            break;
        }
        default: {
            uint64_t u = 0;
            for (int k = 0; k < 8; k++) u = (u << 8) | b[k];
            double v;
            memcpy(&v, &u, 8);
            o[i] = (float)v;
        }
        }
    }
    free(raw);
done:
    gzclose(f);
    return t;
}
