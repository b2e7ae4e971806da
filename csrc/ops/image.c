/*
 * image.c -- PNG and animated GIF writers (no dependency beyond zlib).
 *
 * PNG: signature, IHDR (8-bit RGB), one zlib-compressed IDAT of scanlines
 * with filter byte 0, IEND; every chunk carries its CRC-32.
 * GIF: GIF89a, a global palette of up to 256 colours, a NETSCAPE2.0 loop
 * extension, and per frame a graphic-control extension (delay in 1/100 s)
 * and an image block of palette indices, LZW-compressed (variable code
 * width 9..12 bits, clear code when the table fills).
 * Both are written to path.tmp and renamed when complete.
 */
#include "../internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

typedef struct {
    FILE *f;
    int bad;
} out_t;

static void put(out_t *o, const void *p, size_t n)
{
    if (!o->bad && n && fwrite(p, 1, n, o->f) != n) o->bad = 1;
}

static void be32(unsigned char *b, uint32_t v)
{
    b[0] = (unsigned char)(v >> 24);
    b[1] = (unsigned char)(v >> 16);
    b[2] = (unsigned char)(v >> 8);
    b[3] = (unsigned char)v;
}

static void chunk(out_t *o, const char *type, const unsigned char *data, uint32_t n)
{
    unsigned char b[4];
    be32(b, n);
    put(o, b, 4);
    put(o, type, 4);
    put(o, data, n);
    uLong crc = crc32(0, (const Bytef *)type, 4);
    if (n) crc = crc32(crc, data, n);
    be32(b, (uint32_t)crc);
    put(o, b, 4);
}

static FILE *open_tmp(const char *op, const char *path, char **tmp)
{
    if (!path) {
        sl_errorf("%s: expected a file path, got NULL", op);
        return NULL;
    }
    size_t plen = strlen(path);
    *tmp = malloc(plen + 8);
    if (!*tmp) {
        sl_errorf_code(SL_ENOMEM, "%s: out of memory", op);
        return NULL;
    }
    snprintf(*tmp, plen + 8, "%s.tmp", path);
    FILE *f = fopen(*tmp, "wb");
    if (!f) {
        sl_errorf_code(SL_EIO, "%s: cannot open '%s' for writing: %s", op, *tmp, strerror(errno));
        free(*tmp);
    }
    return f;
}

static int finish(const char *op, const char *path, out_t *o, char *tmp)
{
    if (fclose(o->f) != 0) o->bad = 1;
    if (o->bad || rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        free(tmp);
        return sl_errorf_code(SL_EIO, "%s: writing '%s' failed: %s", op, path, strerror(e));
    }
    free(tmp);
    return 0;
}

int sl_png_write(const char *path, int width, int height, const unsigned char *rgb)
{
    const char *op = "png";
    if (width < 1 || height < 1) return sl_errorf("%s: invalid size %dx%d", op, width, height);
    size_t row = (size_t)width * 3 + 1, raw = row * (size_t)height;
    unsigned char *scan = malloc(raw);
    uLongf zlen = compressBound((uLong)raw);
    unsigned char *z = malloc(zlen);
    if (!scan || !z) {
        free(scan);
        free(z);
        return sl_errorf_code(SL_ENOMEM, "%s: out of memory", op);
    }
    for (int y = 0; y < height; y++) {
        scan[y * row] = 0;
        memcpy(scan + y * row + 1, rgb + (size_t)y * width * 3, (size_t)width * 3);
    }
    if (compress2(z, &zlen, scan, (uLong)raw, 6) != Z_OK) {
        free(scan);
        free(z);
        return sl_errorf("%s: compression failed", op);
    }
    free(scan);
    char *tmp;
    out_t o = {open_tmp(op, path, &tmp), 0};
    if (!o.f) {
        free(z);
        return SL_EIO;
    }
    put(&o, "\x89PNG\r\n\x1a\n", 8);
    unsigned char ihdr[13];
    be32(ihdr, (uint32_t)width);
    be32(ihdr + 4, (uint32_t)height);
    ihdr[8] = 8;  /* bit depth */
    ihdr[9] = 2;  /* RGB */
    ihdr[10] = ihdr[11] = ihdr[12] = 0;
    chunk(&o, "IHDR", ihdr, 13);
    chunk(&o, "IDAT", z, (uint32_t)zlen);
    chunk(&o, "IEND", NULL, 0);
    free(z);
    return finish(op, path, &o, tmp);
}

/* ---- GIF ------------------------------------------------------------------ */

typedef struct {
    out_t *o;
    unsigned char block[256];
    int nblock;
    uint32_t acc;
    int bits;
} bitsink;

static void sink_byte(bitsink *s, unsigned char b)
{
    s->block[1 + s->nblock++] = b;
    if (s->nblock == 255) {
        s->block[0] = 255;
        put(s->o, s->block, 256);
        s->nblock = 0;
    }
}

