/*
 * serialize.c -- the named-tensor file format of snn.save / Module:save.
 *
 *   offset 0   "SLAYERT1"                      8 bytes, magic
 *          8   u32 version (1)
 *         12   u32 count
 *         16   count entries:
 *                u32 name length L, name bytes, zero padding to a multiple of 4
 *                u32 ndim, u32 shape[ndim]
 *                f32 data[prod(shape)]
 *        end   u32 CRC-32 (zlib polynomial) of every byte before it
 * All integers and floats little-endian.  The writer writes path.tmp and
 * renames it over path only when everything was written, so an interrupted
 * save never leaves a half file.  The reader checks sizes, bounds and the
 * checksum before it hands anything out.
 */
#include "../internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define MAGIC "SLAYERT1"
#define VERSION 1u

uint32_t sl_crc32(uint32_t crc, const void *data, size_t n)
{
    const unsigned char *p = data;
    while (n > 0) {
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = (uint32_t)crc32(crc, p, chunk);
        p += chunk;
        n -= chunk;
    }
    return crc;
}

typedef struct {
    FILE *f;
    uint32_t crc;
    int failed;
} writer;

static void put(writer *w, const void *p, size_t n)
{
    if (w->failed || n == 0) return;
    if (fwrite(p, 1, n, w->f) != n) w->failed = 1;
    w->crc = sl_crc32(w->crc, p, n);
}

static void put_u32(writer *w, uint32_t v) { put(w, &v, 4); }

int sl_save_tensors(const char *path, int n, const char **names, const sl_tensor **tensors)
{
    if (!path) return sl_errorf("save: expected a file path");
    if (n < 0) return sl_errorf("save: negative tensor count");
    for (int i = 0; i < n; i++) {
        if (!names[i] || !tensors[i]) return sl_errorf("save: entry %d is missing", i + 1);
        if (tensors[i]->device != SL_CPU || !sl_tensor_is_contiguous(tensors[i]))
            return sl_errorf("save: tensor '%s' must be a contiguous CPU tensor", names[i]);
    }
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return sl_errorf_code(SL_EIO, "save: '%s' is a directory, not a file", path);
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp) return sl_errorf_code(SL_ENOMEM, "save: out of memory");
    snprintf(tmp, plen + 16, "%s.tmp", path);
    writer w = {fopen(tmp, "wb"), 0, 0};
    if (!w.f) {
        int rc = sl_errorf_code(SL_EIO, "save: cannot open '%s' for writing", tmp);
        free(tmp);
        return rc;
    }
    put(&w, MAGIC, 8);
    put_u32(&w, VERSION);
    put_u32(&w, (uint32_t)n);
    static const char zeros[4] = {0, 0, 0, 0};
    for (int i = 0; i < n; i++) {
        uint32_t L = (uint32_t)strlen(names[i]);
        put_u32(&w, L);
        put(&w, names[i], L);
        put(&w, zeros, (4 - L % 4) % 4);
        const sl_tensor *t = tensors[i];
        put_u32(&w, (uint32_t)t->ndim);
        for (int d = 0; d < t->ndim; d++) put_u32(&w, (uint32_t)t->shape[d]);
        put(&w, t->data, (size_t)t->numel * sizeof(float));
    }
    uint32_t crc = w.crc;
    if (!w.failed && fwrite(&crc, 1, 4, w.f) != 4) w.failed = 1;
    if (fclose(w.f) != 0) w.failed = 1;
    if (w.failed) {
        remove(tmp);
        int rc = sl_errorf_code(SL_EIO, "save: writing '%s' failed (disk full or not writable)", path);
        free(tmp);
        return rc;
    }
    if (rename(tmp, path) != 0) {
        remove(tmp);
        int rc = sl_errorf_code(SL_EIO, "save: cannot rename '%s' to '%s'", tmp, path);
        free(tmp);
        return rc;
    }
    free(tmp);
    return 0;
}

struct sl_tensor_file {
    unsigned char *buf;
    int count;
    char **names;
    int *ndim;
    int32_t (*shape)[SL_MAX_DIMS];
    const float **data;
};

void sl_tensor_file_close(sl_tensor_file *f)
{
    if (!f) return;
    if (f->names)
        for (int i = 0; i < f->count; i++) free(f->names[i]);
    free(f->names);
    free(f->ndim);
    free(f->shape);
    free(f->data);
    free(f->buf);
    free(f);
}

