/* dlpipe's LSTM layer on the CPU (PyTorch's gate order i, f, g, o and weight layout), forward and
   backward through time from a zero initial state, for hidden sizes that are multiples of 16.
   Compiled on first use by dlpipe/models/native/__init__.py; see dlpipe/models/fused.py.

   Layouts (all C-contiguous float32): x (B, T, I); w_ih (4H, I); w_hh (4H, H); bias (4H) = b_ih + b_hh;
   hs, cs (T+1, B, H) with row 0 the zero initial state; acts (T, B, 4H) the gates after activation;
   dout (B, T, H) the gradient of every step's output. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The cache key this library was built for (models/native/__init__.py passes -DDLP_BUILD_KEY="..."):
   a library built for another CPU or compiler is never loaded; dlpipe reads this before calling anything. */
#ifndef DLP_BUILD_KEY
#define DLP_BUILD_KEY "unkeyed"
#endif
const char dlp_build_key[] = DLP_BUILD_KEY;

typedef float v16 __attribute__((vector_size(64)));
typedef int32_t i16v __attribute__((vector_size(64)));

static inline v16 ld(const float *p) { v16 v; memcpy(&v, p, sizeof v); return v; }
static inline void st(float *p, v16 v) { memcpy(p, &v, sizeof v); }
static inline v16 splat(float f) { return (v16){f, f, f, f, f, f, f, f, f, f, f, f, f, f, f, f}; }
static inline v16 pick(i16v m, v16 a, v16 b) { return (v16)(((i16v)a & m) | ((i16v)b & ~m)); }

/* tanh as a rational function on [-9, 9] (beyond it tanh is +-1 in float32); max error ~3e-7. */
static inline v16 vtanh(v16 x)
{
    const v16 lim = splat(9.0f);
    x = pick(x > lim, lim, x);
    x = pick(x < -lim, -lim, x);
    const v16 x2 = x * x;
    v16 p = splat(-2.76076847742355e-16f);
    p = p * x2 + splat(2.00018790482477e-13f);
    p = p * x2 + splat(-8.60467152213735e-11f);
    p = p * x2 + splat(5.12229709037114e-08f);
    p = p * x2 + splat(1.48572235717979e-05f);
    p = p * x2 + splat(6.37261928875436e-04f);
    p = p * x2 + splat(4.89352455891786e-03f);
    v16 q = splat(1.19825839466702e-06f);
    q = q * x2 + splat(1.18534705686654e-04f);
    q = q * x2 + splat(2.26843463243900e-03f);
    q = q * x2 + splat(4.89352518554385e-03f);
    return x * p / q;
}

static inline v16 vsigmoid(v16 x) { return splat(0.5f) + splat(0.5f) * vtanh(splat(0.5f) * x); }

#define GCHUNK 4 /* gate vectors accumulated together (64 gates in 4 registers); 4H/16 is a multiple of 4 */

/* a0..a3 += SRC0 @ W[:, v0*16 : v0*16 + 64] and c0..c3 likewise for SRC1, over COUNT inputs (W is
   (COUNT, G), gates along rows): each weight vector is loaded once for both batch rows. */
#define ACCUMULATE_ROWS(SRC0, SRC1, COUNT, W)                                                        \
    for (int r_ = 0; r_ < (COUNT); r_++) {                                                           \
        const v16 p_ = splat((SRC0)[r_]), q_ = splat((SRC1)[r_]);                                    \
        const float *wr_ = (W) + (size_t)r_ * G + (size_t)v0 * 16;                                   \
        const v16 w0 = ld(wr_), w1 = ld(wr_ + 16), w2 = ld(wr_ + 32), w3 = ld(wr_ + 48);              \
        a0 += p_ * w0; a1 += p_ * w1; a2 += p_ * w2; a3 += p_ * w3;                                  \
        c0 += q_ * w0; c1 += q_ * w1; c2 += q_ * w2; c3 += q_ * w3;                                  \
    }

