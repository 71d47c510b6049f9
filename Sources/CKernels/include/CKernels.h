// CKernels: float compute kernels with run-time CPU dispatch (AVX-512, AVX2+FMA, portable C).
// No Swift API of its own: SwiftQKernels wraps it.
#ifndef SWIFTQ_CKERNELS_H
#define SWIFTQ_CKERNELS_H
#include <stddef.h>
#include <stdint.h>

/// The instruction set the kernels picked on this CPU: 3 AVX-512, 2 AVX2+FMA, 0 portable C.
int sq_cpu_level(void);
/// Forces a level no higher than the CPU has (for tests); returns the level in force.
int sq_set_cpu_level(int level);

/// Floats needed by sq_pack_a for an M x K matrix.
size_t sq_packed_a_size(int M, int K);
/// Packs row-major A (M x K, row stride lda) into the layout sq_gemm_packed reads.
void sq_pack_a(int M, int K, const float *A, int lda, float *packed);

/// The row-panel height of a packed A: row ranges given to sq_gemm_packed start at multiples of it.
int sq_packed_mr(const float *packedA);

/// C[M x N] (row stride ldc) = A · B[K x N] (row stride ldb) for rows [m0, m1) and columns [n0, n1), A packed
/// by sq_pack_a (m0 a multiple of sq_packed_mr). Then, per row i: + bias[i] (if bias), clamped to [lo, hi].
/// With accumulate != 0, C is added to instead of overwritten (bias then not added). Single-threaded:
/// callers split the rows or the columns between threads.
void sq_gemm_packed(int M, int N, int K, const float *packedA, const float *B, int ldb, float *C, int ldc,
                    int m0, int m1, int n0, int n1, const float *bias, float lo, float hi, int accumulate);

/// Output rows [oh0, oh0 + rows) of a stride-1 convolution on xpad (x[C][H][W] at row PT, column PL of Hp x Wp zero
/// planes: sq_shift_planes with KW = 1, DW = 0, OW = Wp; and at
/// least 16 readable floats past the last plane) with weights packed at level 2 (AVX2) by sq_pack_a (M x C·KH·KW),
/// into y[M][ohw] at row·OW: + bias[m], clamped to [lo, hi]. `tile` holds M x round_up((rows - 1)·Wp + OW, 16)
/// floats. The sums of im2col + sq_gemm_packed, bit for bit.
void sq_conv_indirect_band(int M, const float *packedA, const float *xpad, int C, int Hp, int Wp, int KH, int KW, int DH, int DW,
                           int oh0, int rows, int OW, float *tile, float *y, int ohw, const float *bias, float lo, float hi);

/// The rows [0, Hq) of x[C][H][W] padded by PT on top, shifted per kernel column: xq[kw][c][r][ow] =
/// x[c][r - PT][ow + kw·DW - PL] for ow in [0, OW), 0 outside the image (KW·C·Hq·OW floats).
void sq_shift_planes(const float *x, int C, int H, int W, int KW, int DW, int PT, int PL, int Hq, int OW, float *xq);
/// Output rows [0, rows) of a stride-1 convolution on xq (sq_shift_planes, Hq = rows + (KH - 1)·DH, and at least 16
/// readable floats past its end) with weights packed at level 2 (AVX2) by sq_pack_a (M x C·KH·KW), into y[m·ldy +
/// oh·OW + ow] for rows m in [m0, m1) (m0 a multiple of sq_packed_mr): + bias[m], clamped to [lo, hi]. The sums of
/// im2col + sq_gemm_packed, bit for bit.
void sq_conv_shifted_band(int M, const float *packedA, const float *xq, int C, int Hq, int KH, int KW, int DH, int rows, int OW,
                          float *y, int ldy, const float *bias, float lo, float hi, int m0, int m1);
/// im2col for one group of a 2-D convolution on one image: col[(c*KH + kh)*KW + kw][oh*OW + ow], for
/// output rows [oh0, oh1) (the other columns of col are left alone).
void sq_im2col(const float *x, int C, int H, int W, int KH, int KW, int SH, int SW, int DH, int DW,
               int PT, int PL, int OH, int OW, int oh0, int oh1, float *col);

