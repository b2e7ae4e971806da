/*
 * spikeio.c -- binary spike files, NumPy event arrays, and binning events
 * into spike tensors (SPEC.md section 16).
 *
 * Records are big-endian bit fields, times in microseconds:
 *   .bs1  5 bytes: x 16 bits | p 1 bit | t 23 bits
 *   .bs2  5 bytes: x 8 | y 8 | p 1 | t 23            (N-MNIST, N-Caltech101)
 *   .bs3  7 bytes: x 12 | y 12 | p 8 | t 24
 *   .bsn 10 bytes: id 16 | tStart 24 | tEnd 24 | count 16
 * Readers return times in ms (us / 1000, double).  Writers round half to
 * even (numpy's round) and refuse values a field cannot hold, instead of
 * the reference's silent wrap-around; they fix the reference's two encoder
 * bugs (the high byte of a .bs1 id, the high nibble of a .bs3 y).  Files
 * are written to path.tmp and renamed.
 *
 * Binning (toSpikeTensor): for every event
 *   b = rint(t / Ts) - tShift,  x, y, p as given (integers),
 * events with any index outside the tensor are dropped; the bin is set to
 * 1/Ts ('OR'), gets 1/Ts added once however many events hit it ('SUM': the
 * reference's numpy a[idx] += 1/Ts reads every bin before writing any, so
 * repeated indices do not accumulate; on a zero tensor it equals 'OR'), or
 * gets 1/Ts added per event ('COUNT').
 */
#include "../internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const int RECORD[4] = {5, 5, 7, 10}; /* bs1, bs2, bs3, bsn */
static const char *NAMES[4] = {"read1Dspikes", "read2Dspikes", "read3Dspikes", "read1DnumSpikes"};

/* the size of a regular file, or an error naming op (a directory or a
   device has no meaningful size) */
static int file_size(const char *op, const char *path, size_t *size)
{
    struct stat st;
    if (!path) return sl_errorf("%s: expected a file path, got NULL", op);
    if (stat(path, &st) != 0) return sl_errorf_code(SL_EIO, "%s: cannot open '%s': %s", op, path, strerror(errno));
    if (S_ISDIR(st.st_mode)) return sl_errorf_code(SL_EIO, "%s: '%s' is a directory, not a file", op, path);
    if (!S_ISREG(st.st_mode)) return sl_errorf_code(SL_EIO, "%s: '%s' is not a regular file", op, path);
    *size = (size_t)st.st_size;
    return 0;
}

static unsigned char *slurp(const char *op, const char *path, size_t *size)
{
    size_t n;
    if (file_size(op, path, &n)) return NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        sl_errorf_code(SL_EIO, "%s: cannot open '%s': %s", op, path, strerror(errno));
        return NULL;
    }
    unsigned char *buf = malloc(n > 0 ? n : 1);
    if (!buf) {
        fclose(f);
        sl_errorf_code(SL_ENOMEM, "%s: out of memory reading '%s' (%zu bytes)", op, path, n);
        return NULL;
    }
    size_t got = fread(buf, 1, n, f);
    fclose(f);
    if (got != n) {
        free(buf);
        sl_errorf_code(SL_EIO, "%s: read error in '%s' at byte %zu", op, path, got);
        return NULL;
    }
    *size = n;
    return buf;
}

int64_t sl_spikefile_count(const char *path, int format)
{
    if (format < 0 || format > 3) return sl_errorf("spike file: unknown format %d", format);
    size_t n;
    int rc = file_size(NAMES[format], path, &n);
    if (rc) return rc;
    if (n % (size_t)RECORD[format] != 0)
        return sl_errorf_code(SL_EFORMAT,
                              "%s: '%s' is truncated or malformed: %zu bytes is not a whole number of %d-byte "
                              "records (partial record at byte %zu)",
                              NAMES[format], path, n, RECORD[format], n - n % (size_t)RECORD[format]);
    return (int64_t)(n / (size_t)RECORD[format]);
}

