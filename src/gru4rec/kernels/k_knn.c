/* ------------------------------------------------------------------------- session kNN */

/* The session-kNN baselines (gru4rec.baselines.sknn / vsknn), a chunk of prefixes a call:
 * the 'recent' candidate pool with each candidate's overlap statistics, the similarity and
 * the top-k neighbours (knn_neighbours), then the neighbours' item sums: their grouping by
 * (prefix, item) (knn_item_groups) and the sums (knn_item_sums). The numpy path builds the
 * pool with sorts of packed keys over the whole chunk and selects with np.partition; here a
 * heap merge of the prefix items' ascending session lists yields the candidates already in
 * recency order and stops after the M-th, a quickselect finds the k-th best similarity,
 * and the items are grouped by a small radix sort per prefix.
 *
 * The results equal the numpy path's bit for bit: the same candidates in the same order,
 * every float64 formula with the same operations in the same order (the library is
 * compiled with -ffp-contract=off), and the sums in numpy's own order (knn_pairwise).
 * Python: gru4rec.kernels.knn_wrappers, gru4rec.baselines.knn_kernel.
 *
 * Index arrays are int64, except the session and item lists of the index, which are int32
 * or int64 (a flag says which). Every index read is checked: a value out of range makes
 * the function return KNN_BAD_INDEX instead of reading outside an array. Single-threaded
 * (a chunk is ~1 ms of work); the scratch is allocated once per call. */

#define KNN_NO_MEMORY (-1)
#define KNN_NO_ROOM (-2)
#define KNN_BAD_INDEX (-3)

/* similarity kinds (gru4rec.kernels.knn_wrappers.KNN_SIMILARITIES) */
#define KNN_JACCARD 0  /* |A∩B| / (|A| + |B| - |A∩B|)                     c = |B|        */
#define KNN_COSINE 1   /* |A∩B| / (sqrt|A| * sqrt|B|)                      c = |B|        */
#define KNN_BINARY 2   /* 2|A∩B| / (2|A∩B| + |A| + |B|)                    c = |B|        */
#define KNN_VEC 3      /* Σw / c                                           c = max(|P|, 1) */
#define KNN_WCOSINE 4  /* Σw / (c * sqrt|A|), 0 where that is not > 0      c = sqrt Σ w²  */

static inline int64_t knn_at(const void *a, int wide, int64_t i) {
    return wide ? ((const int64_t *)a)[i] : (int64_t)((const int32_t *)a)[i];
}

/* The next unread session of one prefix item's list: the merge heap is ordered by
 * (session, pair), so that a session's pairs come out in pair order. */
typedef struct {
    int64_t session, pair, at, end;
} knn_head;

static inline int knn_head_less(const knn_head *a, const knn_head *b) { /* branch-free */
    return (a->session < b->session) | ((a->session == b->session) & (a->pair < b->pair));
}