int dlp_lstm_forward(const float *restrict x, const float *restrict w_ih, const float *restrict w_hh,
                     const float *restrict bias, int B, int T, int I, int H,
                     float *restrict hs, float *restrict cs, float *restrict acts)
{
    if (H % 16) return 2;
    const int G = 4 * H, NV = G / 16;
    float *whh_t = malloc(sizeof(float) * (size_t)H * G), *wih_t = malloc(sizeof(float) * (size_t)(I > 0 ? I : 1) * G);
    if (!whh_t || !wih_t) { free(whh_t); free(wih_t); return 1; }
    for (int j = 0; j < G; j++) {
        for (int k = 0; k < H; k++) whh_t[(size_t)k * G + j] = w_hh[(size_t)j * H + k];
        for (int i = 0; i < I; i++) wih_t[(size_t)i * G + j] = w_ih[(size_t)j * I + i];
    }
    memset(hs, 0, sizeof(float) * (size_t)B * H);
    memset(cs, 0, sizeof(float) * (size_t)B * H);
    for (int t = 0; t < T; t++) {
        /* gates of two batch rows at a time: each weight vector loaded once feeds both rows */
        for (int b = 0; b < B; b += 2) {
            const int two = b + 1 < B;
            const float *h0 = hs + ((size_t)t * B + b) * H, *h1 = two ? h0 + H : h0;
            const float *x0 = x + ((size_t)b * T + t) * I, *x1 = two ? x0 + (size_t)T * I : x0;
            float *r0 = acts + ((size_t)t * B + b) * G, *r1 = two ? r0 + G : r0;
            for (int v0 = 0; v0 < NV; v0 += GCHUNK) {
                const float *bb = bias + (size_t)v0 * 16;
                v16 a0 = ld(bb), a1 = ld(bb + 16), a2 = ld(bb + 32), a3 = ld(bb + 48);
                v16 c0 = a0, c1 = a1, c2 = a2, c3 = a3;
                ACCUMULATE_ROWS(x0, x1, I, wih_t); /* the input projection, then the recurrent one */
                ACCUMULATE_ROWS(h0, h1, H, whh_t);
                const v16 ra[GCHUNK] = {a0, a1, a2, a3}, rc[GCHUNK] = {c0, c1, c2, c3};
                for (int v = 0; v < GCHUNK; v++) {
                    const int tanh_gate = (v0 + v) * 16 / H == 2; /* gates: 0 i, 1 f, 2 g, 3 o */
                    st(r0 + (size_t)(v0 + v) * 16, tanh_gate ? vtanh(ra[v]) : vsigmoid(ra[v]));
                    if (two) st(r1 + (size_t)(v0 + v) * 16, tanh_gate ? vtanh(rc[v]) : vsigmoid(rc[v]));
                }
            }
        }
        for (int b = 0; b < B; b++) {
            const float *a = acts + ((size_t)t * B + b) * G;
            const float *cp = cs + ((size_t)t * B + b) * H;
            float *cn = cs + ((size_t)(t + 1) * B + b) * H, *hn = hs + ((size_t)(t + 1) * B + b) * H;
            for (int k = 0; k < H; k += 16) {
                const v16 c = ld(a + H + k) * ld(cp + k) + ld(a + k) * ld(a + 2 * H + k);
                st(cn + k, c);
                st(hn + k, ld(a + 3 * H + k) * vtanh(c));
            }
        }
    }
    free(whh_t);
    free(wih_t);
    return 0;
}

/* The recurrent part of the backward pass: writes dgates (T, B, 4H), the gradient of the gates
   before their activations; the weight, bias and input gradients are products of it that the
   caller does with torch (one matrix product each). */
int dlp_lstm_backward(const float *restrict dout, const float *restrict w_hh, const float *restrict cs,
                      const float *restrict acts, int B, int T, int H, float *restrict dgates)
{
    if (H % 16) return 2;
    const int G = 4 * H;
    float *dh = calloc((size_t)B * H, sizeof(float)), *dc = calloc((size_t)B * H, sizeof(float));
    if (!dh || !dc) { free(dh); free(dc); return 1; }
    const v16 one = splat(1.0f), zero = splat(0.0f);
    for (int t = T - 1; t >= 0; t--) {
        for (int b = 0; b < B; b++) {
            const float *a = acts + ((size_t)t * B + b) * G;
            const float *cp = cs + ((size_t)t * B + b) * H, *cn = cs + ((size_t)(t + 1) * B + b) * H;
            const float *dor = dout + ((size_t)b * T + t) * H;
            float *dg = dgates + ((size_t)t * B + b) * G;
            float *dhb = dh + (size_t)b * H, *dcb = dc + (size_t)b * H;
            for (int k = 0; k < H; k += 16) {
                const v16 i = ld(a + k), f = ld(a + H + k), g = ld(a + 2 * H + k), o = ld(a + 3 * H + k);
                const v16 dhk = ld(dor + k) + ld(dhb + k);
                const v16 tc = vtanh(ld(cn + k));
                const v16 dck = ld(dcb + k) + dhk * o * (one - tc * tc);
                st(dg + k, dck * g * i * (one - i));
                st(dg + H + k, dck * ld(cp + k) * f * (one - f));
                st(dg + 2 * H + k, dck * i * (one - g * g));
                st(dg + 3 * H + k, dhk * tc * o * (one - o));
                st(dcb + k, dck * f);
            }
        }
        /* the previous step's dh = dg (B x 4H) @ w_hh (4H x H), in a second pass over the batch so the
           gate gradients are read back long after they were stored (reading a value right after a
           vector store of it stalls the load); two chains hide the FMA latency */
        for (int b = 0; b < B; b += 2) {  /* two batch rows share each weight vector load */
            const int two = b + 1 < B;
            const float *d0 = dgates + ((size_t)t * B + b) * G, *d1 = two ? d0 + G : d0;
            float *o0 = dh + (size_t)b * H, *o1 = two ? o0 + H : o0;
            for (int k0 = 0; k0 < H; k0 += 16) {
                v16 e0 = zero, e1 = zero, f0 = zero, f1 = zero;
                for (int j = 0; j < G; j += 2) {
                    const v16 wa = ld(w_hh + (size_t)j * H + k0), wb = ld(w_hh + (size_t)(j + 1) * H + k0);
                    e0 += splat(d0[j]) * wa; e1 += splat(d0[j + 1]) * wb;
                    f0 += splat(d1[j]) * wa; f1 += splat(d1[j + 1]) * wb;
                }
                st(o0 + k0, e0 + e1);
                if (two) st(o1 + k0, f0 + f1);
            }
        }
    }
    free(dh);
    free(dc);
    return 0;
}