/* decode a whole file (n records) into the arrays; y may be NULL for bs1,
   for bsn: x = id, y = count, t = tStart, t2 = tEnd */
static int decode(int format, const unsigned char *b, int64_t n, int32_t *x, int32_t *y, int32_t *p, double *t,
                  double *t2)
{
    for (int64_t i = 0; i < n; i++) {
        const unsigned char *r = b + i * RECORD[format];
        switch (format) {
        case 0:
            x[i] = (r[0] << 8) | r[1];
            p[i] = r[2] >> 7;
            t[i] = (double)(((uint32_t)(r[2] & 0x7F) << 16) | (uint32_t)(r[3] << 8) | r[4]) / 1000.0;
            break;
        case 1:
            x[i] = r[0];
            y[i] = r[1];
            p[i] = r[2] >> 7;
            t[i] = (double)(((uint32_t)(r[2] & 0x7F) << 16) | (uint32_t)(r[3] << 8) | r[4]) / 1000.0;
            break;
        case 2:
            x[i] = (r[0] << 4) | (r[1] >> 4);
            y[i] = ((r[1] & 0x0F) << 8) | r[2];
            p[i] = r[3];
            t[i] = (double)(((uint32_t)r[4] << 16) | (uint32_t)(r[5] << 8) | r[6]) / 1000.0;
            break;
        default:
            x[i] = (r[0] << 8) | r[1];
            t[i] = (double)(((uint32_t)r[2] << 16) | (uint32_t)(r[3] << 8) | r[4]) / 1000.0;
            t2[i] = (double)(((uint32_t)r[5] << 16) | (uint32_t)(r[6] << 8) | r[7]) / 1000.0;
            y[i] = (r[8] << 8) | r[9];
            break;
        }
    }
    return 0;
}

int sl_spikefile_read(const char *path, int format, int64_t n, int32_t *x, int32_t *y, int32_t *p, double *t,
                      double *t2)
{
    if (format < 0 || format > 3) return sl_errorf("spike file: unknown format %d", format);
    size_t size;
    unsigned char *buf = slurp(NAMES[format], path, &size);
    if (!buf) return SL_EIO;
    if ((int64_t)size != n * RECORD[format]) {
        free(buf);
        return sl_errorf_code(SL_EFORMAT, "%s: '%s' changed size while reading (%zu bytes, expected %lld)",
                              NAMES[format], path, size, (long long)(n * RECORD[format]));
    }
    decode(format, buf, n, x, y, p, t, t2);
    free(buf);
    return 0;
}

/* numpy's round: half to even */
static inline double rint_even(double v) { return nearbyint(v); }

static int field(const char *op, int64_t i, const char *name, double v, int64_t lo, int64_t hi, int64_t *out)
{
    double r = rint_even(v);
    if (!(r >= (double)lo && r <= (double)hi))
        return sl_errorf("%s: event %lld has %s = %g, outside the format's range [%lld, %lld]", op,
                         (long long)i + 1, name, v, (long long)lo, (long long)hi);
    *out = (int64_t)r;
    return 0;
}

static int write_atomic(const char *op, const char *path, const unsigned char *buf, size_t n)
{
    if (!path) return sl_errorf("%s: expected a file path, got NULL", op);
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 8);
    if (!tmp) return sl_errorf_code(SL_ENOMEM, "%s: out of memory", op);
    snprintf(tmp, plen + 8, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        int rc = sl_errorf_code(SL_EIO, "%s: cannot open '%s' for writing: %s", op, tmp, strerror(errno));
        free(tmp);
        return rc;
    }
    int bad = n && fwrite(buf, 1, n, f) != n;
    if (fclose(f) != 0) bad = 1;
    if (bad || rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        int rc = sl_errorf_code(SL_EIO, "%s: writing '%s' failed: %s", op, path, strerror(e));
        free(tmp);
        return rc;
    }
    free(tmp);
    return 0;
}

