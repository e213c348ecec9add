/* SPDX-License-Identifier: MIT */
/* filter.c: a recursive-descent compiler for filter expressions into a small tree, and its evaluator. */
#include "autoconf.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"
#include "jpath.h"
#include "why.h"

#define FILTER_NONE 0xffffu     /* no node / no sibling */
#define TOKEN_SHOW 24           /* bytes of a token quoted in an error message */
#define FILTER_FIRST_PATHS 4    /* paths allocated at first; doubled as needed */

enum tok {
        T_END, T_BAD, T_LPAREN, T_RPAREN, T_LBRACK, T_RBRACK, T_COMMA, T_NOT, T_AND, T_OR,
        T_OP, T_STRING, T_NUMBER, T_TRUE, T_FALSE, T_NULL, T_EXISTS, T_IN, T_PATH,
};

enum cmp_op { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE };

enum node_kind { N_OR, N_AND, N_NOT, N_EXISTS, N_CMP, N_IN };

/*
 * The tree lives in one array: and/or nodes list their operands as a
 * chain (first child in a, then next), so a long chain of && or || stays
 * one level deep and evaluation recursion is bounded by the nesting.
 */
struct fnode {
        uint8_t kind;           /* enum node_kind */
        uint8_t op;             /* enum cmp_op for N_CMP */
        uint16_t a;             /* or/and/not: first child; exists/cmp/in: path index */
        uint16_t next;          /* next operand of the parent and/or */
        uint16_t lit, nlit;     /* cmp/in: first literal and how many */
};

struct flit {
        enum jv_kind kind;      /* JV_STRING, JV_NUMBER, JV_BOOL or JV_NULL */
        double num;
        int boolean;
        uint32_t off, len;      /* JV_STRING: the unescaped bytes in strings */
};

struct filter {
        struct fnode nodes[FILTER_MAX_NODES];
        struct flit lits[FILTER_MAX_NODES];
        unsigned nnodes, nlits, npaths;
        uint16_t root;
        struct jpath *paths;    /* npaths of them, room for paths_cap */
        unsigned paths_cap;
        char *strings;          /* literal bytes; never more than the expression's length */
        size_t nstrings;
        char *text;
};

struct parser {
        struct filter *f;
        const char *s;
        size_t len;
        unsigned depth;
        /* The current token, and the one before it (for "after ..."). */
        enum tok t;
        size_t pos, tlen;
        enum cmp_op op;
        size_t prev_pos, prev_len;
        int have_prev;
        char *why;
        size_t whylen;
        int err;
};

/* ---- tokens ---- */