sl_tensor_file *sl_load_tensors(const char *path)
{
    if (!path) {
        sl_errorf("load: expected a file path");
        return NULL;
    }
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        sl_errorf_code(SL_EIO, "load: cannot open '%s'", path);
        return NULL;
    }
    /* a directory opens for reading on Linux; its "size" is meaningless */
    struct stat st;
    if (fstat(fileno(fp), &st) != 0) {
        fclose(fp);
        sl_errorf_code(SL_EIO, "load: cannot stat '%s'", path);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        fclose(fp);
        sl_errorf_code(SL_EIO, "load: '%s' is %s, not a regular file", path,
                       S_ISDIR(st.st_mode) ? "a directory" : "a device, pipe or socket");
        return NULL;
    }
    if (fseek(fp, 0, SEEK_END) != 0) {
        fclose(fp);
        sl_errorf_code(SL_EIO, "load: cannot seek in '%s'", path);
        return NULL;
    }
    long size = ftell(fp);
    rewind(fp);
    if (size < 20) {
        fclose(fp);
        sl_errorf_code(SL_EFORMAT, "load: '%s' is too short (%ld bytes) to be a slayer tensor file", path, size);
        return NULL;
    }
    sl_tensor_file *f = calloc(1, sizeof *f);
    unsigned char *b = malloc((size_t)size);
    if (!f || !b) {
        fclose(fp);
        free(f);
        free(b);
        sl_errorf_code(SL_ENOMEM, "load: out of memory");
        return NULL;
    }
    f->buf = b;
    size_t got = fread(b, 1, (size_t)size, fp);
    fclose(fp);
    if (got != (size_t)size) {
        sl_errorf_code(SL_EIO, "load: read error in '%s' at byte %zu", path, got);
        goto fail;
    }
    if (memcmp(b, MAGIC, 8) != 0) {
        sl_errorf_code(SL_EFORMAT, "load: '%s' is not a slayer tensor file (bad magic at byte 0)", path);
        goto fail;
    }
    uint32_t version, count, stored;
    memcpy(&version, b + 8, 4);
    memcpy(&count, b + 12, 4);
    memcpy(&stored, b + size - 4, 4);
    if (version != VERSION) {
        sl_errorf_code(SL_EFORMAT, "load: '%s' has format version %u, this library reads version %u", path,
                       version, VERSION);
        goto fail;
    }
    if (sl_crc32(0, b, (size_t)size - 4) != stored) {
        sl_errorf_code(SL_EFORMAT, "load: '%s' is corrupt or truncated (checksum mismatch)", path);
        goto fail;
    }
    if (count > (uint32_t)(size / 8)) {
        sl_errorf_code(SL_EFORMAT, "load: '%s' declares %u entries at byte 12, too many for its size", path, count);
        goto fail;
    }
    f->count = (int)count;
    f->names = calloc(count ? count : 1, sizeof *f->names);
    f->ndim = calloc(count ? count : 1, sizeof *f->ndim);
    f->shape = calloc(count ? count : 1, sizeof *f->shape);
    f->data = calloc(count ? count : 1, sizeof *f->data);
    if (!f->names || !f->ndim || !f->shape || !f->data) {
        sl_errorf_code(SL_ENOMEM, "load: out of memory");
        goto fail;
    }
    size_t pos = 16, end = (size_t)size - 4;
#define NEED(nbytes)                                                                               \
    do {                                                                                           \
        if ((nbytes) > end - pos) {                                                                \
            sl_errorf_code(SL_EFORMAT, "load: '%s' entry %u runs past the end of the file at byte %zu", \
                           path, i + 1, pos);                                                      \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)
    for (uint32_t i = 0; i < count; i++) {
        uint32_t L, nd;
        NEED(4);
        memcpy(&L, b + pos, 4);
        pos += 4;
        NEED((size_t)L + (4 - L % 4) % 4);
        f->names[i] = malloc((size_t)L + 1);
        if (!f->names[i]) {
            sl_errorf_code(SL_ENOMEM, "load: out of memory");
            goto fail;
        }
        memcpy(f->names[i], b + pos, L);
        f->names[i][L] = 0;
        pos += (size_t)L + (4 - L % 4) % 4;
        NEED(4);
        memcpy(&nd, b + pos, 4);
        pos += 4;
        if (nd > SL_MAX_DIMS) {
            sl_errorf_code(SL_EFORMAT, "load: '%s' entry '%s' has %u dimensions (at most %d) at byte %zu", path,
                           f->names[i], nd, SL_MAX_DIMS, pos - 4);
            goto fail;
        }
        NEED((size_t)nd * 4);
        uint64_t numel = 1;
        for (uint32_t d = 0; d < nd; d++) {
            uint32_t s;
            memcpy(&s, b + pos, 4);
            pos += 4;
            if (s > 0x7fffffffu) {
                sl_errorf_code(SL_EFORMAT, "load: '%s' entry '%s' has an invalid size", path, f->names[i]);
                goto fail;
            }
            f->shape[i][d] = (int32_t)s;
            numel *= s;
            if (numel > end) {
                sl_errorf_code(SL_EFORMAT, "load: '%s' entry '%s' is larger than the file", path, f->names[i]);
                goto fail;
            }
        }
        f->ndim[i] = (int)nd;
        NEED((size_t)numel * 4);
        f->data[i] = (const float *)(b + pos);
        pos += (size_t)numel * 4;
    }
#undef NEED
    if (pos != end) {
        sl_errorf_code(SL_EFORMAT, "load: '%s' has %zu unexpected bytes after the last entry", path, end - pos);
        goto fail;
    }
    return f;
fail:
    sl_tensor_file_close(f);
    return NULL;
}

int sl_tensor_file_count(const sl_tensor_file *f) { return f->count; }
const char *sl_tensor_file_name(const sl_tensor_file *f, int i) { return f->names[i]; }
int sl_tensor_file_ndim(const sl_tensor_file *f, int i) { return f->ndim[i]; }
const int32_t *sl_tensor_file_shape(const sl_tensor_file *f, int i) { return f->shape[i]; }
const float *sl_tensor_file_data(const sl_tensor_file *f, int i) { return f->data[i]; }