static void sink_code(bitsink *s, int code, int width)
{
    s->acc |= (uint32_t)code << s->bits;
    s->bits += width;
    while (s->bits >= 8) {
        sink_byte(s, (unsigned char)(s->acc & 0xFF));
        s->acc >>= 8;
        s->bits -= 8;
    }
}

static void sink_flush(bitsink *s)
{
    if (s->bits > 0) sink_byte(s, (unsigned char)(s->acc & 0xFF));
    s->acc = 0;
    s->bits = 0;
    if (s->nblock) {
        s->block[0] = (unsigned char)s->nblock;
        put(s->o, s->block, (size_t)s->nblock + 1);
    }
    unsigned char zero = 0;
    put(s->o, &zero, 1);
}

/* LZW with an open-addressed table of (prefix code, byte) -> code */
static int lzw_frame(out_t *o, const unsigned char *px, int64_t n, int minbits)
{
    enum { HSIZE = 8191 };
    int32_t *keys = malloc(sizeof(int32_t) * HSIZE);
    int16_t *vals = malloc(sizeof(int16_t) * HSIZE);
    if (!keys || !vals) {
        free(keys);
        free(vals);
        return -1;
    }
    unsigned char mb = (unsigned char)minbits;
    put(o, &mb, 1);
    bitsink s = {o, {0}, 0, 0, 0};
    int clear = 1 << minbits, eoi = clear + 1;
    int next, width;
#define RESET()                                                                 \
    do {                                                                        \
        for (int h = 0; h < HSIZE; h++) keys[h] = -1;                           \
        next = eoi + 1;                                                         \
        width = minbits + 1;                                                    \
    } while (0)
    RESET();
    sink_code(&s, clear, width);
    int cur = n > 0 ? px[0] : 0;
    for (int64_t i = 1; i < n; i++) {
        int c = px[i];
        int32_t key = (cur << 8) | c;
        int h = (int)(((uint32_t)key * 2654435761u) % HSIZE);
        while (keys[h] != -1 && keys[h] != key) h = (h + 1) % HSIZE;
        if (keys[h] == key) {
            cur = vals[h];
            continue;
        }
        sink_code(&s, cur, width);
        if (next < 4096) {
            keys[h] = key;
            vals[h] = (int16_t)next;
            if (next == (1 << width) && width < 12) width++;
            next++;
        } else {
            sink_code(&s, clear, width);
            RESET();
        }
        cur = c;
    }
#undef RESET
    if (n > 0) sink_code(&s, cur, width);
    sink_code(&s, eoi, width);
    sink_flush(&s);
    free(keys);
    free(vals);
    return 0;
}

/* frames: nframes images of width x height palette indices; palette: ncolors
   RGB triples (ncolors <= 256); delay in 1/100 s per frame */
int sl_gif_write(const char *path, int width, int height, int nframes, const unsigned char *frames,
                 const unsigned char *palette, int ncolors, int delay)
{
    const char *op = "animTD";
    if (width < 1 || height < 1 || width > 65535 || height > 65535 || nframes < 1)
        return sl_errorf("%s: invalid GIF size %dx%d with %d frames", op, width, height, nframes);
    if (ncolors < 2 || ncolors > 256) return sl_errorf("%s: palette needs 2 to 256 colours, got %d", op, ncolors);
    int bits = 1;
    while ((1 << bits) < ncolors) bits++;
    char *tmp;
    out_t o = {open_tmp(op, path, &tmp), 0};
    if (!o.f) return SL_EIO;
    put(&o, "GIF89a", 6);
    unsigned char lsd[7] = {(unsigned char)width, (unsigned char)(width >> 8), (unsigned char)height,
                            (unsigned char)(height >> 8), (unsigned char)(0x80 | ((bits - 1) << 4) | (bits - 1)), 0, 0};
    put(&o, lsd, 7);
    unsigned char pal[768] = {0};
    memcpy(pal, palette, (size_t)ncolors * 3);
    put(&o, pal, (size_t)3 << bits);
    unsigned char loop[19] = {0x21, 0xFF, 0x0B, 'N', 'E', 'T', 'S', 'C', 'A', 'P', 'E', '2', '.', '0', 0x03, 0x01, 0, 0, 0};
    put(&o, loop, 19);
    int minbits = bits < 2 ? 2 : bits;
    for (int f = 0; f < nframes && !o.bad; f++) {
        unsigned char gce[8] = {0x21, 0xF9, 0x04, 0x00, (unsigned char)delay, (unsigned char)(delay >> 8), 0, 0};
        put(&o, gce, 8);
        unsigned char desc[10] = {0x2C, 0, 0, 0, 0, (unsigned char)width, (unsigned char)(width >> 8),
                                  (unsigned char)height, (unsigned char)(height >> 8), 0};
        put(&o, desc, 10);
        if (lzw_frame(&o, frames + (size_t)f * width * height, (int64_t)width * height, minbits)) o.bad = 1;
    }
    unsigned char trailer = 0x3B;
    put(&o, &trailer, 1);
    return finish(op, path, &o, tmp);
}