int sl_spikefile_write(const char *path, int format, int64_t n, const int32_t *x, const int32_t *y,
                       const int32_t *p, const double *t, const double *t2)
{
    static const char *ops[4] = {"encode1Dspikes", "encode2Dspikes", "encode3Dspikes", "encode1DnumSpikes"};
    if (format < 0 || format > 3) return sl_errorf("spike file: unknown format %d", format);
    const char *op = ops[format];
    int R = RECORD[format];
    unsigned char *buf = malloc(n > 0 ? (size_t)(n * R) : 1);
    if (!buf) return sl_errorf_code(SL_ENOMEM, "%s: out of memory", op);
    int rc = 0;
    for (int64_t i = 0; i < n && !rc; i++) {
        unsigned char *r = buf + i * R;
        int64_t X = 0, Y = 0, P = 0, Tu = 0, T2 = 0;
        switch (format) {
        case 0:
            if ((rc = field(op, i, "x", x[i], 0, 65535, &X)) || (rc = field(op, i, "p", p[i], 0, 1, &P)) ||
                (rc = field(op, i, "t (us)", t[i] * 1000.0, 0, 0x7FFFFF, &Tu)))
                break;
            r[0] = (unsigned char)(X >> 8);
            r[1] = (unsigned char)X;
            r[2] = (unsigned char)(((Tu >> 16) & 0x7F) | (P << 7));
            r[3] = (unsigned char)(Tu >> 8);
            r[4] = (unsigned char)Tu;
            break;
        case 1:
            if ((rc = field(op, i, "x", x[i], 0, 255, &X)) || (rc = field(op, i, "y", y[i], 0, 255, &Y)) ||
                (rc = field(op, i, "p", p[i], 0, 1, &P)) ||
                (rc = field(op, i, "t (us)", t[i] * 1000.0, 0, 0x7FFFFF, &Tu)))
                break;
            r[0] = (unsigned char)X;
            r[1] = (unsigned char)Y;
            r[2] = (unsigned char)(((Tu >> 16) & 0x7F) | (P << 7));
            r[3] = (unsigned char)(Tu >> 8);
            r[4] = (unsigned char)Tu;
            break;
        case 2:
            if ((rc = field(op, i, "x", x[i], 0, 4095, &X)) || (rc = field(op, i, "y", y[i], 0, 4095, &Y)) ||
                (rc = field(op, i, "p", p[i], 0, 255, &P)) ||
                (rc = field(op, i, "t (us)", t[i] * 1000.0, 0, 0xFFFFFF, &Tu)))
                break;
            r[0] = (unsigned char)(X >> 4);
            r[1] = (unsigned char)(((X << 4) & 0xF0) | ((Y >> 8) & 0x0F));
            r[2] = (unsigned char)Y;
            r[3] = (unsigned char)P;
            r[4] = (unsigned char)(Tu >> 16);
            r[5] = (unsigned char)(Tu >> 8);
            r[6] = (unsigned char)Tu;
            break;
        default:
            if ((rc = field(op, i, "neuron id", x[i], 0, 65535, &X)) ||
                (rc = field(op, i, "tStart (us)", t[i] * 1000.0, 0, 0xFFFFFF, &Tu)) ||
                (rc = field(op, i, "tEnd (us)", t2[i] * 1000.0, 0, 0xFFFFFF, &T2)) ||
                (rc = field(op, i, "count", y[i], 0, 65535, &Y)))
                break;
            r[0] = (unsigned char)(X >> 8);
            r[1] = (unsigned char)X;
            r[2] = (unsigned char)(Tu >> 16);
            r[3] = (unsigned char)(Tu >> 8);
            r[4] = (unsigned char)Tu;
            r[5] = (unsigned char)(T2 >> 16);
            r[6] = (unsigned char)(T2 >> 8);
            r[7] = (unsigned char)T2;
            r[8] = (unsigned char)(Y >> 8);
            r[9] = (unsigned char)Y;
            break;
        }
    }
    if (!rc) rc = write_atomic(op, path, buf, (size_t)(n * R));
    free(buf);
    return rc;
}