/// sq_gemm_packed (accumulate 0) and then C += R over the same rows and columns, R laid out as C (row stride ldc): on
/// AVX-512 within the product's own stores.
void sq_gemm_packed_residual(int M, int N, int K, const float *packedA, const float *B, int ldb, float *C, int ldc,
                             int m0, int m1, int n0, int n1, const float *bias, float lo, float hi, const float *R);

/// 3x3 stride-1 convolution (dilation 1, group 1) by Winograd's F(4x4, 3x3), at every level (winograd.c).
/// Floats needed by sq_winograd_pack for M output and C input channels.
size_t sq_winograd_packed_size(int M, int C);
/// Transforms weights w (M x C x 3 x 3) and packs the 36 transformed M x C matrices for sq_gemm_packed.
void sq_winograd_pack(int M, int C, const float *w, float *packed);
/// Tiles of an OH x OW output: 4x4 blocks, ceil(OH / 4) rows of ceil(OW / 4), numbered row by row.
int sq_winograd_tiles(int OH, int OW);
/// Tiles [t0, t1) of output channels [m0, m1) (m0 a multiple of sq_packed_mr of the packed matrices) of one image:
/// y[m] = w * x[C][H][W] with PT rows and PL columns of zeros before the image (and as many after as the OH x OW
/// output needs), + bias[m], clamped to [lo, hi].
void sq_winograd_conv3x3(const float *x, int C, int H, int W, int PT, int PL, const float *packed, int M, float *y, int OH, int OW,
                         const float *bias, float lo, float hi, int t0, int t1, int m0, int m1);
/// The same from the raw weights, one tile at a time in plain arithmetic: sq_winograd_conv3x3's values at level 0,
/// bit for bit (C <= 256: the products sum the channels in one run).
void sq_winograd_ref(const float *x, int C, int H, int W, int PT, int PL, const float *w, int M, float *y, int OH, int OW,
                     const float *bias, float lo, float hi);

/// Lower Cholesky factor l of the symmetric positive definite n x n matrix a (row-major); 0 when a is not.
int sq_cholesky(const double *a, int n, double *l);
/// m = L⁻¹ for a lower triangular l with a positive diagonal (lower too).
void sq_lower_inverse(const double *l, int n, double *m);

/// Frees the scratch the kernels keep per thread (float GEMM packing, depthwise phases, int8 GEMM rows, pooling rows);
/// the end of the thread frees it too.
void sq_release_thread_buffers(void);
/// Gram matrix of k rows of length n: h[a*k + c] = sum_r x[a*n + r] * x[c*n + r] (k x k, symmetric).
void sq_gram(const float *x, int k, int n, float *h);
void sq_gram_ref(const float *x, int k, int n, float *h);
/// dst[a*k + c] += h[a*k + c] (widened to double) for c <= a: the lower triangle of a k x k float matrix added to doubles.
void sq_add_lower_f64(const float *h, int k, double *dst);
/// t = the transpose of the k x rows row-major matrix x (t is rows x k).
void sq_transpose(const float *x, int k, int rows, float *t);

/// Depthwise 2-D convolution of channels [c0, c1) of one image: y[c] = w[c] * x[c] (+ bias[c]), clamped.
void sq_depthwise(const float *x, int H, int W, const float *w, int KH, int KW, int SH, int SW, int DH, int DW,
                  int PT, int PL, float *y, int OH, int OW, const float *bias, float lo, float hi, int c0, int c1);



/// Direct 3x3 (and 5x5 depthwise) kernels (dilation 1, stride 1 or 2 both ways), AVX-512 only: call when sq_cpu_level() == 3.
/// Depthwise convolution of channels [c0, c1) and output rows [oh0, oh1), as sq_depthwise with KH = KW = K (3 or 5);
/// input channel c starts at x + c * xplane (H * W for a whole tensor; more for a band of rows in a larger buffer).
void sq_dw_avx512(const float *x, int H, int W, size_t xplane, const float *w, int K, int stride, int PT, int PL, float *y, int OH,
                  int OW, const float *bias, float lo, float hi, int c0, int c1, int oh0, int oh1);
