/* ---------------------------------------------------------------------------- GRU cell */

/* The element-wise parts of one GRU layer (gru4rec.nn.network: gates [candidate, reset,
 * update], reset applied to h before the recurrent product, tanh candidate). The matrix
 * products between them stay in BLAS; fusing the ~10 small tensor ops on each side of them
 * into one pass removes most of a step's dispatch overhead. a: (m, 3H) input
 * pre-activations (bias included, row stride lda); all other matrices are contiguous. */
static inline v8f sigmoid8(v8f x) { return 1.0f / (1.0f + exp8(-x)); }
static inline v8f tanh8(v8f x) { /* sign(x) (1 - e) / (1 + e), e = exp(-2|x|) <= 1 */
    v8f ax = select8(x < splat(0.0f), -x, x);
    v8f e = exp8(-2.0f * ax);
    v8f t = (1.0f - e) / (1.0f + e);
    return select8(x < splat(0.0f), -t, t);
}

/* rz = sigmoid(a[:, H:] + hr) (m, 2H) and rh = r * h (m, H), with hr = h @ Wrz (m, 2H). */
void gru_gates(const float *a, int64_t lda, const float *hr, const float *h, int64_t m,
               int64_t hd, float *rz, float *rh) {
    for (int64_t i = 0; i < m; i++) {
        const float *ai = a + i * lda + hd, *hri = hr + i * 2 * hd, *hi = h + i * hd;
        float *rzi = rz + i * 2 * hd;
        for (int64_t k = 0; k < 2 * hd; k += W) {
            int64_t c = lanes(2 * hd, k);
            storen(rzi + k, c, sigmoid8(loadn(ai + k, c, 0.0f) + loadn(hri + k, c, 0.0f)));
        }
        for (int64_t k = 0; k < hd; k += W) {
            int64_t c = lanes(hd, k);
            storen(rh + i * hd + k, c, loadn(rzi + k, c, 0.0f) * loadn(hi + k, c, 0.0f));
        }
    }
}

/* c = tanh(a[:, :H] + hc) and out = lerp(h, c, z) (as torch.lerp computes it) times the
 * dropout multiplier (mask may be NULL), with hc = (r * h) @ Wh. When h_aug is given the
 * output is also written into its first H columns (row stride H + 1). */
void gru_output(const float *a, int64_t lda, const float *hc, const float *h, const float *rz,
                const float *mask, int64_t m, int64_t hd, float *c_out, float *out,
                float *h_aug) {
    for (int64_t i = 0; i < m; i++) {
        const float *ai = a + i * lda, *hci = hc + i * hd, *hi = h + i * hd;
        const float *zi = rz + i * 2 * hd + hd;
        for (int64_t k = 0; k < hd; k += W) {
            int64_t c = lanes(hd, k);
            v8f cv = tanh8(loadn(ai + k, c, 0.0f) + loadn(hci + k, c, 0.0f));
            v8f hv = loadn(hi + k, c, 0.0f), zv = loadn(zi + k, c, 0.0f);
            v8f o = select8(zv < splat(0.5f), hv + zv * (cv - hv),
                            cv - (cv - hv) * (1.0f - zv));
            if (mask != NULL) o = o * loadn(mask + i * hd + k, c, 0.0f);
            storen(c_out + i * hd + k, c, cv);
            storen(out + i * hd + k, c, o);
            if (h_aug != NULL) storen(h_aug + i * (hd + 1) + k, c, o);
        }
    }
}

/* Backward, part 1, from dout = d loss / d out (m, H; times the dropout multiplier when
 * mask is given): the candidate and update-gate pre-activation gradients,
 * dvx[:, :H] = dout z (1 - c^2) and dvx[:, 2H:] = dout (c - h) z (1 - z). */
void gru_back_out(const float *dout, const float *mask, const float *rz, const float *c,
                  const float *h, int64_t m, int64_t hd, float *dvx) {
    for (int64_t i = 0; i < m; i++) {
        const float *zi = rz + i * 2 * hd + hd;
        float *di = dvx + i * 3 * hd;
        for (int64_t k = 0; k < hd; k += W) {
            int64_t n = lanes(hd, k), o = i * hd + k;
            v8f d = loadn(dout + o, n, 0.0f);
            if (mask != NULL) d = d * loadn(mask + o, n, 0.0f);
            v8f zv = loadn(zi + k, n, 0.0f), cv = loadn(c + o, n, 0.0f);
            v8f hv = loadn(h + o, n, 0.0f);
            storen(di + k, n, (d * zv) * (1.0f - cv * cv));
            storen(di + 2 * hd + k, n, (d * (cv - hv)) * (zv * (1.0f - zv)));
        }
    }
}

/* Backward, part 2: dvx[:, H:2H] = dr h r (1 - r) with dr = dvx[:, :H] @ Wh^T (m, H), and
 * db (3H) = the column sums of dvx (rows added in order). */
void gru_back_gates(const float *dr, const float *h, const float *rz, int64_t m, int64_t hd,
                    float *dvx, float *db) {
    for (int64_t i = 0; i < m; i++) {
        const float *ri = rz + i * 2 * hd;
        float *di = dvx + i * 3 * hd + hd;
        for (int64_t k = 0; k < hd; k += W) {
            int64_t n = lanes(hd, k), o = i * hd + k;
            v8f rv = loadn(ri + k, n, 0.0f);
            v8f g = (loadn(dr + o, n, 0.0f) * loadn(h + o, n, 0.0f)) * (rv * (1.0f - rv));
            storen(di + k, n, g);
        }
    }
    for (int64_t k = 0; k < 3 * hd; k += W) {
        int64_t n = lanes(3 * hd, k);
        v8f acc = splat(0.0f);
        for (int64_t i = 0; i < m; i++) acc += loadn(dvx + i * 3 * hd + k, n, 0.0f);
        storen(db + k, n, acc);
    }
}