/* ---- binning --------------------------------------------------------------- */

static int cmp_int64(const void *a, const void *b)
{
    int64_t u = *(const int64_t *)a, v = *(const int64_t *)b;
    return (u > v) - (u < v);
}

int sl_events_to_tensor(sl_tensor *out, int64_t n, const int32_t *x, const int32_t *y, const int32_t *p,
                        const double *t, double Ts, int64_t tShift, int mode)
{
    char b[128];
    if (out->device != SL_CPU || !sl_tensor_is_contiguous(out))
        return sl_errorf("toSpikeTensor: expected a contiguous CPU tensor");
    if (out->ndim != 4)
        return sl_errorf("toSpikeTensor: expected a 4-D (P, H, W, T) tensor, got %s", sl_shape_str(out, b, sizeof b));
    if (!(Ts > 0)) return sl_errorf("toSpikeTensor: samplingTime must be positive, got %g", Ts);
    if (mode < 0 || mode > 2) return sl_errorf("toSpikeTensor: unknown binning mode %d", mode);
    int64_t P = out->shape[0], H = out->shape[1], W = out->shape[2], T = out->shape[3];
    float amp = (float)(1.0 / Ts);
    /* SUM: the offsets of the bins hit, sorted so that each is added once */
    int64_t *hit = NULL, nhit = 0;
    if (mode == 1 && n > 0 && !(hit = malloc(sizeof(int64_t) * (size_t)n)))
        return sl_errorf_code(SL_ENOMEM, "toSpikeTensor: out of memory for %lld events", (long long)n);
    for (int64_t i = 0; i < n; i++) {
        double bd = rint_even(t[i] / Ts) - (double)tShift;
        int64_t yy = y ? y[i] : 0;
        if (x[i] < 0 || x[i] >= W || yy < 0 || yy >= H || p[i] < 0 || p[i] >= P || !(bd >= 0) || bd >= (double)T)
            continue;
        int64_t off = ((p[i] * H + yy) * W + x[i]) * T + (int64_t)bd;
        if (mode == 0) out->data[off] = amp;
        else if (mode == 2) out->data[off] += amp;
        else hit[nhit++] = off;
    }
    if (hit) {
        qsort(hit, (size_t)nhit, sizeof *hit, cmp_int64);
        for (int64_t i = 0; i < nhit; i++)
            if (i == 0 || hit[i] != hit[i - 1]) out->data[hit[i]] += amp;
        free(hit);
    }
    return 0;
}

/* ---- NumPy .npy ------------------------------------------------------------ */

/* find 'key': in a numpy header dict and return a pointer past the colon */
static const char *npy_key(const char *hdr, const char *key)
{
    const char *s = strstr(hdr, key);
    if (!s) return NULL;
    s = strchr(s + strlen(key), ':');
    return s ? s + 1 : NULL;
}

/* the dimensions of a header's shape tuple "(a, b, ...)" into dims (at most
   2 kept); returns how many there are, or -1 if it is not a tuple of
   non-negative integers that fit in int64 */
static int npy_shape(const char *s, int64_t dims[2])
{
    while (*s == ' ') s++;
    if (*s++ != '(') return -1;
    int nd = 0;
    for (;;) {
        while (*s == ' ') s++;
        if (*s == ')') return nd;
        if (*s < '0' || *s > '9') return -1;
        errno = 0;
        char *end;
        long long v = strtoll(s, &end, 10);
        if (errno == ERANGE) return -1;
        if (nd < 2) dims[nd] = v;
        nd++;
        s = end;
        while (*s == ' ') s++;
        if (*s == ',') s++;
        else if (*s != ')') return -1;
    }
}