/// The same for AVX2 + FMA (direct_avx2.c): call when sq_cpu_level() >= 2.
void sq_dw_avx2(const float *x, int H, int W, size_t xplane, const float *w, int K, int stride, int PT, int PL, float *y, int OH,
                int OW, const float *bias, float lo, float hi, int c0, int c1, int oh0, int oh1);
/// sq_dw_avx512 or sq_dw_avx2, whichever this CPU runs (sq_cpu_level() >= 2).
void sq_dw(const float *x, int H, int W, size_t xplane, const float *w, int K, int stride, int PT, int PL, float *y, int OH, int OW,
           const float *bias, float lo, float hi, int c0, int c1, int oh0, int oh1);
/// 3x3 max pooling of planes [p0, p1); windows reaching past the image (pads, ceil_mode) ignore those cells.
void sq_maxpool3x3_avx512(const float *x, int H, int W, int stride, int PT, int PL, float *y, int OH, int OW, int p0, int p1);
/// The same for AVX2 + FMA (direct_avx2.c).
void sq_maxpool3x3_avx2(const float *x, int H, int W, int stride, int PT, int PL, float *y, int OH, int OW, int p0, int p1);
/// Floats needed by sq_pack_mt for an M x K matrix.
size_t sq_pack_mt_size(int M, int K);
/// Repacks a matrix packed by sq_pack_a (M x K) as [M / 32 blocks][K][32 rows] (zeros past M), for sq_gemm_mt.
void sq_pack_mt(int M, int K, const float *packedA, float *out);
/// AVX-512 only. Rows [m0, m1) (m0 a multiple of 32) of C = A * B (+ bias per row), clamped to [lo, hi], for a B of
/// few columns: vectors along the rows of A (weights from sq_pack_mt). The same values as sq_gemm_packed.
void sq_gemm_mt(int M, int N, int K, const float *packed, const float *B, int ldb, float *C, int ldc, int m0, int m1,
                const float *bias, float lo, float hi);
/// The columns of one sq_gemm_mt tile (column ranges split at its multiples keep whole tiles).
int sq_gemm_mt_columns(void);
/// Makes the bytes at p the range sq_gemm_mt fetches into cache while it computes (a later layer's weights), one cache
/// line per step of its sums, on every thread; NULL clears it. Changes no value.
void sq_fetch_ahead(const void *p, size_t bytes);
/// Bytes of that range not yet fetched.
size_t sq_fetch_ahead_pending(void);
/// Output channels per block of sq_conv3x3_pack's layout: a range of whole blocks is a smaller convolution of its own
/// (packed + b0 * C * 9 * SQ_CONV3X3_BLOCK, its channels' outputs and biases).
enum { SQ_CONV3X3_BLOCK = 8 };
/// Floats needed by sq_conv3x3_pack for M output and C input channels.
size_t sq_conv3x3_packed_size(int M, int C);
/// Packs M x C x 3 x 3 weights as [M/8 blocks][C][9][8 outputs], zero-filled past M.
void sq_conv3x3_pack(int M, int C, const float *w, float *packed);
/// Full (group 1) 3x3 convolution of one image for output rows [oh0, oh1): y = w * x (+ bias), clamped. y holds OH
/// rows per output channel, the first of them output row `row0` (0 for the whole output; a band's first row else).
void sq_conv3x3_avx512(const float *x, int C, int H, int W, const float *packed, int M, int stride, int PT, int PL,
                       float *y, int OH, int OW, const float *bias, float lo, float hi, int oh0, int oh1, int row0);

/// Floats needed by sq_conv3x3_lanes_pack for M output and C input channels.
size_t sq_conv3x3_lanes_size(int M, int C);
/// Repacks weights packed by sq_conv3x3_pack as [M/32 groups][C][9][32 outputs], zero-filled past M, for
/// sq_conv3x3_lanes_avx512.
void sq_conv3x3_lanes_pack(int M, int C, const float *blocks, float *packed);
/// xp = the C planes of x (H x W) with a zero border of one: C x (H + 2) x (W + 2) floats.
void sq_conv3x3_pad(const float *x, int C, int H, int W, float *xp);
/// AVX-512 only. The 3x3 convolution of one image that keeps its size (stride 1, one pad each side), output channel
/// groups [g0, g1) of 32, from the padded input xp (sq_conv3x3_pad) and weights from sq_conv3x3_lanes_pack: y = w * x
/// (+ bias), clamped; y holds the M planes of H x W. The same values as sq_conv3x3_avx512.
void sq_conv3x3_lanes_avx512(const float *xp, int C, int H, int W, const float *packed, int M, float *y, const float *bias, float lo,
                             float hi, int g0, int g1);
