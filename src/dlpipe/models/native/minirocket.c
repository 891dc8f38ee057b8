/* MiniRocket's pooling on the CPU: the proportion of positive values (PPV) of each convolution output
   for each of its biases. Compiled on first use by dlpipe/models/native/__init__.py with the machine's
   C compiler (cc -O3 -march=native) and loaded with ctypes; see dlpipe/models/minirocket.py, which
   computes the same numbers with torch when this library is absent.

   Layouts: conv (B, K, T) float32; mask (B, T) int32, 1 = a real step; bias (K, NF) float32;
   out (B, K, NF) float32. Kernel k pools over [pad, T - pad) when (k + parity) is odd (no padding
   entered those convolutions, as in MiniRocket), else over every step; masked steps never count. */
#include <stdint.h>

#ifndef DLP_BUILD_KEY
#define DLP_BUILD_KEY "unkeyed"
#endif
const char dlp_build_key[] = DLP_BUILD_KEY;

int dlp_minirocket_ppv(const float *restrict conv, const int32_t *restrict mask, int B, int K,
                       int T, const float *restrict bias, int NF, int pad, int parity,
                       float *restrict out) {
    if (B < 0 || K < 1 || T < 1 || NF < 1 || pad < 0) return 1;
    for (int b = 0; b < B; b++) {
        const int32_t *m = mask + (int64_t)b * T;
        for (int k = 0; k < K; k++) {
            const float *c = conv + ((int64_t)b * K + k) * T;
            const float *bs = bias + (int64_t)k * NF;
            float *o = out + ((int64_t)b * K + k) * NF;
            int lo = 0, hi = T;
            if ((k + parity) & 1) {
                lo = pad;
                hi = T - pad;
            }
            int32_t count = 0;
            for (int t = lo; t < hi; t++) count += m[t];
            float inv = count > 0 ? 1.0f / (float)count : 0.0f;
            for (int j = 0; j < NF; j++) {
                const float bj = bs[j];
                int32_t hits = 0;
                for (int t = lo; t < hi; t++) hits += (c[t] > bj) & m[t];
                o[j] = (float)hits * inv;
            }
        }
    }
    return 0;
}

/* The convolutions and their pooling in one pass, for univariate series: x (B, T) float32, mask (B, T)
   int32, idx (K, 3) int32 the +2 positions of each kernel (weights -1 elsewhere), dilation d with
   zero padding pad = 4d; out (B, K, NF) as dlp_minirocket_ppv. The nine shifted copies of a series
   are built once per series; each kernel's output is -sum(all nine) + 3 * (its three), one row of T
   floats kept in L1 for its NF biases. work: 11 * T floats of scratch. */
int dlp_minirocket_features(const float *restrict x, const int32_t *restrict mask, int B, int T,
                            int d, const int32_t *restrict idx, int K, const float *restrict bias,
                            int NF, int parity, float *restrict work, float *restrict out) {
    if (B < 0 || K < 1 || T < 1 || NF < 1 || d < 1) return 1;
    const int pad = 4 * d;
    float *g = work;            /* (9, T): 3 * x shifted by (i - 4) d, zero outside */
    float *a = work + 9 * T;    /* (T,): -(sum of the nine shifted copies) */
    float *c = work + 10 * T;   /* (T,): one kernel's output */
    for (int b = 0; b < B; b++) {
        const float *xb = x + (int64_t)b * T;
        const int32_t *m = mask + (int64_t)b * T;
        for (int t = 0; t < T; t++) a[t] = 0.0f;
        for (int i = 0; i < 9; i++) {
            const int shift = (i - 4) * d;
            float *gi = g + (int64_t)i * T;
            for (int t = 0; t < T; t++) {
                const int s = t + shift;
                const float v = (s >= 0 && s < T) ? xb[s] : 0.0f;
                gi[t] = 3.0f * v;
                a[t] -= v;
            }
        }
        int32_t count_all = 0, count_inner = 0;
        for (int t = 0; t < T; t++) count_all += m[t];
        for (int t = pad; t < T - pad; t++) count_inner += m[t];
        for (int k = 0; k < K; k++) {
            const float *g0 = g + (int64_t)idx[3 * k] * T;
            const float *g1 = g + (int64_t)idx[3 * k + 1] * T;
            const float *g2 = g + (int64_t)idx[3 * k + 2] * T;
            for (int t = 0; t < T; t++) c[t] = a[t] + g0[t] + g1[t] + g2[t];
            int lo = 0, hi = T;
            int32_t count = count_all;
            if ((k + parity) & 1) {
                lo = pad;
                hi = T - pad;
                count = count_inner;
            }
            const float inv = count > 0 ? 1.0f / (float)count : 0.0f;
            const float *bs = bias + (int64_t)k * NF;
            float *o = out + ((int64_t)b * K + k) * NF;
            for (int j = 0; j < NF; j++) {
                const float bj = bs[j];
                int32_t hits = 0;
                for (int t = lo; t < hi; t++) hits += (c[t] > bj) & m[t];
                o[j] = (float)hits * inv;
            }
        }
    }
    return 0;
}