static inline void knn_head_down(knn_head *h, int64_t n, int64_t i) {
    knn_head x = h[i];
    for (;;) {
        int64_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n) c += knn_head_less(&h[c + 1], &h[c]);
        if (!knn_head_less(&h[c], &x)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

static inline double knn_median3(double a, double b, double c) {
    double hi = a > b ? a : b, lo = a > b ? b : a;
    return c >= hi ? hi : c <= lo ? lo : c;
}

/* The k-th largest (1 <= k <= n) of the n values a, which it reorders: quickselect, the
 * pivot the median of three values at pseudo-random places (a fixed xorshift sequence: no
 * input order makes it quadratic in practice, and the answer does not depend on it); each
 * round two branch-free passes split the range into values above, equal to and below the
 * pivot, so that ties cost no extra rounds. */
static double knn_kth_largest(double *a, int64_t n, int64_t k) {
    int64_t lo = 0, hi = n, want = k - 1; /* the answer is a[want] of a descending order */
    uint64_t x = 0x9E3779B97F4A7C15u;
    while (hi - lo > 1) {
        int64_t at[3];
        for (int i = 0; i < 3; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            at[i] = (int64_t)(x % (uint64_t)(hi - lo));
        }
        double pivot = knn_median3(a[lo + at[0]], a[lo + at[1]], a[lo + at[2]]);
        int64_t above = lo, equal;
        for (int64_t j = lo; j < hi; j++) { /* [lo, above): > pivot */
            double v = a[j];
            a[j] = a[above], a[above] = v;
            above += v > pivot;
        }
        if (want < above) {
            hi = above;
            continue;
        }
        equal = above;
        for (int64_t j = above; j < hi; j++) { /* [above, equal): == pivot */
            double v = a[j];
            a[j] = a[equal], a[equal] = v;
            equal += v == pivot;
        }
        if (want < equal) return pivot;
        lo = equal;
    }
    return a[lo];
}

/* The similarities of the n candidates (session ranks `session`, shared pairs `count`,
 * weight sums `total`) of a prefix whose constant is c, as gru4rec.baselines.sknn / vsknn
 * compute them (float64, the same operations in the same order); |A| comes from the
 * session sizes. One loop per kind, so that each vectorises. */
static void knn_similarities(int kind, int64_t n, const int64_t *session, const int64_t *count,
                             const double *total, const int64_t *session_indptr, double c,
                             double *sim) {
#define KNN_SIZE(j) ((double)(session_indptr[session[j] + 1] - session_indptr[session[j]]))
    switch (kind) {
    case KNN_VEC:
        for (int64_t j = 0; j < n; j++) sim[j] = total[j] / c;
        break;
    case KNN_WCOSINE:
        for (int64_t j = 0; j < n; j++) {
            double denom = c * sqrt(KNN_SIZE(j));
            sim[j] = denom > 0 ? total[j] / denom : 0.0;
        }
        break;
    case KNN_COSINE:
        for (int64_t j = 0; j < n; j++)
            sim[j] = (double)count[j] / (sqrt(KNN_SIZE(j)) * sqrt(c));
        break;
    case KNN_BINARY:
        for (int64_t j = 0; j < n; j++) {
            double both = (double)count[j];
            sim[j] = 2 * both / (2 * both + KNN_SIZE(j) + c);
        }
        break;
    default: /* KNN_JACCARD */
        for (int64_t j = 0; j < n; j++) {
            double both = (double)count[j];
            sim[j] = both / (KNN_SIZE(j) + c - both);
        }
    }
#undef KNN_SIZE
}

/* The candidates of one prefix, from the heads (nh) of its items' session lists: at most
 * `limit` sessions in rank order, each with its pair count, weight sum (Pool.weight: w
 * alone, else 0.0 + w0 + w1 + ... in pair order; pair_weight NULL: not summed) and last
 * pair, in c_*. Returns their number, or KNN_BAD_INDEX.
 *
 * Fast: the heap yields (session, pair) in order, O(log nh) a step; and while the root's
 * list runs below every other head (the children of the root), its sessions are
 * candidates of that one pair, taken in a tight loop without heap steps. */
static int64_t knn_pool_row(knn_head *heads, int64_t nh, const void *item_sessions,
                            int sessions64, int64_t n_sessions, const double *pair_weight,
                            int64_t limit, int64_t *c_session, int64_t *c_count,
                            double *c_total, int64_t *c_last) {
    int64_t nc = 0;
    for (int64_t i = nh / 2 - 1; i >= 0; i--) knn_head_down(heads, nh, i);
    while (nh > 0) {
        knn_head *h = &heads[0];
        int64_t s = h->session, p = h->pair;
        if (nc == 0 || s != c_session[nc - 1]) {
            if (nc == limit) return nc; /* the limit-th candidate is complete */
            if (s < 0 || s >= n_sessions) return KNN_BAD_INDEX;
            c_session[nc] = s, c_count[nc] = 0, c_total[nc] = 0.0;
            nc++;
        }
        int64_t c = nc - 1, n = ++c_count[c];
        double w = pair_weight != NULL ? pair_weight[p] : 0.0;
        c_total[c] = n == 1 ? w : n == 2 ? (0.0 + c_total[c]) + w : c_total[c] + w;
        c_last[c] = p;
        /* the run: sessions below every other head hold no other pair */
        int64_t below = nh < 2 ? INT64_MAX : heads[1].session, at = h->at + 1;
        if (nh > 2 && heads[2].session < below) below = heads[2].session;
        for (; at < h->end; at++) {
            int64_t s2 = knn_at(item_sessions, sessions64, at);
            if (s2 >= below) break;
            if (nc == limit) return nc;
            if (s2 < 0 || s2 >= n_sessions) return KNN_BAD_INDEX;
            c_session[nc] = s2, c_count[nc] = 1, c_total[nc] = w, c_last[nc] = p;
            nc++;
        }
        if (at < h->end)
            h->at = at, h->session = knn_at(item_sessions, sessions64, at);
        else
            heads[0] = heads[--nh];
        knn_head_down(heads, nh, 0);
    }
    return nc;
}

/* The neighbours of n_rows prefixes. Prefix r has the distinct items pair_item[pair_start[r]
 * : pair_start[r + 1]] (its "pairs"), of weights pair_weight (V-SKNN; NULL: SKNN, which
 * counts the shared pairs only) and the constant row_const[r] of the similarity `kind`.
 *
 * Its pool is the union of the items' session lists (item_sessions[item_indptr[i] :
 * item_indptr[i + 1]], recency ranks ascending); sample_size M > 0 keeps the M lowest
 * ranks. Each candidate gets |A∩B| (the pairs holding it), Σ w over those pairs (a running
 * sum in pair order, starting from 0.0 when there are several, as Pool.weight), its last
 * pair and the similarity; of those with similarity > 0, the k most similar are kept, ties
 * to the lower rank (as neighbours.top_k), and written in candidate order (rank ascending)
 * to out_session / out_sim / out_last (the last pair, when out_last is not NULL), prefix r's
 * at out_start[r] : out_start[r + 1], at most `capacity` in all.
 *
 * Fast: the merge reads each list only up to the M-th candidate, O(log |P|) an entry, and
 * needs no sort; the selection is a quickselect of the k-th largest similarity, expected
 * O(C), with branch-free partitions (numpy: np.partition, branchy). The scratch (sized by
 * the largest prefix) is allocated once per call. Returns the neighbours written, or
 * KNN_NO_MEMORY, KNN_NO_ROOM (capacity too small) or KNN_BAD_INDEX. */
int64_t knn_neighbours(const int64_t *item_indptr, int64_t n_items, const void *item_sessions,
                       int64_t n_entries, int sessions64, const int64_t *session_indptr,
                       int64_t n_sessions, const int64_t *pair_start, int64_t n_rows,
                       const int64_t *pair_item, const double *pair_weight,
                       const double *row_const, int kind, int64_t sample_size, int64_t k,
                       int64_t capacity, int64_t *out_start, int64_t *out_session,
                       double *out_sim, int64_t *out_last) {
    /* scratch sizes: the most pairs of a prefix, the most candidates of a prefix */
    int64_t most_pairs = 1, most_cands = 1;
    if (pair_start[0] != 0) return KNN_BAD_INDEX;
    for (int64_t r = 0; r < n_rows; r++) {
        int64_t pa = pair_start[r], pb = pair_start[r + 1], entries = 0;
        if (pb < pa) return KNN_BAD_INDEX;
        for (int64_t p = pa; p < pb; p++) {
            int64_t item = pair_item[p];
            if (item < 0 || item >= n_items) return KNN_BAD_INDEX;
            int64_t len = item_indptr[item + 1] - item_indptr[item];
            if (item_indptr[item] < 0 || len < 0 || item_indptr[item + 1] > n_entries)
                return KNN_BAD_INDEX;
            entries += sample_size > 0 && len > sample_size ? sample_size : len;
        }
        if (sample_size > 0 && entries > sample_size) entries = sample_size;
        if (pb - pa > most_pairs) most_pairs = pb - pa;
        if (entries > most_cands) most_cands = entries;
    }
    knn_head *heads = malloc((size_t)most_pairs * sizeof *heads);
    int64_t *cand = malloc((size_t)most_cands * 3 * sizeof *cand);
    double *sims = malloc((size_t)most_cands * 3 * sizeof *sims);
    unsigned char *keep = malloc((size_t)most_cands);
    int64_t status = 0, n_out = 0;
    if (!heads || !cand || !sims || !keep) {
        status = KNN_NO_MEMORY;
        goto done;
    }
    int64_t *c_session = cand, *c_count = cand + most_cands, *c_last = cand + 2 * most_cands;
    double *c_sim = sims, *c_total = sims + most_cands, *pool_sims = sims + 2 * most_cands;

    for (int64_t r = 0; r < n_rows; r++) {
        out_start[r] = n_out;
        int64_t pa = pair_start[r], pb = pair_start[r + 1], nh = 0;
        /* the merge: one head per non-empty list, the M-th candidate ends it */
        for (int64_t p = pa; p < pb; p++) {
            int64_t at = item_indptr[pair_item[p]], end = item_indptr[pair_item[p] + 1];
            if (sample_size > 0 && end - at > sample_size) end = at + sample_size;
            if (at >= end) continue;
            heads[nh++] = (knn_head){knn_at(item_sessions, sessions64, at), p, at, end};
        }
        int64_t limit = sample_size > 0 && sample_size < most_cands ? sample_size : most_cands;
        int64_t nc = knn_pool_row(heads, nh, item_sessions, sessions64, n_sessions, pair_weight,
                                  limit, c_session, c_count, c_total, c_last);
        if (nc < 0) {
            status = nc;
            goto done;
        }
        /* similarities, and the k best of those > 0 */
        knn_similarities(kind, nc, c_session, c_count, c_total, session_indptr, row_const[r],
                         c_sim);
        int64_t positive = 0;
        for (int64_t c = 0; c < nc; c++) {
            keep[c] = c_sim[c] > 0;
            positive += keep[c];
        }
        if (positive > k) { /* as top_k: the k-th largest v, all > v, the first ones = v */
            int64_t n = 0;
            for (int64_t c = 0; c < nc; c++) pool_sims[n] = c_sim[c], n += keep[c];
            double v = knn_kth_largest(pool_sims, n, k);
            int64_t room = k;
            for (int64_t c = 0; c < nc; c++) {
                keep[c] = c_sim[c] > v;
                room -= keep[c];
            }
            for (int64_t c = 0; c < nc && room > 0; c++)
                if (c_sim[c] == v) keep[c] = 1, room--;
            positive = k;
        }
        if (n_out + positive > capacity) {
            status = KNN_NO_ROOM;
            goto done;
        }
        for (int64_t c = 0; c < nc; c++) {
            if (!keep[c]) continue;
            out_session[n_out] = c_session[c];
            out_sim[n_out] = c_sim[c];
            if (out_last != NULL) out_last[n_out] = c_last[c];
            n_out++;
        }
    }
    out_start[n_rows] = n_out;
    status = n_out;
done:
    free(heads);
    free(cand);
    free(sims);
    free(keep);
    return status;
}

/* Sort the m entries a (item << k_bits | source, sources ascending) stably by item, the
 * c_bits above k_bits: LSD radix sort, 8 bits a pass, through b; returns a or b, whichever
 * holds the result. Fast: the counters and a prefix's entries stay in L1, no comparisons;
 * a pass whose digit is the same for all entries is skipped. */
static int64_t *knn_radix_by_item(int64_t *a, int64_t *b, int64_t m, int k_bits, int c_bits) {
    for (int shift = k_bits; shift < k_bits + c_bits; shift += 8) {
        int64_t count[256] = {0};
        for (int64_t j = 0; j < m; j++) count[(a[j] >> shift) & 255]++;
        if (m == 0 || count[(a[0] >> shift) & 255] == m) continue;
        for (int64_t d = 0, at = 0; d < 256; d++) {
            int64_t n = count[d];
            count[d] = at;
            at += n;
        }
        for (int64_t j = 0; j < m; j++) b[count[(a[j] >> shift) & 255]++] = a[j];
        int64_t *t = a;
        a = b, b = t;
    }
    return a;
}

/* The grouping of gru4rec.baselines.neighbours.ItemSums.of, bit for bit. Sources are the k1
 * neighbours (prefix src_row[j], the items of session src_session[j]; source j) then the k2
 * single (prefix extra_row[j], item extra_item[j]) entries (source k1 + j); both row lists
 * ascending. Writes the sorted bit fields prefix | item | source of every (source, item)
 * to packed (`capacity` = their number), and for every distinct (prefix, item), in that
 * order, where its run begins (first) and prefix << c_bits | item (keys).
 *
 * Fast: per prefix, its entries gathered in source order, a radix sort by item in L1
 * (stable: sources stay ascending) and one pass to write them out, where numpy sorts the
 * whole chunk's 64-bit keys. Scratch: two arrays of `capacity`, allocated once. Returns
 * the distinct entries, or KNN_NO_MEMORY or KNN_BAD_INDEX (an index out of range, rows not
 * ascending, capacity not the number of entries). */
int64_t knn_item_groups(const int64_t *session_indptr, int64_t n_sessions,
                        const void *session_items, int64_t n_entries, int items64,
                        const int64_t *src_row, const int64_t *src_session, int64_t k1,
                        const int64_t *extra_row, const int64_t *extra_item, int64_t k2,
                        int64_t n_rows, int64_t n_cols, int c_bits, int k_bits,
                        int64_t capacity, int64_t *packed, int64_t *first, int64_t *keys) {
    size_t size = (size_t)(capacity > 0 ? capacity : 1);
    int64_t *entry = malloc(size * sizeof *entry), *spare = malloc(size * sizeof *spare);
    int64_t status = 0, n_keys = 0, base = 0, i1 = 0, i2 = 0;
    if (!entry || !spare) {
        status = KNN_NO_MEMORY;
        goto done;
    }
    for (int64_t r = 0; r < n_rows; r++) {
        /* the entries item << k_bits | source of prefix r, in source order (its sources are
         * runs of the ascending row lists) */
        int64_t m = 0;
        for (; i1 < k1 && src_row[i1] == r; i1++) {
            int64_t s = src_session[i1];
            if (s < 0 || s >= n_sessions || session_indptr[s] < 0 ||
                session_indptr[s + 1] > n_entries ||
                base + m + session_indptr[s + 1] - session_indptr[s] > capacity) {
                status = KNN_BAD_INDEX;
                goto done;
            }
            for (int64_t e = session_indptr[s]; e < session_indptr[s + 1]; e++) {
                int64_t item = knn_at(session_items, items64, e);
                if (item < 0 || item >= n_cols) {
                    status = KNN_BAD_INDEX;
                    goto done;
                }
                entry[m++] = (item << k_bits) | i1;
            }
        }
        for (; i2 < k2 && extra_row[i2] == r; i2++) {
            int64_t item = extra_item[i2];
            if (item < 0 || item >= n_cols || base + m + 1 > capacity) {
                status = KNN_BAD_INDEX;
                goto done;
            }
            entry[m++] = (item << k_bits) | (k1 + i2);
        }
        /* by item, then the runs: a key is written at every entry, kept where new */
        const int64_t *sorted = knn_radix_by_item(entry, spare, m, k_bits, c_bits);
        int64_t head = r << (c_bits + k_bits), prev = -1;
        for (int64_t j = 0; j < m; j++) {
            int64_t v = sorted[j], item = v >> k_bits;
            packed[base + j] = head | v;
            first[n_keys] = base + j;
            keys[n_keys] = (r << c_bits) | item;
            n_keys += item != prev;
            prev = item;
        }
        base += m;
    }
    /* every source's row was < n_rows and the lists ascending, so all were read */
    status = i1 == k1 && i2 == k2 && base == capacity ? n_keys : KNN_BAD_INDEX;
done:
    free(entry);
    free(spare);
    return status;
}

/* The sum of the n doubles a[0..n) in numpy's pairwise order (what np.add.reduce and the
 * reduce step of np.add.reduceat compute on a contiguous float64 run): below 8 values one
 * running sum from -0.0; up to 128, eight running sums over the 8-strided lanes, combined
 * as ((0+1)+(2+3))+((4+5)+(6+7)), then the rest one by one; above, the two halves (the
 * first a multiple of 8 long) summed this way and added. */
static double knn_pairwise(const double *a, int64_t n) {
    if (n < 8) {
        double res = -0.0;
        for (int64_t i = 0; i < n; i++) res += a[i];
        return res;
    }
    if (n <= 128) {
        double s[8];
        for (int j = 0; j < 8; j++) s[j] = a[j];
        int64_t i = 8;
        for (; i < n - n % 8; i += 8)
            for (int j = 0; j < 8; j++) s[j] += a[i + j];
        double res = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
        for (; i < n; i++) res += a[i];
        return res;
    }
    int64_t half = n / 2;
    half -= half % 8;
    return knn_pairwise(a, half) + knn_pairwise(a + half, n - half);
}

/* ItemSums.sum, bit for bit: for each of the nnz runs of the (n,) sorted bit fields
 * `packed` (prefix | item | source, run e from first[e] to first[e + 1] or n), the sum of
 * values[source] (times factor[item] when factor is not NULL) over its entries, as
 * np.add.reduceat sums a run: its first value plus the pairwise sum of the others.
 *
 * Fast: one pass, the products in a scratch row allocated once per call, where numpy
 * makes three temporaries and two gathers. Returns 0, KNN_NO_MEMORY or KNN_BAD_INDEX. */
int64_t knn_item_sums(const int64_t *packed, int64_t n, const int64_t *first, int64_t nnz,
                      const double *values, int64_t n_values, const double *factor,
                      int64_t n_factor, int c_bits, int k_bits, double *out) {
    if (nnz == 0) return 0;
    double *each = malloc((size_t)n * sizeof *each);
    if (each == NULL) return KNN_NO_MEMORY;
    int64_t k_mask = ((int64_t)1 << k_bits) - 1, c_mask = ((int64_t)1 << c_bits) - 1;
    int64_t status = 0;
    for (int64_t j = 0; j < n; j++) {
        int64_t src = packed[j] & k_mask;
        if (src >= n_values) {
            status = KNN_BAD_INDEX;
            goto done;
        }
        each[j] = values[src];
        if (factor != NULL) {
            int64_t item = (packed[j] >> k_bits) & c_mask;
            if (item >= n_factor) {
                status = KNN_BAD_INDEX;
                goto done;
            }
            each[j] = each[j] * factor[item];
        }
    }
    for (int64_t e = 0; e < nnz; e++) {
        int64_t a = first[e], b = e + 1 < nnz ? first[e + 1] : n;
        if (a < 0 || b <= a || b > n) {
            status = KNN_BAD_INDEX;
            goto done;
        }
        out[e] = b - a == 1 ? each[a] : each[a] + knn_pairwise(each + a + 1, b - a - 1);
    }
done:
    free(each);
    return status;
}