/// Floats of scratch sq_stem_pool_lanes_avx512 needs (M output channels, convolution rows OW wide, pooled rows POW wide).
size_t sq_stem_lanes_scratch(int M, int OW, int POW);
/// AVX-512 only. A stride-2 3x3 convolution (dilation 1, pads PT and PL before, the others implied by OH x OW) of one
/// image with weights from sq_conv3x3_lanes_pack (+ bias, clamped), then 3x3 stride-2 max pooling of it (pads QT and QL
/// before, POH x POW out): pooled rows [q0, q1) into y (M planes of POH x POW). The output channels run in the lanes (for
/// few input channels: a network's stem). The same values as sq_conv3x3_avx512 then sq_maxpool3x3_avx512.
void sq_stem_pool_lanes_avx512(const float *x, int C, int H, int W, const float *packed, int M, int PT, int PL, int OH, int OW,
                               const float *bias, float lo, float hi, int QT, int QL, int POH, int POW, float *y, int q0, int q1,
                               float *scratch);

/// y[i] = dot(W[i, 0..<K], x) (+ bias[i]) for rows [r0, r1) of row-major W (row stride ldw).
void sq_gemv(int K, const float *W, int ldw, const float *x, float *y, const float *bias, int r0, int r1);

/// Max (is_max) or average pooling with dilation 1 over planes [p0, p1) of x (each H x W, outputs OH x OW).
/// Averages divide by the window's count inside the image, or inside the padded image with count_include_pad.
void sq_pool2d(const float *x, int H, int W, int KH, int KW, int SH, int SW, int PT, int PL, int PB, int PR,
               float *y, int OH, int OW, int is_max, int count_include_pad, int p0, int p1);
/// y[p] = max or mean of x[p*size ..< (p+1)*size] for planes [p0, p1).
void sq_global_pool(const float *x, int size, int is_max, float *y, int p0, int p1);
/// y[i] = a[i*sa] op b[i*sb] for i < n; op 0 add, 1 sub, 2 mul, 3 div, 4 PRelu (a < 0 ? a*b : a).
void sq_binary(int op, const float *a, int sa, const float *b, int sb, float *y, int n);
/// Elementwise activation op of n floats (0 Relu, 1 Clip [a, b], 2 HardSigmoid(a, b), 3 HardSwish, 4 LeakyRelu(a),
/// 5 Sigmoid, 6 SiLU x · Sigmoid(x)).
void sq_unary(int op, const float *x, float *y, int n, float a, float b);
/// dst[i·stride] += src[i] for i < n (ConvTranspose's col2im, one row).
void sq_col2im_add(float *dst, const float *src, int n, int stride);

/// What sq_abs_stats finds in a tensor: the smallest and largest finite value (+inf / -inf when there is none) and how
/// many values are infinite or NaN.
typedef struct {
    float min, max;
    size_t nonfinite;
} sq_value_range;
/// One pass over x[0..<n]: its sq_value_range into r and, when bins_per_unit > 0 and no finite |x| exceeds `range`, a
/// histogram of |x| added into counts: counts[min(floor(|x| * bins_per_unit), bins - 1)] += 1, infinities and NaN in
/// the last bin. Returns 1 when the histogram was added, else 0 with counts untouched (the caller widens its range and
/// calls again). The work is split over up to `threads` threads (sq_parallel) for large n.
int sq_abs_stats(const float *x, size_t n, float range, float bins_per_unit, int bins, double *counts, sq_value_range *r, int threads);
/// The same one value at a time (the reference).
int sq_abs_stats_ref(const float *x, size_t n, float range, float bins_per_unit, int bins, double *counts, sq_value_range *r);
/// sums[c] += the sum of the finite values of x[o][c][0..<inner] over o < outer (x laid out outer x channels x inner;
/// infinities and NaN count as 0).
void sq_channel_sums(const float *x, int outer, int channels, size_t inner, double *sums);

