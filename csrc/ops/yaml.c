/*
 * yaml.c -- YAML documents through libyaml, as a flat list of events.
 *
 * The parser turns the first document of a file (or string) into the
 * sequence of libyaml events that matter for a parameter tree -- mapping
 * start/end, sequence start/end, scalar (with its text, style and tag) and
 * alias (with its anchor) -- and hands them to Lua, which builds the tables
 * and applies the YAML 1.1 scalar rules (lua/slayer/params.lua).  Syntax
 * errors come back with libyaml's line and column.
 */
#include "../internal.h"

#include <stdlib.h>
#include <string.h>
#include <yaml.h>

struct sl_yaml_doc {
    int count, cap;
    int *type, *style, *line;
    char **value, **anchor, **tag;
};

static void doc_free(sl_yaml_doc *d)
{
    if (!d) return;
    for (int i = 0; i < d->count; i++) {
        free(d->value[i]);
        free(d->anchor[i]);
        free(d->tag[i]);
    }
    free(d->type);
    free(d->style);
    free(d->line);
    free(d->value);
    free(d->anchor);
    free(d->tag);
    free(d);
}

void sl_yaml_free(sl_yaml_doc *d) { doc_free(d); }

static char *dup_str(const unsigned char *s, size_t n)
{
    if (!s) return NULL;
    char *r = malloc(n + 1);
    if (!r) return NULL;
    memcpy(r, s, n);
    r[n] = 0;
    return r;
}

static int push(sl_yaml_doc *d, int type, int style, int line, char *value, char *anchor, char *tag)
{
    if (d->count == d->cap) {
        int cap = d->cap ? d->cap * 2 : 64;
        int *t = realloc(d->type, sizeof(int) * (size_t)cap);
        if (t) d->type = t;
        int *s = realloc(d->style, sizeof(int) * (size_t)cap);
        if (s) d->style = s;
        int *l = realloc(d->line, sizeof(int) * (size_t)cap);
        if (l) d->line = l;
        char **v = realloc(d->value, sizeof(char *) * (size_t)cap);
        if (v) d->value = v;
        char **a = realloc(d->anchor, sizeof(char *) * (size_t)cap);
        if (a) d->anchor = a;
        char **g = realloc(d->tag, sizeof(char *) * (size_t)cap);
        if (g) d->tag = g;
        if (!t || !s || !l || !v || !a || !g) return -1;
        d->cap = cap;
    }
    int i = d->count++;
    d->type[i] = type;
    d->style[i] = style;
    d->line[i] = line;
    d->value[i] = value;
    d->anchor[i] = anchor;
    d->tag[i] = tag;
    return 0;
}

static sl_yaml_doc *parse(yaml_parser_t *p, const char *source)
{
    sl_yaml_doc *d = calloc(1, sizeof *d);
    if (!d) {
        sl_errorf_code(SL_ENOMEM, "params: out of memory");
        return NULL;
    }
    int done = 0, in_doc = 0;
    while (!done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(p, &ev)) {
            sl_errorf_code(SL_EFORMAT, "params: YAML syntax error in %s at line %zu, column %zu: %s%s%s", source,
                           p->problem_mark.line + 1, p->problem_mark.column + 1,
                           p->problem ? p->problem : "invalid document", p->context ? " " : "",
                           p->context ? p->context : "");
            doc_free(d);
            return NULL;
        }
        int line = (int)ev.start_mark.line + 1, rc = 0;
        switch (ev.type) {
        case YAML_DOCUMENT_START_EVENT: in_doc++; break;
        case YAML_DOCUMENT_END_EVENT: done = 1; break;
        case YAML_STREAM_END_EVENT: done = 1; break;
        case YAML_MAPPING_START_EVENT:
            rc = push(d, 1, 0, line, NULL,
                      dup_str(ev.data.mapping_start.anchor,
                              ev.data.mapping_start.anchor ? strlen((char *)ev.data.mapping_start.anchor) : 0),
                      dup_str(ev.data.mapping_start.tag,
                              ev.data.mapping_start.tag ? strlen((char *)ev.data.mapping_start.tag) : 0));
            break;
        case YAML_MAPPING_END_EVENT: rc = push(d, 2, 0, line, NULL, NULL, NULL); break;
        case YAML_SEQUENCE_START_EVENT:
            rc = push(d, 3, 0, line, NULL,
                      dup_str(ev.data.sequence_start.anchor,
                              ev.data.sequence_start.anchor ? strlen((char *)ev.data.sequence_start.anchor) : 0),
                      dup_str(ev.data.sequence_start.tag,
                              ev.data.sequence_start.tag ? strlen((char *)ev.data.sequence_start.tag) : 0));
            break;
        case YAML_SEQUENCE_END_EVENT: rc = push(d, 4, 0, line, NULL, NULL, NULL); break;
        case YAML_SCALAR_EVENT:
            rc = push(d, 5, (int)ev.data.scalar.style, line,
                      dup_str(ev.data.scalar.value, ev.data.scalar.length),
                      dup_str(ev.data.scalar.anchor,
                              ev.data.scalar.anchor ? strlen((char *)ev.data.scalar.anchor) : 0),
                      dup_str(ev.data.scalar.tag, ev.data.scalar.tag ? strlen((char *)ev.data.scalar.tag) : 0));
            break;
        case YAML_ALIAS_EVENT:
            rc = push(d, 6, 0, line, NULL,
                      dup_str(ev.data.alias.anchor, strlen((char *)ev.data.alias.anchor)), NULL);
            break;
        default: break;
        }
        yaml_event_delete(&ev);
        if (rc) {
            sl_errorf_code(SL_ENOMEM, "params: out of memory");
            doc_free(d);
            return NULL;
        }
    }
    (void)in_doc;
    return d;
}

sl_yaml_doc *sl_yaml_parse_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        sl_errorf_code(SL_EIO, "params: cannot open '%s'", path);
        return NULL;
    }
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        fclose(f);
        sl_errorf_code(SL_ENOMEM, "params: cannot initialise the YAML parser");
        return NULL;
    }
    yaml_parser_set_input_file(&p, f);
    sl_yaml_doc *d = parse(&p, path);
    yaml_parser_delete(&p);
    fclose(f);
    return d;
}

sl_yaml_doc *sl_yaml_parse_string(const char *text, size_t n)
{
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        sl_errorf_code(SL_ENOMEM, "params: cannot initialise the YAML parser");
        return NULL;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)text, n);
    sl_yaml_doc *d = parse(&p, "<string>");
    yaml_parser_delete(&p);
    return d;
}

int sl_yaml_count(const sl_yaml_doc *d) { return d->count; }
int sl_yaml_type(const sl_yaml_doc *d, int i) { return d->type[i]; }
int sl_yaml_style(const sl_yaml_doc *d, int i) { return d->style[i]; }
int sl_yaml_line(const sl_yaml_doc *d, int i) { return d->line[i]; }
const char *sl_yaml_value(const sl_yaml_doc *d, int i) { return d->value[i]; }
const char *sl_yaml_anchor(const sl_yaml_doc *d, int i) { return d->anchor[i]; }
const char *sl_yaml_tag(const sl_yaml_doc *d, int i) { return d->tag[i]; }