int64_t sl_npy_read(const char *path, double **data, int64_t *rows, int64_t *cols)
{
    const char *op = "readNpSpikes";
    size_t size;
    unsigned char *buf = slurp(op, path, &size);
    if (!buf) return SL_EIO;
    int rc = 0;
    if (size < 10 || memcmp(buf, "\x93NUMPY", 6) != 0) {
        rc = sl_errorf_code(SL_EFORMAT, "%s: '%s' is not a .npy file (bad magic at byte 0)", op, path);
        goto done;
    }
    int major = buf[6], minor = buf[7];
    size_t hlen, hstart;
    if (minor != 0) {
        /* every .npy version so far is n.0; NumPy itself refuses others */
        rc = sl_errorf_code(SL_EFORMAT, "%s: '%s' has unsupported .npy version %d.%d", op, path, major, minor);
        goto done;
    }
    if (major == 1) {
        hlen = buf[8] | (buf[9] << 8);
        hstart = 10;
    } else if (major == 2 || major == 3) {
        if (size < 12) {
            rc = sl_errorf_code(SL_EFORMAT, "%s: '%s' is truncated in its header at byte %zu", op, path, size);
            goto done;
        }
        hlen = buf[8] | (buf[9] << 8) | ((size_t)buf[10] << 16) | ((size_t)buf[11] << 24);
        hstart = 12;
    } else {
        rc = sl_errorf_code(SL_EFORMAT, "%s: '%s' has unsupported .npy version %d.0", op, path, major);
        goto done;
    }
    if (hstart + hlen > size) {
        rc = sl_errorf_code(SL_EFORMAT, "%s: '%s' header runs past the end of the file at byte %zu", op, path, size);
        goto done;
    }
    char hdr[4096];
    size_t hl = hlen < sizeof hdr - 1 ? hlen : sizeof hdr - 1;
    memcpy(hdr, buf + hstart, hl);
    hdr[hl] = 0;
    const char *d = npy_key(hdr, "'descr'"), *fo = npy_key(hdr, "'fortran_order'"), *sh = npy_key(hdr, "'shape'");
    const char *open = hdr + strspn(hdr, " ");
    if (!d || !fo || !sh || *open != '{') {
        rc = sl_errorf_code(SL_EFORMAT, "%s: '%s' has a malformed header at byte %zu", op, path, hstart);
        goto done;
    }
    while (*d == ' ') d++;
    char descr[16] = {0};
    if (*d == '\'') {
        const char *e = strchr(d + 1, '\'');
        if (e && e - d - 1 < 15) memcpy(descr, d + 1, (size_t)(e - d - 1));
    }
    while (*fo == ' ') fo++;
    /* anything but True or False is damage, not C order */
    int fortran = strncmp(fo, "True", 4) == 0;
    if (!fortran && strncmp(fo, "False", 5) != 0) {
        rc = sl_errorf_code(SL_EFORMAT, "%s: '%s' has a malformed header at byte %zu: fortran_order is %.*s", op, path,
                            hstart, (int)(strcspn(fo, ",}") < 20 ? strcspn(fo, ",}") : 20), fo);
        goto done;
    }
    int64_t dims[2];
    int nd = npy_shape(sh, dims);
    if (nd != 2) {
        while (*sh == ' ') sh++;
        rc = sl_errorf_code(SL_EFORMAT, "%s: '%s' must hold a 2-D nEvents x fields array, got shape %.*s", op, path,
                            (int)(strcspn(sh, ")") < 60 ? strcspn(sh, ")") + 1 : 60), sh);
        goto done;
    }
    int64_t r0 = dims[0], c0 = dims[1];
    int isz = 0, kind = 0; /* kind: 1 float, 2 signed int, 3 unsigned */
    if (!strcmp(descr, "<f8")) { isz = 8; kind = 1; }
    else if (!strcmp(descr, "<f4")) { isz = 4; kind = 1; }
    else if (!strcmp(descr, "<i8")) { isz = 8; kind = 2; }
    else if (!strcmp(descr, "<i4")) { isz = 4; kind = 2; }
    else if (!strcmp(descr, "<i2")) { isz = 2; kind = 2; }
    else if (!strcmp(descr, "<u2")) { isz = 2; kind = 3; }
    else if (!strcmp(descr, "|u1")) { isz = 1; kind = 3; }
    else {
        rc = sl_errorf_code(SL_EFORMAT, "%s: '%s' has unsupported dtype '%s' (float64/32, int64/32/16, uint16/8)", op,
                            path, descr);
        goto done;
    }
    /* the data must be in the file: checked in values, which cannot wrap
       (the declared sizes can be anything up to INT64_MAX) */
    size_t dstart = hstart + hlen;
    uint64_t have = (uint64_t)((size - dstart) / (size_t)isz);
    if (c0 > 0 && (uint64_t)r0 > have / (uint64_t)c0) {
        rc = sl_errorf_code(SL_EFORMAT,
                            "%s: '%s' is truncated: shape (%lld, %lld) of %d-byte values does not fit in the %zu "
                            "bytes after the header (data ends at byte %zu)",
                            op, path, (long long)r0, (long long)c0, isz, size - dstart, size);
        goto done;
    }
    double *out = malloc(sizeof(double) * (size_t)(r0 * c0 + 1));
    if (!out) {
        rc = sl_errorf_code(SL_ENOMEM, "%s: out of memory", op);
        goto done;
    }
    const unsigned char *src = buf + dstart;
    for (int64_t i = 0; i < r0; i++)
        for (int64_t j = 0; j < c0; j++) {
            size_t k = fortran ? (size_t)(j * r0 + i) : (size_t)(i * c0 + j);
            const unsigned char *e = src + k * (size_t)isz;
            double v;
            if (kind == 1 && isz == 8) { double q; memcpy(&q, e, 8); v = q; }
            else if (kind == 1) { float q; memcpy(&q, e, 4); v = q; }
            else if (kind == 2 && isz == 8) { int64_t q; memcpy(&q, e, 8); v = (double)q; }
            else if (kind == 2 && isz == 4) { int32_t q; memcpy(&q, e, 4); v = q; }
            else if (kind == 2) { int16_t q; memcpy(&q, e, 2); v = q; }
            else if (isz == 2) { uint16_t q; memcpy(&q, e, 2); v = q; }
            else v = e[0];
            out[i * c0 + j] = v;
        }
    *data = out;
    *rows = r0;
    *cols = c0;
done:
    free(buf);
    return rc;
}

void sl_npy_free(double *data) { free(data); }

int sl_npy_write(const char *path, const double *data, int64_t rows, int64_t cols)
{
    char hdr[256];
    int len = snprintf(hdr, sizeof hdr, "{'descr': '<f8', 'fortran_order': False, 'shape': (%lld, %lld), }",
                       (long long)rows, (long long)cols);
    /* numpy pads the header with spaces so the data starts at a multiple of 64 */
    int total = 10 + len + 1;
    int pad = (64 - total % 64) % 64;
    size_t hlen = (size_t)(len + pad + 1), n = 10 + hlen + (size_t)(rows * cols) * 8;
    unsigned char *buf = malloc(n);
    if (!buf) return sl_errorf_code(SL_ENOMEM, "encodeNpSpikes: out of memory");
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (unsigned char)(hlen & 0xFF);
    buf[9] = (unsigned char)(hlen >> 8);
    memcpy(buf + 10, hdr, (size_t)len);
    memset(buf + 10 + len, ' ', (size_t)pad);
    buf[10 + len + pad] = '\n';
    memcpy(buf + 10 + hlen, data, (size_t)(rows * cols) * 8);
    int rc = write_atomic("encodeNpSpikes", path, buf, n);
    free(buf);
    return rc;
}