/// int8 GEMM (integer runtime). Bytes needed by sq_qgemm_pack_a for M x K int8 weights.
size_t sq_qgemm_packed_size(int M, int K);
/// Packs row-major int8 A (M x K) for sq_qgemm_nhwc.
void sq_qgemm_pack_a(int M, int K, const int8_t *A, int8_t *packed);
/// Whether the int8 GEMM uses AVX-512 VNNI (vpdpbusd) on this CPU at the current level.
int sq_cpu_has_vnni(void);
/// Whether this CPU has an int8 dot-product instruction (x86: AVX-512 VNNI or AVX-VNNI; other architectures: 1).
/// Without one, ONNX Runtime's u8 x s8 kernels multiply byte pairs with vpmaddubsw, whose int16 sums saturate.
int sq_cpu_has_int8_dot(void);
/// Requantization of int32 accumulators, per output channel c, as ONNX Runtime's QLinearConv computes it:
/// q = clamp(round_half_even(float(acc + bias[c]) * scale[c]) + zero, lo, hi), the product a float32 one (the
/// clamp applied in float before the conversion, so nothing overflows); or, when `out_float`, the float
/// float(acc + bias[c]) * scale[c]. See FixedPointMultiplier for the same rule in integers.
typedef struct {
    const int32_t *bias;
    const float *scale;
    int32_t zero, lo, hi;
    int32_t out_float;
} sq_qrequant;

/// Y[p][m] = requant(sum_k X[p][k] * W[m][k]) for pixels [p0, p1) and channels [m0, m1) (m0 a multiple of 16):
/// X uint8 with row stride ldx (rows may be read up to 3 bytes past K), W packed by sq_qgemm_pack_a, Y
/// bytes or floats with row stride ldy.
void sq_qgemm_nhwc(int M, int K, const uint8_t *X, int ldx, const int8_t *W, const sq_qrequant *rq, void *Y, int ldy,
                   int p0, int p1, int m0, int m1);

/// Rows [p0, p1) of the NHWC im2col of channels [c0, c0 + cn): output pixel p at row p − p0 of `col`,
/// k = (kh * KW + kw) * cn + c, `pad` outside the image (the zero point), zeros from KH*KW*cn up to ldcol.
void sq_im2col_nhwc(const uint8_t *x, int H, int W, int C, int c0, int cn, int KH, int KW, int SH, int SW, int DH, int DW,
                    int PT, int PL, int OW, uint8_t pad, uint8_t *col, int ldcol, int p0, int p1);

/// Depthwise convolution (dilation 1) of NHWC uint8: acc = sum over all KH x KW taps of x * w, where taps outside
/// the image read `zero` (so the bias must hold bias - zero * sum(w)), then requant. Weights packed by
/// sq_qdw_pack: per block of 16 channels, per kernel row, per group of 4 columns, 16 channels x 4 taps (int8,
/// zero past KW and C); then the AVX2 kernel's table of the same weights as int16, in pairs of columns.
size_t sq_qdw_packed_size(int C, int KH, int KW);
/// Packs ONNX depthwise weights w[C][KH][KW].
void sq_qdw_pack(int C, int KH, int KW, const int8_t *w, int8_t *packed);
/// Bytes of scratch one call of sq_qdw_run needs on the VNNI or the AVX2 path (0 when neither is used): a ring of KH
/// rows of a padded copy of the input in which each pixel holds, per channel, its byte and the next 3 pixels' (VNNI),
/// or its value and the next pixel's as int16 (AVX2).
size_t sq_qdw_scratch_size(int C, int KH, int KW, int SW, int OW);
/// Output rows [oh0, oh1): the VNNI or the AVX2 path when `scratch` is given (see sq_qdw_scratch_size), else the
/// portable loop.
void sq_qdw_run(const uint8_t *x, uint8_t *scratch, int H, int W, int C, int KH, int KW, int SH, int SW, int PT, int PL,
                int OW, uint8_t zero, const int8_t *packed, const sq_qrequant *rq, uint8_t *y, int oh0, int oh1);