static int path_start(unsigned char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int path_char(unsigned char c)
{
        return path_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.' || c >= 0x80;
}

/* Length of a JSON string at s[0] == '"' up to its closing quote, or len when unterminated. */
static size_t string_extent(const char *s, size_t len)
{
        size_t i = 1;

        while (i < len && s[i] != '"')
                i += s[i] == '\\' && i + 1 < len ? 2 : 1;
        return i < len ? i + 1 : len;
}

/* Length of a JSON number at s, or 0 when it is not one (strict RFC 8259 form). */
static size_t number_extent(const char *s, size_t len)
{
        size_t i = 0, d;

        if (i < len && s[i] == '-')
                i++;
        if (i < len && s[i] == '0') {
                i++;
        } else {
                for (d = i; i < len && s[i] >= '0' && s[i] <= '9'; i++)
                        ;
                if (i == d)
                        return 0;
        }
        if (i < len && s[i] == '.') {
                for (d = ++i; i < len && s[i] >= '0' && s[i] <= '9'; i++)
                        ;
                if (i == d)
                        return 0;
        }
        if (i < len && (s[i] == 'e' || s[i] == 'E')) {
                i++;
                if (i < len && (s[i] == '+' || s[i] == '-'))
                        i++;
                for (d = i; i < len && s[i] >= '0' && s[i] <= '9'; i++)
                        ;
                if (i == d)
                        return 0;
        }
        /* "01" or "1x": a number must not run into more word characters. */
        if (i < len && (path_char((unsigned char)s[i]) && s[i] != '-'))
                return 0;
        return i;
}

static int word_is(const char *s, size_t n, const char *w)
{
        return strlen(w) == n && memcmp(s, w, n) == 0;
}

static void next_token(struct parser *ps)
{
        const char *s = ps->s;
        size_t i = ps->pos + ps->tlen;
        unsigned char c;

        if (ps->t != T_END || ps->have_prev) {
                ps->prev_pos = ps->pos;
                ps->prev_len = ps->tlen;
        }
        ps->have_prev = 1;
        while (i < ps->len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
                i++;
        ps->pos = i;
        ps->tlen = 1;
        if (i >= ps->len) {
                ps->t = T_END;
                ps->tlen = 0;
                return;
        }
        c = (unsigned char)s[i];
        switch (c) {
        case '(': ps->t = T_LPAREN; return;
        case ')': ps->t = T_RPAREN; return;
        case '[': ps->t = T_LBRACK; return;
        case ']': ps->t = T_RBRACK; return;
        case ',': ps->t = T_COMMA; return;
        case '"':
                ps->t = T_STRING;
                ps->tlen = string_extent(s + i, ps->len - i);
                return;
        default:
                break;
        }
        if (c == '&' || c == '|') {
                ps->t = i + 1 < ps->len && s[i + 1] == (char)c ? (c == '&' ? T_AND : T_OR) : T_BAD;
                ps->tlen = ps->t == T_BAD ? 1 : 2;
                return;
        }
        if (c == '=' || c == '!' || c == '<' || c == '>') {
                int eq = i + 1 < ps->len && s[i + 1] == '=';

                ps->tlen = eq ? 2 : 1;
                ps->t = T_OP;
                if (c == '=') {
                        ps->op = OP_EQ;
                        if (!eq)
                                ps->t = T_BAD;
                } else if (c == '!') {
                        ps->op = OP_NE;
                        if (!eq)
                                ps->t = T_NOT;
                } else if (c == '<') {
                        ps->op = eq ? OP_LE : OP_LT;
                } else {
                        ps->op = eq ? OP_GE : OP_GT;
                }
                return;
        }
        if (c == '-' || (c >= '0' && c <= '9')) {
                ps->tlen = number_extent(s + i, ps->len - i);
                ps->t = ps->tlen ? T_NUMBER : T_BAD;
                if (!ps->tlen) {
                        /* Show the whole malformed word in the message. */
                        size_t j = i + 1;

                        while (j < ps->len && (path_char((unsigned char)s[j]) || s[j] == '+'))
                                j++;
                        ps->tlen = j - i;
                }
                return;
        }
        if (path_start(c)) {
                size_t j = i;

                while (j < ps->len) {
                        if (path_char((unsigned char)s[j]))
                                j++;
                        else if (s[j] == '"' && j > i && s[j - 1] == '.')
                                j += string_extent(s + j, ps->len - j);
                        else
                                break;
                }
                ps->tlen = j - i;
                ps->t = T_PATH;
                if (word_is(s + i, ps->tlen, "true"))
                        ps->t = T_TRUE;
                else if (word_is(s + i, ps->tlen, "false"))
                        ps->t = T_FALSE;
                else if (word_is(s + i, ps->tlen, "null"))
                        ps->t = T_NULL;
                else if (word_is(s + i, ps->tlen, "exists"))
                        ps->t = T_EXISTS;
                else if (word_is(s + i, ps->tlen, "in"))
                        ps->t = T_IN;
                return;
        }
        ps->t = T_BAD;
}

/* ---- errors ---- */

/* Fails with "column N: msg" at byte offset pos. Returns -EINVAL. */
static int fail_at(struct parser *ps, size_t pos, const char *msg)
{
        if (!ps->err)
                ps->err = why_set(ps->why, ps->whylen, -EINVAL, "column %zu: %s", pos + 1, msg);
        return ps->err;
}

/* Fails with "column N: expected <what> after <previous token>" at the current token. */
static int expected(struct parser *ps, const char *what)
{
        char msg[WHY_MAX];

        if (ps->prev_len == 0 && ps->pos == ps->prev_pos)
                snprintf(msg, sizeof(msg), "expected %s at the start of the expression", what);
        else if (ps->prev_len > TOKEN_SHOW)
                snprintf(msg, sizeof(msg), "expected %s after '%.*s...'", what, TOKEN_SHOW,
                         ps->s + ps->prev_pos);
        else
                snprintf(msg, sizeof(msg), "expected %s after '%.*s'", what, (int)ps->prev_len,
                         ps->s + ps->prev_pos);
        return fail_at(ps, ps->pos, msg);
}

/* ---- building ---- */

static int new_node(struct parser *ps, enum node_kind kind, uint16_t *idx)
{
        struct filter *f = ps->f;

        if (f->nnodes + f->nlits >= FILTER_MAX_NODES)
                return fail_at(ps, ps->pos, "expression too long (more than 256 nodes)");
        *idx = (uint16_t)f->nnodes;
        f->nodes[f->nnodes] = (struct fnode){ .kind = (uint8_t)kind, .a = FILTER_NONE,
                                              .next = FILTER_NONE };
        f->nnodes++;
        return 0;
}

static int parse_path(struct parser *ps, uint16_t *idx)
{
        struct filter *f = ps->f;
        char msg[WHY_MAX], full[WHY_MAX + 96];
        size_t epos = 0;
        int rc;

        if (ps->t != T_PATH)
                return expected(ps, "a field path (type, source, id, timestamp or data...)");
        if (f->npaths == f->paths_cap) {
                unsigned cap = f->paths_cap ? f->paths_cap * 2 : FILTER_FIRST_PATHS;
                struct jpath *np = realloc(f->paths, cap * sizeof(*np));

                if (!np) {
                        ps->err = why_set(ps->why, ps->whylen, -ENOMEM, "out of memory");
                        return ps->err;
                }
                f->paths = np;
                f->paths_cap = cap;
        }
        rc = jpath_compile_n(&f->paths[f->npaths], ps->s + ps->pos, ps->tlen, &epos, msg, sizeof(msg));
        if (rc < 0) {
                snprintf(full, sizeof(full), "%s in path '%.*s'", msg,
                         (int)(ps->tlen > 64 ? 64 : ps->tlen), ps->s + ps->pos);
                return fail_at(ps, ps->pos + epos, full);
        }
        *idx = (uint16_t)f->npaths++;
        next_token(ps);
        return 0;
}

/* Parses a literal at the current token into a new flit. */
static int parse_literal(struct parser *ps)
{
        struct filter *f = ps->f;
        struct flit *l;
        char msg[WHY_MAX];
        size_t epos = 0, n = 0;
        long used;

        if (f->nnodes + f->nlits >= FILTER_MAX_NODES)
                return fail_at(ps, ps->pos, "expression too long (more than 256 nodes)");
        l = &f->lits[f->nlits];
        memset(l, 0, sizeof(*l));
        switch (ps->t) {
        case T_STRING:
                used = jpath_parse_string(ps->s + ps->pos, ps->tlen, f->strings + f->nstrings,
                                          ps->len - f->nstrings, &n, &epos, msg, sizeof(msg));
                if (used < 0)
                        return fail_at(ps, ps->pos + epos, msg);
                l->kind = JV_STRING;
                l->off = (uint32_t)f->nstrings;
                l->len = (uint32_t)n;
                f->nstrings += n;
                break;
        case T_NUMBER: {
                char buf[64];

                if (ps->tlen >= sizeof(buf))
                        return fail_at(ps, ps->pos, "number longer than 63 characters");
                memcpy(buf, ps->s + ps->pos, ps->tlen);
                buf[ps->tlen] = '\0';
                l->kind = JV_NUMBER;
                l->num = strtod(buf, NULL);
                break;
        }
        case T_TRUE:
        case T_FALSE:
                l->kind = JV_BOOL;
                l->boolean = ps->t == T_TRUE;
                break;
        case T_NULL:
                l->kind = JV_NULL;
                break;
        case T_BAD:
                if (ps->s[ps->pos] == '-' || (ps->s[ps->pos] >= '0' && ps->s[ps->pos] <= '9')) {
                        snprintf(msg, sizeof(msg), "bad number '%.*s'",
                                 (int)(ps->tlen > TOKEN_SHOW ? TOKEN_SHOW : ps->tlen), ps->s + ps->pos);
                        return fail_at(ps, ps->pos, msg);
                }
                return expected(ps, "a literal (a \"string\", a number, true, false or null)");
        default:
                return expected(ps, "a literal (a \"string\", a number, true, false or null)");
        }
        f->nlits++;
        next_token(ps);
        return 0;
}

static int parse_or(struct parser *ps, uint16_t *idx);

static int parse_cmp(struct parser *ps, uint16_t *idx)
{
        struct filter *f = ps->f;
        uint16_t path, n;
        int rc;

        if (ps->t != T_PATH)
                return expected(ps, "a comparison, '!', '(' or exists(...)");
        rc = parse_path(ps, &path);
        if (rc < 0)
                return rc;
        if (ps->t == T_IN) {
                rc = new_node(ps, N_IN, &n);
                if (rc < 0)
                        return rc;
                next_token(ps);
                if (ps->t != T_LBRACK)
                        return expected(ps, "'['");
                next_token(ps);
                f->nodes[n].a = path;
                f->nodes[n].lit = (uint16_t)f->nlits;
                for (;;) {
                        rc = parse_literal(ps);
                        if (rc < 0)
                                return rc;
                        f->nodes[n].nlit++;
                        if (ps->t == T_RBRACK)
                                break;
                        if (ps->t != T_COMMA)
                                return expected(ps, "',' or ']'");
                        next_token(ps);
                }
                next_token(ps);
                *idx = n;
                return 0;
        }
        if (ps->t != T_OP)
                return expected(ps, "an operator (==, !=, <, <=, >, >= or in)");
        rc = new_node(ps, N_CMP, &n);
        if (rc < 0)
                return rc;
        f->nodes[n].op = (uint8_t)ps->op;
        f->nodes[n].a = path;
        f->nodes[n].lit = (uint16_t)f->nlits;
        f->nodes[n].nlit = 1;
        next_token(ps);
        rc = parse_literal(ps);
        if (rc < 0)
                return rc;
        *idx = n;
        return 0;
}

static int enter(struct parser *ps)
{
        if (++ps->depth > FILTER_MAX_DEPTH)
                return fail_at(ps, ps->pos, "nesting deeper than 32");
        return 0;
}

static int parse_unary(struct parser *ps, uint16_t *idx)
{
        struct filter *f = ps->f;
        uint16_t n, child;
        int rc;

        switch (ps->t) {
        case T_NOT:
                rc = enter(ps);
                if (rc < 0)
                        return rc;
                rc = new_node(ps, N_NOT, &n);
                if (rc < 0)
                        return rc;
                next_token(ps);
                rc = parse_unary(ps, &child);
                if (rc < 0)
                        return rc;
                f->nodes[n].a = child;
                ps->depth--;
                *idx = n;
                return 0;
        case T_LPAREN:
                rc = enter(ps);
                if (rc < 0)
                        return rc;
                next_token(ps);
                rc = parse_or(ps, idx);
                if (rc < 0)
                        return rc;
                if (ps->t != T_RPAREN)
                        return expected(ps, "')'");
                next_token(ps);
                ps->depth--;
                return 0;
        case T_EXISTS:
                rc = new_node(ps, N_EXISTS, &n);
                if (rc < 0)
                        return rc;
                next_token(ps);
                if (ps->t != T_LPAREN)
                        return expected(ps, "'('");
                next_token(ps);
                rc = parse_path(ps, &child);
                if (rc < 0)
                        return rc;
                if (ps->t != T_RPAREN)
                        return expected(ps, "')'");
                next_token(ps);
                f->nodes[n].a = child;
                *idx = n;
                return 0;
        default:
                return parse_cmp(ps, idx);
        }
}

/* Parses operands separated by sep (T_AND or T_OR) into one n-ary node (or the operand alone). */
static int parse_chain(struct parser *ps, enum tok sep, uint16_t *idx)
{
        struct filter *f = ps->f;
        uint16_t first, last, n, next;
        int rc;

        rc = sep == T_OR ? parse_chain(ps, T_AND, &first) : parse_unary(ps, &first);
        if (rc < 0)
                return rc;
        if (ps->t != sep) {
                *idx = first;
                return 0;
        }
        rc = new_node(ps, sep == T_OR ? N_OR : N_AND, &n);
        if (rc < 0)
                return rc;
        f->nodes[n].a = first;
        last = first;
        while (ps->t == sep) {
                next_token(ps);
                rc = sep == T_OR ? parse_chain(ps, T_AND, &next) : parse_unary(ps, &next);
                if (rc < 0)
                        return rc;
                f->nodes[last].next = next;
                last = next;
        }
        *idx = n;
        return 0;
}

static int parse_or(struct parser *ps, uint16_t *idx)
{
        return parse_chain(ps, T_OR, idx);
}

int filter_compile(struct filter **fp, const char *expr, char *why, size_t whylen)
{
        struct parser ps = { .s = expr, .why = why, .whylen = whylen };
        struct filter *f = NULL;
        size_t len = strlen(expr);
        int rc;

        *fp = NULL;
        if (len > FILTER_MAX_LEN)
                return why_set(why, whylen, -EINVAL, "column %u: expression longer than %u bytes",
                               FILTER_MAX_LEN + 1, FILTER_MAX_LEN);
        f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        /* A literal's bytes are at most its text's: the pool never outgrows the expression. */
        f->strings = malloc(len + 1);
        f->text = strdup(expr);
        if (!f->strings || !f->text) {
                rc = -ENOMEM;
                goto err;
        }
        ps.f = f;
        ps.len = len;
        ps.t = T_END;
        next_token(&ps);
        ps.prev_pos = ps.pos;
        ps.prev_len = 0;
        rc = parse_or(&ps, &f->root);
        if (rc == 0 && ps.t != T_END)
                rc = expected(&ps, "'&&', '||' or the end");
        if (rc < 0)
                goto err;
        *fp = f;
        return 0;
err:
        filter_destroy(f);
        return rc;
}

void filter_destroy(struct filter *f)
{
        if (!f)
                return;
        free(f->paths);
        free(f->strings);
        free(f->text);
        free(f);
}

const char *filter_text(const struct filter *f)
{
        return f->text;
}

/* ---- matching ---- */

/* 1 when v and literal l are of the same type and equal. */
static int lit_eq(const struct filter *f, const struct jvalue *v, const struct flit *l)
{
        switch (l->kind) {
        case JV_STRING:
                return jvalue_str_eq(v, f->strings + l->off, l->len);
        case JV_NUMBER:
                return v->kind == JV_NUMBER && v->num == l->num;
        case JV_BOOL:
                return v->kind == JV_BOOL && v->boolean == l->boolean;
        default:
                return v->kind == JV_NULL;
        }
}

static int compare(const struct filter *f, const struct jvalue *v, enum cmp_op op, const struct flit *l)
{
        int c;

        if (v->kind != l->kind)
                return 0;
        if (op == OP_EQ)
                return lit_eq(f, v, l);
        if (op == OP_NE)
                return !lit_eq(f, v, l);
        if (l->kind == JV_STRING)
                c = jvalue_str_cmp(v, f->strings + l->off, l->len);
        else if (l->kind == JV_NUMBER)
                c = v->num < l->num ? -1 : v->num > l->num ? 1 : 0;
        else
                return 0;
        switch (op) {
        case OP_LT: return c < 0;
        case OP_LE: return c <= 0;
        case OP_GT: return c > 0;
        default: return c >= 0;
        }
}

/* Looks path i up, through the index when there is one. */
static void look(const struct filter *f, uint16_t i, const struct event_view *ev, const struct jindex *ix,
                 struct jvalue *v)
{
        if (ix)
                jpath_lookup_ix(&f->paths[i], ix, v);
        else
                jpath_lookup(&f->paths[i], ev, v);
}

static int eval(const struct filter *f, uint16_t idx, const struct event_view *ev, const struct jindex *ix)
{
        const struct fnode *n = &f->nodes[idx];
        struct jvalue v;
        uint16_t k;

        switch (n->kind) {
        case N_OR:
                for (k = n->a; k != FILTER_NONE; k = f->nodes[k].next)
                        if (eval(f, k, ev, ix))
                                return 1;
                return 0;
        case N_AND:
                for (k = n->a; k != FILTER_NONE; k = f->nodes[k].next)
                        if (!eval(f, k, ev, ix))
                                return 0;
                return 1;
        case N_NOT:
                return !eval(f, n->a, ev, ix);
        case N_EXISTS:
                look(f, n->a, ev, ix, &v);
                return v.kind != JV_MISSING;
        case N_CMP:
                look(f, n->a, ev, ix, &v);
                return compare(f, &v, (enum cmp_op)n->op, &f->lits[n->lit]);
        default:
                look(f, n->a, ev, ix, &v);
                for (k = 0; k < n->nlit; k++)
                        if (v.kind == f->lits[n->lit + k].kind && lit_eq(f, &v, &f->lits[n->lit + k]))
                                return 1;
                return 0;
        }
}

int filter_match(const struct filter *f, const struct event_view *ev)
{
        return eval(f, f->root, ev, NULL);
}

int filter_match_ix(const struct filter *f, const struct jindex *ix)
{
        return eval(f, f->root, ix->ev, ix);
}
