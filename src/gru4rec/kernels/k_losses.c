/* ---------------------------------------------------------------------------- losses */

/* BPR-max with score regularisation on the (m, n) raw scores r, overwritten with
 * d loss / d r (loss = sum of rows / batch). Row j's positive is column j; s is the softmax
 * of the row over its other columns. With x = ELU(r) (alpha 0: x = r),
 * sig_k = sigmoid(x_j - x_k), hit = sum s sig, reg = sum s x^2:
 *   loss_j = -log(hit + 1e-24) + bpreg reg
 *   d/dx_k = s_k (bpreg x_k (x_k + 2) - sig_k^2 / (hit+1e-24) + hit / (hit+1e-24) - bpreg reg)
 *   d/dx_j = -(hit - sum s sig^2) / (hit + 1e-24)
 * e and sg are scratch rows of n floats. Returns the summed row losses (not divided). */
static double bpr_max_row(float *x, int64_t j, int64_t n, float inv_batch, float bpreg,
                          float alpha, float *e, float *sg) {
    const v8f zero = splat(0.0f), one = splat(1.0f);
    {
        if (alpha > 0.0f) { /* ELU: x for x > 0, alpha (exp(x) - 1) otherwise */
            for (int64_t k = 0; k < n; k += W) {
                int64_t c = lanes(n, k);
                v8f v = loadn(x + k, c, 0.0f);
                v8f neg = alpha * (exp8(select8(v > zero, zero, v)) - 1.0f);
                storen(x + k, c, select8(v > zero, v, neg));
            }
        }
        float xp = x[j];
        x[j] = -INFINITY; /* max over the negatives only: no 0/0 when the positive wins big */
        float mx = row_max(x, n);
        x[j] = xp;
        /* e = exp(x - max) and sg = sigmoid(x_j - x) = 1 / (1 + e exp(max - x_j)): one exp
         * per score serves both (e <= 1 and exp8 clamps, so the product stays finite) */
        v8f vmx = splat(mx), shift = exp8(splat(mx - xp));
        for (int64_t k = 0; k < n; k += W) {
            int64_t c = lanes(n, k);
            v8f ev = exp8(loadn(x + k, c, 0.0f) - vmx);
            storen(e + k, c, ev);
            storen(sg + k, c, one / (one + ev * shift));
        }
        e[j] = 0.0f; /* the positive has weight 0 in the softmax over negatives */
        v8f se = zero, sh = zero, sq = zero, sd = zero;
        for (int64_t k = 0; k < n; k += W) {
            int64_t c = lanes(n, k);
            v8f ev = loadn(e + k, c, 0.0f), sv = loadn(sg + k, c, 0.0f);
            v8f v = loadn(x + k, c, 0.0f);
            se += ev;
            sh += ev * sv;
            sq += ev * (v * v);
            sd += ev * (sv * sv);
        }
        float sum_e = hsum8(se);
        float hit = hsum8(sh) / sum_e, reg = hsum8(sq) / sum_e, dsq = hsum8(sd) / sum_e;
        float hit_eps = hit + 1e-24f, inv_hit = 1.0f / hit_eps;
        double loss = -log((double)hit_eps) + (double)bpreg * reg;
        float c0 = hit * inv_hit - bpreg * reg, inv_sum = 1.0f / sum_e;
        float dpos = -(hit - dsq) * inv_hit;
        if (alpha > 0.0f) dpos *= xp > 0.0f ? 1.0f : xp + alpha;
        for (int64_t k = 0; k < n; k += W) {
            int64_t c = lanes(n, k);
            v8f v = loadn(x + k, c, 0.0f), ev = loadn(e + k, c, 0.0f);
            v8f sv = loadn(sg + k, c, 0.0f);
            v8f g = (ev * inv_sum) * (bpreg * (v * (v + 2.0f)) - (sv * sv) * inv_hit + c0);
            if (alpha > 0.0f) g *= select8(v > zero, one, v + alpha); /* ELU derivative */
            storen(x + k, c, g * inv_batch);
        }
        x[j] = dpos * inv_batch;
        return loss;
    }
}

double bpr_max_rows(float *r, int64_t m, int64_t n, float inv_batch, float bpreg,
                    float alpha) {
    double *loss = malloc((size_t)m * sizeof(double));
    int failed = loss == NULL;
    /* rows are independent: split them over the threads PyTorch uses (same OpenMP pool) */
#pragma omp parallel num_threads(threads_for(m * n)) reduction(| : failed)
    {
        float *e = malloc((size_t)(2 * n) * sizeof(float)); /* scratch: exp and sigmoid */
        failed |= e == NULL;
        if (e != NULL && loss != NULL) {
#pragma omp for schedule(static)
            for (int64_t j = 0; j < m; j++)
                loss[j] = bpr_max_row(r + j * n, j, n, inv_batch, bpreg, alpha, e, e + n);
        }
        free(e);
    }
    return sum_losses(loss, m, failed);
}

/* Softmax cross-entropy on the (m, n) raw scores r, overwritten with d loss / d r.
 * With log_q (n values, may be NULL) the scores are first shifted by -logq * log_q.
 * loss_j = -log(p_jj + 1e-24), gradient w_j (p_jk - [k == j]), w_j = p_jj/(p_jj+1e-24)/B.
 * Returns the summed row losses (not divided). */
static double xe_row(float *z, int64_t j, int64_t n, float inv_batch, const float *log_q,
                     float logq) {
    {
        if (log_q != NULL) {
            for (int64_t k = 0; k < n; k += W) {
                int64_t c = lanes(n, k);
                storen(z + k, c, loadn(z + k, c, 0.0f) - logq * loadn(log_q + k, c, 0.0f));
            }
        }
        v8f vmx = splat(row_max(z, n)), se = splat(0.0f);
        for (int64_t k = 0; k < n; k += W) {
            int64_t c = lanes(n, k);
            v8f ev = exp8(loadn(z + k, c, -INFINITY) - vmx); /* padding lanes: exp -> ~0 */
            storen(z + k, c, ev);
            se += c == W ? ev : select8(__builtin_convertvector(
                                            (v8f){0, 1, 2, 3, 4, 5, 6, 7} < (float)c, v8i),
                                        ev, splat(0.0f));
        }
        float sum_e = hsum8(se);
        float pj = z[j] / sum_e;
        double loss = -log((double)(pj + 1e-24f));
        float w = pj / (pj + 1e-24f) * inv_batch, scale = w / sum_e;
        for (int64_t k = 0; k < n; k += W) {
            int64_t c = lanes(n, k);
            storen(z + k, c, loadn(z + k, c, 0.0f) * scale);
        }
        z[j] -= w;
        return loss;
    }
}

double xe_rows(float *r, int64_t m, int64_t n, float inv_batch, const float *log_q,
               float logq) {
    double *loss = malloc((size_t)m * sizeof(double));
    if (loss == NULL) return NAN;
#pragma omp parallel for schedule(static) num_threads(threads_for(m * n))
    for (int64_t j = 0; j < m; j++) loss[j] = xe_row(r + j * n, j, n, inv_batch, log_q, logq);
    return sum_losses(loss, m, 0);
}