/// Parameters of the int8 Add, ONNX Runtime's QLinearAdd rule: with a = byte_a - off_a and b = byte_b - off_b,
/// y = clamp(round_half_even(fma(a, ra, fma(b, rb, fixed))) + off_y, lo, hi), ra = s_a / s_y, rb = s_b / s_y and
/// fixed = z_y - fma(z_a, ra, rb * z_b) in float32 (zero points unbiased).
typedef struct {
    float ra, rb, fixed;
    int32_t off_a, off_b, off_y, lo, hi;
} sq_qadd;
/// The int8 Add of elements [n0, n1).
void sq_qadd_u8(const uint8_t *a, const uint8_t *b, const sq_qadd *q, uint8_t *y, size_t n0, size_t n1);

/// P rows of C bytes from x (stride ldx) to y (stride ldy) through `table` (256 bytes: a requantization), or
/// copied when `table` is null.
void sq_qcopy_channels(const uint8_t *x, int ldx, int P, int C, const uint8_t *table, uint8_t *y, int ldy);
/// Max pooling of NHWC uint8 for output pixels [p0, p1) (taps outside the image skipped).
void sq_qmaxpool_nhwc(const uint8_t *x, int H, int W, int C, int KH, int KW, int SH, int SW, int DH, int DW, int PT, int PL,
                      uint8_t *y, int OW, int p0, int p1);
/// Average pooling of NHWC uint8: y = clamp(round_half_even(float(sum (x - zero)) * scale[n-1]) + zy, lo, hi) where n
/// is the number of taps counted (inside the image, or all when include_pad).
void sq_qavgpool_nhwc(const uint8_t *x, int H, int W, int C, int KH, int KW, int SH, int SW, int PT, int PL, int zero,
                      int include_pad, const float *scale, int zy, int lo, int hi, uint8_t *y, int OW, int p0, int p1);
/// sums[c] = sum over P pixels of x[p][c].
void sq_qsum_pixels(const uint8_t *x, int P, int C, int32_t *sums);
/// Float C planes of HW to bytes: clamp(rint(x / scale) + zero, lo, hi), written NHWC when nhwc else planar;
/// pixels [p0, p1) of every plane.
void sq_quantize_planes(const float *x, int C, int HW, float scale, int zero, int lo, int hi, uint8_t *y, int nhwc, int p0, int p1);
/// Bytes (NHWC when nhwc) to float planes: (x - zero) * scale.
void sq_dequantize_planes(const uint8_t *x, int C, int HW, float scale, int zero, float *y, int nhwc);
/// y (cols x rows) = the transpose of x (rows x cols).
void sq_transpose_u8(const uint8_t *x, int rows, int cols, uint8_t *y);

/// rounds x 12 x 16 fused multiply-adds in independent chains (the peak-throughput probe; returns a value that
/// depends on all of them).
float sq_fma_chains(long rounds, float seed, float m, float c);

/// A task of a parallel loop: runs part `part` of the job described by `ctx`.
typedef void (*sq_task)(void *ctx, int part);
/// Runs fn(ctx, p) for p in [0, parts) on up to `threads` threads (the caller and pool workers), returning
/// when all are done. Jobs from different callers are serialized; a call from inside a task runs inline.
void sq_parallel(int threads, int parts, sq_task fn, void *ctx);
/// Tests: while `hold` is nonzero the pool's workers stop before looking at a new job, as workers whose core is
/// busy elsewhere would (the caller runs every part).
void sq_pool_hold_workers(int hold);
/// Quantized elementwise and movement kernels (qelementwise.c).
void sq_qmul(const uint8_t *a, const uint8_t *b, int n, float m, int za, int zb, float zy, float lo, float hi, uint8_t *y);
void sq_qtable_channels(const uint8_t *x, int P, int C, const uint8_t *tables, uint8_t *y);
void sq_qresize_nearest_nhwc(const uint8_t *x, int W, int C, const int *rows, const int *cols, int OW, uint8_t *y, int r0, int r1);
void sq_qconvtranspose_rows(const float *cols, int H, int W, int M, int KH, int KW, int SH, int SW, int DH, int DW, int PT, int PL,
                            const int32_t *bias, const float *scales, float zy, float lo, float hi, uint8_t *y, int OW,
                            int r0, int r1, int32_t *acc);
#endif
