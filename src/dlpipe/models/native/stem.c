/* dlpipe's fused first CNN block on the CPU: convolution (stride 1, on an already padded NCHW
   input) + 2x2 max-pool + ReLU, forward and the weight/bias gradients, without ever writing the
   full-size convolution map. Compiled on first use by dlpipe/models/native/__init__.py with the
   machine's C compiler (cc -O3 -march=native) and loaded with ctypes; see dlpipe/models/fused.py.

   Layouts: x (N, Cin, Hp, Wp); w (Cin, K, K, C); bias (C); out, g (N, Ho, Wo, C) = channels_last;
   idx (N, Ho, Wo, C) uint8: the winning position of each 2x2 window (0-3, row-major) or 4 where the
   window's maximum was <= 0 (ReLU passed nothing). C must be a multiple of 16 (one 16-float vector
   per block of channels; GCC/Clang vector extensions, so any SIMD width the target has). */
#include <stdint.h>
#include <string.h>

/* The cache key this library was built for (models/native/__init__.py passes -DDLP_BUILD_KEY="..."):
   a library built for another CPU or compiler is never loaded; dlpipe reads this before calling anything. */
#ifndef DLP_BUILD_KEY
#define DLP_BUILD_KEY "unkeyed"
#endif
const char dlp_build_key[] = DLP_BUILD_KEY;

typedef float v16 __attribute__((vector_size(64)));
typedef int32_t i16v __attribute__((vector_size(64)));

static inline v16 load16(const float *p) { v16 v; memcpy(&v, p, sizeof v); return v; }
static inline void store16(float *p, v16 v) { memcpy(p, &v, sizeof v); }
static inline v16 pick(i16v m, v16 a, v16 b) { return (v16)(((i16v)a & m) | ((i16v)b & ~m)); }
static inline i16v pick_i(i16v m, i16v a, i16v b) { return (a & m) | (b & ~m); }

/* The four positions of a pooling window are computed together: each weight tap is loaded once
   for four fused multiply-adds. */
int dlp_stem_forward(const float *restrict x, int N, int Cin, int Hp, int Wp,
                     const float *restrict w, const float *restrict bias, int C, int K,
                     float *restrict out, uint8_t *restrict idx)
{
    if (C % 16) return 2;
    const int Ho = (Hp - K + 1) / 2, Wo = (Wp - K + 1) / 2;
    const v16 zero = {0};
    const i16v one = {1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1};
    for (int n = 0; n < N; n++)
    for (int i = 0; i < Ho; i++)
    for (int j = 0; j < Wo; j++) {
        const size_t o_at = (((size_t)n * Ho + i) * Wo + j) * C;
        for (int c0 = 0; c0 < C; c0 += 16) {
            const v16 b0 = load16(bias + c0);
            v16 a0 = b0, a1 = b0, a2 = b0, a3 = b0;
            for (int ci = 0; ci < Cin; ci++)
            for (int kh = 0; kh < K; kh++) {
                const float *x0 = x + (((size_t)n * Cin + ci) * Hp + 2 * i + kh) * Wp + 2 * j;
                const float *x1 = x0 + Wp;
                const float *wr = w + (((size_t)ci * K + kh) * K) * C + c0;
                for (int kw = 0; kw < K; kw++) {
                    const v16 wt = load16(wr + (size_t)kw * C);
                    a0 += x0[kw] * wt;
                    a1 += x0[kw + 1] * wt;
                    a2 += x1[kw] * wt;
                    a3 += x1[kw + 1] * wt;
                }
            }
            v16 best = a0; i16v won = {0};
            i16v take = ~(a1 <= best); best = pick(take, a1, best); won = pick_i(take, one, won);
            take = ~(a2 <= best); best = pick(take, a2, best); won = pick_i(take, one + one, won);
            take = ~(a3 <= best); best = pick(take, a3, best); won = pick_i(take, one + one + one, won);
            const i16v live = ~(best <= zero);
            store16(out + o_at + c0, pick(live, best, zero));
            const i16v k = pick_i(live, won, one * 4);
            for (int b = 0; b < 16; b++) idx[o_at + c0 + b] = (uint8_t)k[b];
        }
    }
    return 0;
}

int dlp_stem_backward(const float *restrict g, const float *restrict x, const uint8_t *restrict idx,
                      int N, int Cin, int Hp, int Wp, int C, int K,
                      float *restrict dw, float *restrict dbias)
{
    if (C % 16) return 2;
    const int Ho = (Hp - K + 1) / 2, Wo = (Wp - K + 1) / 2;
    const v16 zero = {0};
    memset(dw, 0, sizeof(float) * (size_t)C * Cin * K * K);
    memset(dbias, 0, sizeof(float) * C);
    for (int n = 0; n < N; n++)
    for (int i = 0; i < Ho; i++)
    for (int j = 0; j < Wo; j++) {
        const size_t o_at = (((size_t)n * Ho + i) * Wo + j) * C;
        for (int c0 = 0; c0 < C; c0 += 16) {
            const v16 gv = load16(g + o_at + c0);
            i16v k;
            for (int b = 0; b < 16; b++) k[b] = idx[o_at + c0 + b];
            const v16 g0 = pick(k == 0, gv, zero), g1 = pick(k == 1, gv, zero), g2 = pick(k == 2, gv, zero), g3 = pick(k == 3, gv, zero);
            store16(dbias + c0, load16(dbias + c0) + pick(k < 4, gv, zero));
            for (int ci = 0; ci < Cin; ci++)
            for (int kh = 0; kh < K; kh++) {
                const float *x0 = x + (((size_t)n * Cin + ci) * Hp + 2 * i + kh) * Wp + 2 * j;
                const float *x1 = x0 + Wp;
                float *dr = dw + (((size_t)ci * K + kh) * K) * C + c0;
                for (int kw = 0; kw < K; kw++) {
                    float *dt = dr + (size_t)kw * C;
                    store16(dt, load16(dt) + x0[kw] * g0 + x0[kw + 1] * g1 + x1[kw] * g2 + x1[kw + 1] * g3);
                }
            }
        }
    }
    return 0;
}
