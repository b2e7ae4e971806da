/*
 * idx.c -- the IDX format of MNIST and Fashion-MNIST, plain or gzip'd.
 *
 *   bytes 0-1: 0, byte 2: type (0x08 unsigned byte, 0x09 signed byte,
 *   0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64), byte 3: number of
 *   dimensions d; then d big-endian uint32 sizes; then the values,
 *   big-endian, row-major.
 * zlib's gzread reads both compressed and plain files.  Values come back as
 * float32.
 */
#include "../internal.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static int read_exact(gzFile f, void *buf, unsigned n) { return gzread(f, buf, n) == (int)n; }

sl_tensor *sl_idx_read(const char *path)
{
    gzFile f = gzopen(path, "rb");
    if (!f) {
        sl_errorf_code(SL_EIO, "readIdx: cannot open '%s'", path);
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
    t = sl_tensor_new(nd, shape, SL_CPU);
    if (!t) goto done;
    size_t chunk = 1 << 20;
    unsigned char *buf = malloc(chunk * (size_t)size);
    if (!buf) {
        sl_tensor_free(t);
        t = NULL;
        sl_errorf_code(SL_ENOMEM, "readIdx: out of memory");
        goto done;
    }
    for (int64_t done_n = 0; done_n < t->numel;) {
        int64_t m = t->numel - done_n < (int64_t)chunk ? t->numel - done_n : (int64_t)chunk;
        if (!read_exact(f, buf, (unsigned)(m * size))) {
            sl_errorf_code(SL_EFORMAT, "readIdx: '%s' is truncated: data ends before byte %lld", path,
                           (long long)(4 + 4 * nd + (done_n + m) * size));
            free(buf);
            sl_tensor_free(t);
            t = NULL;
            goto done;
        }
        float *o = t->data + done_n;
        for (int64_t i = 0; i < m; i++) {
            const unsigned char *b = buf + i * size;
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
        done_n += m;
    }
    free(buf);
done:
    gzclose(f);
    return t;
}
