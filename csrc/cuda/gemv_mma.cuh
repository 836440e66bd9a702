// csrc/cuda/gemv_mma.cuh: the tensor-core decode kernel (M <= 16) for v = 8 with its codebooks
// staged in shared memory: v8-k256-256 (index bits IB = 8, residual bits RB = 8), v8-k4096-256
// (IB = 12, RB = 8, G = 1), v8-k4096 (IB = 12, RB = 0, G = 1; "12-bit main codes" below), v6-k4096
// (the same with kV = 6: "v = 6") and v8-k8192-256 (IB = 13, RB = 8, G = 1; "13-bit main codes"),
// fp16 / bf16, CUDA sm_80+ only (HIP
// and older archs keep gemv_fast.cuh; dispatch.cu decides).
//
// Why: the CUDA-core kernels spend ~30 instructions per code (decode, 16-byte gather, packed add,
// 8 conversions, 8 FFMA per activation row). Here the gather IS the operand load: ldmatrix takes
// one shared-memory row address per lane, so 32 lanes gather 32 codebook rows (16 bytes, the 8
// outputs of one code) and .trans hands them out already in the mma A-fragment layout; one
// mma.m16n8k16 (fp32 accumulation) then does 16 lookups x 8 outputs x 8 activation rows.
//
// One mma = 2 index rows (r0, r1: the 16 A rows = outputs r0*8 + j, r1*8 + j) x 16 k-slots
// (8 codes x {main, residual}); B = the activations of the 8 codes (rows n = activation row m,
// the residual k-slots repeat the main ones), so main + residual are summed by the mma in fp32
// (exact products, nothing rounded to T before the accumulation).
//
// Layout and work split
//   step        = 32 consecutive columns (one 32-code unit = 16 packed words) of 2 index rows:
//                 4 mma. Code slot i of mma b is column 4i + b, so lane (g, t) of the B fragment
//                 needs columns 8t + b and 8t + 4 + b of activation row g: one 16-byte load of
//                 columns 8t .. 8t + 7 serves all 4 mma (one byte_perm each, mma_b_operand).
//   address lane= lane 8q + i supplies row i of matrix q of ldmatrix.x4: index row r0 + (q & 1),
//                 codebook q / 2 (main, residual), code slot i; its 4 codes (one per mma) are
//                 codes 4i .. 4i + 3 = words 2i, 2i + 1 of the unit (code 4i + b: byte
//                 2 (b & 1) + q / 2 of word 2i + b / 2), so the lane loads 8 bytes per step
//                 (LDS.64: 2 shared-memory wavefronts per warp, where 16-byte loads took 4) and
//                 decodes each code with one byte_perm.
//   pairs (P)   = a warp step covers P = 1 or 2 row pairs (two kernels; dispatch.cu picks P by
//                 its cost model): with P = 2 the activation loads, ring bookkeeping and loop
//                 are shared by two pairs and each step issues 8 independent gathers.
//   codebooks   = staged once per block in shared memory as 8 interleaved copies (entry c, copy
//                 i at 16-byte slot 8c + i); address lane i reads copy i, so each 8-row matrix of
//                 an ldmatrix hits 8 distinct 16-byte bank groups: conflict-free.
//   warp item   = one row block (P pairs) x U steps (U a multiple of 4: chunk = 4 steps).
//   index words = streamed by cp.async into a per-warp ring of mma_stages(P) chunk slots
//                 (kMmaRingBytes = 4 KB per warp; a slot is P x 512 bytes: 4 steps x 2 rows x 64
//                 bytes per pair, each lane copies 16 bytes per pair), mma_stages(P) - 1 chunks
//                 ahead of the mma, across item and tile boundaries (a warp's chunks form one
//                 sequence, walked by MmaWalk); the ring's first chunks are requested before the
//                 codebooks are staged. Activations are loaded into registers one chunk ahead
//                 (they are small and mostly L1 / L2 hits).
//   block       = 256 threads; tile = RT row blocks x S items (split-K; S a power of two, RT * S
//                 = 8 or RT = 1), items w, w + 8, ... per warp; each item's P D fragments (16
//                 outputs x 8 rows, fp32) go to shared memory, one thread per output sums the S
//                 items in order (deterministic, no atomics) and applies the epilogue (row
//                 constant, bias, rounding to T once).
//   activations = T, row-major [m][I] (B columns >= m read row 0; never stored): X itself without perm /
//                 norm; otherwise prep_activations writes x' = X[perm] * scale split into
//                 hi = T(x') and lo = T(x' - hi) (a.x, a.x_lo) and every mma runs twice (hi, lo),
//                 so x' keeps ~2x the mantissa of T (fp16: 22 bits).
//   n-tiles     = kNT = 1 (M <= 8) or 2 (9 <= M <= 16, P = 1 only: P = 2 with two n-tiles spills):
//                 B columns of n-tile nt = activation rows 8 nt .. 8 nt + 7, every A fragment
//                 feeds kNT mma; D fragments per (item, pair, n-tile).
//   12-bit main codes (kIB = 12, v8-k4096-256: 20-bit codes, P = 1 only): the same lane roles,
//                 column map and mma. A row's step is 20 words (80 bytes), a pair's chunk 640 bytes
//                 (40 cp.async pieces of 16 bytes: lane l copies piece l, lanes 0 .. 7 also piece
//                 32 + l), kMmaWideStages = 4 ring slots. Address lane 8q + i reads 3 words from
//                 word 5i / 2 of its row (its codes 4i .. 4i + 3 start at bit 80 i) and cuts code
//                 b out with one funnel shift at a lane-constant offset; main lanes take the low 12
//                 bits, residual lanes the high 8. Codebooks: one copy of the 64 KB main codebook
//                 (cp.async, requested before the ring's first chunks; random rows share banks),
//                 4 interleaved copies of the residual one (16 KB): 64 + 16 KB + D fragments +
//                 20 KB of rings, two blocks per SM. 116-127 registers with one n-tile; the
//                 two-n-tile variants spill 32-36 bytes (236 with hi / lo).
//   12-bit codes without a residual (kIB = 12, kRB = 0, v8-k4096): a step's 32 codes of a row
//                 pair fill two mma of 16 main codes, with the gather kernel's RB = 0 column map
//                 (code slot j of mma b = column 8 (j % 8 / 2) + 2 (j / 8) + j % 2 + 4 b, so the
//                 lane's one 16-byte activation load gives both mma's B: words 2b, 2b + 1). A row's
//                 step is 12 words, a pair's chunk 384 bytes (24 pieces: lanes 0 .. 23 copy one);
//                 address lane 8q + i reads 3 words from word 3 (i / 2) and cuts its 2 codes out
//                 with one funnel shift each. 64 KB codebook + D fragments + 12 KB of rings, two
//                 blocks per SM; 103 registers with one n-tile.
//   v = 6         (kV = 6, v6-k4096: 12-bit codes, no residual): the v8-k4096 variant unchanged
//                 except for the codebook and the fold. Staging pads each 12-byte entry to a
//                 16-byte row (3 words + 0), so ldmatrix gathers rows as for v = 8 and A rows 6, 7
//                 of each 8-row matrix are zero; the fold stores D row ol of pair pp as output
//                 6 (2 pp + ol / 8) + ol % 8 for ol % 8 < 6 (12 of the mma's 16 rows used).
//                 The index words are laid out as for v8-k4096 (12 bits per code), two index rows
//                 per pair.
//   13-bit main codes (kIB = 13, kRB = 8, v8-k8192-256: 21-bit codes, P = 1): the 128 KB main
//                 codebook (one copy) + 4 residual copies leave room for one block per SM, so the
//                 block has 16 warps (mma_warps_of; __launch_bounds__(512, 1), 128 registers).
//                 A row's step is 21 words (84 bytes, no multiple of 16), so a pair's ring chunk
//                 is row-major: each row's 4 steps (336 bytes = 21 pieces, 16-byte aligned in
//                 global memory because dispatch requires group_size % 128 == 0) contiguous,
//                 42 pieces (lanes 0 .. 9 copy two). Address lane 8q + i reads 4 words from word
//                 84 i / 32 of its row's step (3 when its codes end within them) and cuts code b
//                 out with one funnel shift from word 0 / 0-1 / 1-2 / 1-2 at bit (84 i + 21 b) % 32.
//                 116-125 registers with one n-tile; the two-n-tile variants spill 24-28 bytes
//                 (224 with hi / lo).
//   split-K S of the 12- / 13-bit variants: dispatch.cu's persistent-grid model (mma_geometry, wide).
#pragma once

#include <cstdint>

#include "gemv.cuh"
#include "gemv_fast.cuh"

namespace vptq {
namespace gpu {

constexpr int kMmaThreads = 256;
constexpr int kMmaWarps = kMmaThreads / 32;
constexpr int kMmaStepCols = 32;    // columns per step (one 32-code unit)
constexpr int kMmaChunk = 4;        // steps per chunk (one ring slot, one x register set)
constexpr int kMmaItemFloats = 128; // D fragment of one warp item: 16 outputs x 8 rows
constexpr int kMmaMaxRows = 8;      // activation rows of one n-tile (the mma's n)
constexpr int kMmaMaxTiles = 2;     // n-tiles per launch (gather kernel): up to 16 activation rows
constexpr int kMmaPairChunkBytes = kMmaChunk * 2 * 64;  // one chunk of one pair's index words
constexpr int kMmaRingBytes = 4096;  // index ring per warp: 8 chunk slots of one pair, 4 of two
constexpr int kMmaMaxPairs = 2;      // row pairs per warp step (P): kernels for P = 1 and 2

// Index rows per "pair" = one mma's 16 outputs: 2 for v = 8 (and v = 6, 12 of the 16 outputs
// used), 1 for v = 16 and v = 12 (kernels and dispatch.cu's mma_geometry).
__host__ __device__ constexpr int mma_index_rows_per_pair(int v) { return v >= 12 ? 1 : 2; }

// Warps per block of gemv_mma_kernel by main index bits: 8 (two blocks per SM), 16 for IB = 13,
// whose 128 KB main codebook leaves room for one block per SM.
__host__ __device__ constexpr int mma_warps_of(int ib) { return ib == 13 ? 16 : kMmaWarps; }

// Ring slots per warp (a power of two) for P pairs per step.
__host__ __device__ constexpr int mma_stages(int pairs) { return kMmaRingBytes / (pairs * kMmaPairChunkBytes); }

// 12-bit main codes (IB = 12, v8-k4096-256: 20-bit codes, 20 words per row and unit): one copy of
// the 4096-row main codebook (64 KB), 4 copies of the residual one, kMmaWideStages ring slots of
// one pair's chunk (640 bytes), P = 1 only.
constexpr int kMmaWideMainCopies = 1;
constexpr int kMmaWideResCopies = 4;
constexpr int kMmaWideStages = 4;
__host__ __device__ constexpr int mma_unit_words_of(int ib, int rb) { return ib + rb; }  // T = IB + RB
__host__ __device__ constexpr int mma_pair_chunk_bytes(int ib, int rb) {
  return kMmaChunk * 2 * 4 * mma_unit_words_of(ib, rb);
}
__host__ __device__ constexpr int mma_ring_bytes(int ib, int rb, int pairs) {
  return ib == 8 ? kMmaRingBytes : kMmaWideStages * pairs * mma_pair_chunk_bytes(ib, rb);
}

// Dynamic shared memory: both codebooks (IB = 8: 8 copies of each; IB = 12: 1 main + 4 residual
// copies) + the items' D fragments (P per item) + the index rings of the block's `warps` warps.
inline size_t mma_smem_bytes(int groups, int ib, int rb, int items, int pairs, int ntiles, int warps) {
  const size_t main_copies = ib == 8 ? kFastCopies : kMmaWideMainCopies;  // IB = 12, 13: one
  const size_t res_copies = ib == 8 ? kFastCopies : kMmaWideResCopies;
  const size_t res_rows = rb ? size_t{1} << rb : 0;
  return static_cast<size_t>(groups) * ((size_t{1} << ib) * main_copies + res_rows * res_copies) * 16 +
         static_cast<size_t>(items) * pairs * ntiles * kMmaItemFloats * sizeof(float) +
         static_cast<size_t>(warps) * mma_ring_bytes(ib, rb, pairs);
}

#if !VPTQ_HIP
// 8 consecutive T (16 bytes) as 4 words: one vector load when aligned, else element loads.
template <bool kVec, typename T>
__device__ __forceinline__ uint4 mma_load_x8(const T* p) {
  if constexpr (kVec) {
    return *reinterpret_cast<const uint4*>(p);
  } else {
    const unsigned short* h = reinterpret_cast<const unsigned short*>(p);
    uint32_t w[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) w[i] = static_cast<uint32_t>(h[2 * i]) | (static_cast<uint32_t>(h[2 * i + 1]) << 16);
    return make_uint4(w[0], w[1], w[2], w[3]);
  }
}

// D (16 x 8, fp32) += A (16 x 16) . B (16 x 8): b0 holds B's k-slots 2t, 2t + 1 and b1 k-slots
// 2t + 8, 2t + 9 of column g for lane (g, t).
template <typename T>
struct MmaOp;
template <>
struct MmaOp<gpu_half> {
  __device__ static __forceinline__ void run(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
  }
};
template <>
struct MmaOp<gpu_bfloat16> {
  __device__ static __forceinline__ void run(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
  }
};

// B operand of mma b from activation columns 8t .. 8t + 7 (h0 .. h7 of x): k-slots 2t, 2t + 1 are
// columns 8t + b and 8t + 4 + b (code slot i of mma b is column 4i + b), so (h_b, h_{4+b}).
__device__ __forceinline__ uint32_t mma_b_operand(const uint4& x, int b) {
  const uint32_t lo = (b & 2) ? x.y : x.x, hi = (b & 2) ? x.w : x.z;
  return __byte_perm(lo, hi, (b & 1) ? 0x7632u : 0x5410u);
}

// Four 8x8 b16 matrices, transposed: lane 8q + i gives the address of row i of matrix q.
__device__ __forceinline__ void mma_ldsm_x4_trans(uint32_t addr, uint32_t (&r)[4]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  // not volatile: the 4 gathers of a step are issued before its mma (distinct registers); the
  // addresses depend on index words read from the ring after a cp.async wait (memory clobber)
  asm("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
      : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
      : "r"(addr));
#else
  r[0] = r[1] = r[2] = r[3] = addr;
#endif
}

// The same for rows whose addresses do not depend on data read after the cp.async wait (the
// gather kernel's staging ring): volatile + memory clobber, so it is not moved above the wait.
__device__ __forceinline__ void mma_ldsm_x4_trans_after_wait(uint32_t addr, uint32_t (&r)[4]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr)
               : "memory");
#else
  r[0] = r[1] = r[2] = r[3] = addr;
#endif
}

// 16 bytes global -> shared without registers (sm_80+; a plain copy below): cp.async.cg (L2 only)
// by default, cp.async.ca (through L1) with kViaL1, for random codebook rows that may be read again.
template <bool kViaL1 = false>
__device__ __forceinline__ void mma_cp_async16(uint32_t dst, void* dst_generic, const void* src) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  (void)dst_generic;
  if constexpr (kViaL1) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 16;\n" ::"r"(dst), "l"(src) : "memory");
  } else {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(dst), "l"(src) : "memory");
  }
#else
  (void)dst;
  *static_cast<uint4*>(dst_generic) = *static_cast<const uint4*>(src);
#endif
}
__device__ __forceinline__ void mma_cp_async_commit() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}
template <int N>
__device__ __forceinline__ void mma_cp_async_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#endif
}

// Work split of a launch (see the header comment): S items of U units per row block (P pairs),
// RT row blocks per block tile; S is a power of two (log_s) and RT * S == kMmaWarps or S a
// multiple of kMmaWarps, so a warp's item index needs no division.
struct MmaWork {
  int S, log_s, U, RT, items, blocks, tiles, upr;
};

// The launch's work split (GemvArgs: S = chunks_per_row, U = units_per_item, RT = rows_per_tile)
// for P row pairs per row block.
__device__ __forceinline__ MmaWork mma_work(const GemvArgs& a, int pairs_per_block, int index_rows_per_pair = 2) {
  const LayerView& L = a.L;
  MmaWork k;
  k.S = a.chunks_per_row;
  k.log_s = __ffs(k.S) - 1;
  k.U = a.units_per_item;
  k.RT = a.rows_per_tile;
  k.items = k.RT * k.S;
  const int pairs = (L.index_rows + index_rows_per_pair - 1) / index_rows_per_pair;
  k.blocks = (pairs + pairs_per_block - 1) / pairs_per_block;
  k.tiles = (k.blocks + k.RT - 1) / k.RT;
  k.upr = (L.group_size / kMmaStepCols) * L.groups;
  return k;
}

// Stage one codebook of `n` 16-byte rows as kCopies (a power of two <= 8) interleaved copies
// (entry e, copy i at slot kCopies * e + i): one global load per entry, copy i written at step
// (i - e) % kCopies, so a quarter warp's stores hit distinct bank groups. Block-wide (kThreads
// threads); the caller synchronises. (gemv_mma_kernel stages its two codebooks in one loop of
// the same form, both loads first.)
template <int kCopies, int kThreads = kMmaThreads>
__device__ __forceinline__ void mma_stage_codebook(uint4* dst, const uint4* src, int n) {
  for (int e = threadIdx.x; e < n; e += kThreads) {
    const uint4 v = src[e];
#pragma unroll
    for (int i = 0; i < kCopies; ++i) dst[e * kCopies + ((i + e) & (kCopies - 1))] = v;
  }
}

// Copy n 16-byte rows global -> shared by cp.async.cg (no registers held, all in flight at once):
// one copy of a codebook too large for the interleaved copies. Block-wide, one commit group per
// thread; the caller waits and synchronises.
template <int kThreads = kMmaThreads>
__device__ __forceinline__ void mma_stage_rows_async(uint32_t dst, unsigned char* dst_generic, const void* src, int n) {
  const uint4* rows = static_cast<const uint4*>(src);
  for (int e = threadIdx.x; e < n; e += kThreads)
    mma_cp_async16<false>(dst + static_cast<uint32_t>(e * 16), dst_generic + e * 16, rows + e);
  mma_cp_async_commit();
}

// End of a block tile: one thread per (row block rr, pair p, n-tile nt, output 0..15, activation
// row) sums the S items' D fragments (part[((item * P + p) * kNT + nt) * 128 + lane * 4 + c],
// fragment order) in item order (deterministic, no atomics) and stores the output with the
// epilogue. D row ol (0..15) of pair pp: kV = 16 or 12: output ol of index row pp (kV = 12: rows
// 12..15 never stored); kV = 8 or 6: output ol % 8 of index row 2 pp + ol / 8 (kV = 6: D rows 6,
// 7, 14, 15 are padding, never stored); D column m8 of n-tile nt is activation row 8 nt + m8.
template <typename T, int kPairs, int kV = 8, int kNT = 1>
__device__ __forceinline__ void mma_fold_tile(const GemvArgs& a, const float* part, const MmaWork& k, int tile) {
  static_assert(kV == 6 || kV == 8 || kV == 12 || kV == 16,
                "16 outputs per pair: 2 index rows of v8 (v6 padded) or one of v16 (v12 padded)");
  constexpr bool kOneRow = mma_index_rows_per_pair(kV) == 1;
  const LayerView& L = a.L;
  for (int t = threadIdx.x; t < k.RT * kPairs * kNT * kMmaItemFloats; t += blockDim.x) {
    const int f = t / kMmaItemFloats, rem = t - f * kMmaItemFloats;  // f = (rr * P + p) * kNT + nt
    const int rp_t = f / kNT, nt = f - rp_t * kNT;
    const int rr = rp_t / kPairs, p = rp_t - rr * kPairs;
    const int ol = rem / kMmaMaxRows, m8 = rem - ol * kMmaMaxRows, m = nt * kMmaMaxRows + m8;
    const int pp = (tile * k.RT + rr) * kPairs + p;
    const int r = kOneRow ? pp : 2 * pp + (ol >> 3), j = kOneRow ? ol : ol & 7, o = r * kV + j;
    if (m < a.m && j < kV && r < L.index_rows && o < L.out_features) {
      const int slot = ((ol & 7) * 4 + (m8 >> 1)) * 4 + (ol >> 3) * 2 + (m8 & 1);
      float sum = 0.f;
      for (int qq = 0; qq < k.S; ++qq)
        sum += part[(((rr * k.S + qq) * kPairs + p) * kNT + nt) * kMmaItemFloats + slot];
      store_output<T>(a, m, o, sum);
    }
  }
}

// Offset, in words, of unit u (32 codes = kUnitWords packed words per row) of an index row from
// that row's first word in group 0 (packed is [G][NI][W]: group g starts g * group_words later).
template <int kUnitWords>
__device__ __forceinline__ size_t mma_unit_words(const LayerView& L, int u, int upg, size_t group_words) {
  size_t off = static_cast<size_t>(u) * kUnitWords;
  if (L.groups > 1) {
    const int g = u / upg;
    off = static_cast<size_t>(g) * group_words + static_cast<size_t>(u - g * upg) * kUnitWords;
  }
  return off;
}

// Lo activations (hi / lo split, kHiLo) of the kChunk steps from unit u0 (zeros past uend, and
// everywhere without kHiLo); xl points at this lane's 8 columns of unit 0.
template <bool kHiLo, int kChunk, typename T>
__device__ __forceinline__ void mma_load_lo(const T* xl, int u0, int uend, uint4 (&xlc)[kChunk]) {
#pragma unroll
  for (int s = 0; s < kChunk; ++s) xlc[s] = make_uint4(0, 0, 0, 0);
  if constexpr (kHiLo) {
#pragma unroll
    for (int s = 0; s < kChunk; ++s)
      if (u0 + s < uend) xlc[s] = *reinterpret_cast<const uint4*>(xl + (u0 + s) * kMmaStepCols);
  }
}

// This lane's activation pointers, one per n-tile (B fragment lane (g, t)): B column g of n-tile
// nt is activation row 8 nt + g, columns 8 t .. 8 t + 7 of it; rows >= m read row 0 instead:
// their D columns are never stored (an mma's column n depends on B column n only). xl: the lo
// half of a hi / lo split (kHiLo), else null.
template <typename T, bool kHiLo, int kNT>
__device__ __forceinline__ void mma_lane_activations(const GemvArgs& a, int lane, const T* (&xh)[kNT],
                                                     const T* (&xl)[kNT]) {
  const int I = a.L.in_features, g = lane >> 2;
#pragma unroll
  for (int nt = 0; nt < kNT; ++nt) {
    const int xrow = nt * kMmaMaxRows + g < a.m ? nt * kMmaMaxRows + g : 0;
    xh[nt] = static_cast<const T*>(a.x) + static_cast<size_t>(xrow) * I + 8 * (lane & 3);
    xl[nt] = kHiLo ? static_cast<const T*>(a.x_lo) + static_cast<size_t>(xrow) * I + 8 * (lane & 3) : nullptr;
  }
}

// Position in a warp's chunk sequence: tiles blockIdx.x, + gridDim.x, ...; items warp, + 8, ...
// of each tile that have work; chunks u, u + 4, ... < uend of each item. tile >= tiles: done.
struct MmaWalk {
  int tile, it, rb, u, uend;
};

// From item w.it of tile w.tile on, the first item with work (kWarps warps per block).
template <int kWarps = kMmaWarps>
__device__ __forceinline__ void mma_walk_settle(MmaWalk& w, const MmaWork& k, int warp) {
  while (w.tile < k.tiles) {
    for (; w.it < k.items; w.it += kWarps) {
      w.rb = w.tile * k.RT + (w.it >> k.log_s);
      w.u = (w.it & (k.S - 1)) * k.U;
      w.uend = min(w.u + k.U, k.upr);
      if (w.rb < k.blocks && w.u < w.uend) return;
    }
    w.it = warp;
    w.tile += static_cast<int>(gridDim.x);
  }
}

// Next chunk of kChunk units (a divisor of kMmaChunk, so chunks never cross an item's end).
template <int kChunk = kMmaChunk, int kWarps = kMmaWarps>
__device__ __forceinline__ void mma_walk_next(MmaWalk& w, const MmaWork& k, int warp) {
  static_assert(kMmaChunk % kChunk == 0, "items are multiples of kMmaChunk units");
  w.u += kChunk;
  if (w.u >= w.uend) {
    w.it += kWarps;
    mma_walk_settle<kWarps>(w, k, warp);
  }
}

// kWarps: warps per block, mma_warps_of(kIB) (8: two blocks per SM; 16 for IB = 13), or 16 for
// IB = 12 too (one block per SM, one 64 KB main codebook per SM instead of two: the ",W=16"
// entries of dispatch.cu). kV: 8, or 6 for v6-k4096 (IB = 12, RB = 0; "v = 6" in the header).
// Activations of the kMmaChunk steps of walk w's current chunk, one 16-byte load per n-tile and
// step from this lane's pointers xh (mma_lane_activations); zeros past the item's end and after
// the last tile (the staged-codebook kernels' activation walk, one chunk ahead of the mma).
template <bool kXVec, int kNT, typename T>
__device__ __forceinline__ void mma_load_x_chunk(const T* const (&xh)[kNT], const MmaWalk& w, const MmaWork& k,
                                                 uint4 (&xv)[kNT][kMmaChunk]) {
#pragma unroll
  for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
    for (int s = 0; s < kMmaChunk; ++s) {
      const int u = w.u + s;
      xv[nt][s] = (w.tile < k.tiles && u < w.uend) ? mma_load_x8<kXVec>(xh[nt] + u * kMmaStepCols) : make_uint4(0, 0, 0, 0);
    }
}

// One request of the producer's index-word ring: while walk w has work, copy() issues the
// cp.async pieces of its chunk and w moves one chunk on (to the next item with work at an item's
// end, then on_new_row(): new source rows); then one commit group, empty ones included, so the
// consumer's wait counts stay uniform. kp counts the requests.
template <int kWarps, typename Copy, typename OnNewRow>
__device__ __forceinline__ void mma_ring_request(MmaWalk& w, const MmaWork& k, int warp, int& kp, Copy&& copy,
                                                 OnNewRow&& on_new_row) {
  if (w.tile < k.tiles) {
    copy();
    w.u += kMmaChunk;
    if (w.u >= w.uend) {
      w.it += kWarps;
      mma_walk_settle<kWarps>(w, k, warp);
      if (w.tile < k.tiles) on_new_row();
    }
  }
  mma_cp_async_commit();
  ++kp;
}

// Next chunk's activations become this chunk's (xc <- xn), for every n-tile (end of a chunk of the
// staged-codebook kernels).
template <int kNT, int kChunk>
__device__ __forceinline__ void mma_shift_activations(uint4 (&xc)[kNT][kChunk], const uint4 (&xn)[kNT][kChunk]) {
#pragma unroll
  for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
    for (int s = 0; s < kChunk; ++s) xc[nt][s] = xn[nt][s];
}

template <typename T, bool kXVec, bool kHiLo, int kPairs, int kNT, int kIB = 8, int kRB = 8, int kWarps = mma_warps_of(kIB),
          int kV = 8>
__global__ void __launch_bounds__(kWarps * 32, kMmaWarps * 2 / kWarps) gemv_mma_kernel(GemvArgs a) {
  static_assert((kIB == 8 && kRB == 8) || (kIB == 12 && (kRB == 8 || kRB == 0) && kPairs == 1) ||
                    (kIB == 13 && kRB == 8 && kPairs == 1),
                "v8-k256-256 (P = 1, 2), v8-k4096-256, v8-k4096 or v8-k8192-256 (P = 1)");
  static_assert(kV == 8 || (kV == 6 && kIB == 12 && kRB == 0 && kWarps == kMmaWarps),
                "v = 8, or v = 6 with 12-bit codes and no residual (v6-k4096), 8 warps");
  static_assert(kWarps == mma_warps_of(kIB) || (kIB == 12 && kWarps == 2 * kMmaWarps),
                "8 warps (two blocks per SM) or 16 (one block: IB = 13, or IB = 12's W = 16 variant)");
  constexpr int kThreads = kWarps * 32;
  constexpr bool kWide = kIB >= 12;  // 20-, 21- or 12-bit codes, G = 1 (dispatch.cu checks)
  constexpr bool kNoRes = kRB == 0;  // v8-k4096: 16 main codes per mma, 2 mma per step
  constexpr bool k13 = kIB == 13;    // v8-k8192-256: 21-bit codes, row-major chunks (below)
  constexpr int kStages = kWide ? kMmaWideStages : mma_stages(kPairs);
  constexpr int kUnitWords = mma_unit_words_of(kIB, kRB);
  constexpr int kRowStepBytes = 4 * kUnitWords;  // one row's words of one step
  constexpr int kPairBytes = mma_pair_chunk_bytes(kIB, kRB);
  constexpr int kPieces = kPairBytes / 16;       // 16-byte cp.async pieces of a pair's chunk
  constexpr int kRowPieces = kRowStepBytes / 16;  // of one row's step
  constexpr int kSlotBytes = kPairs * kPairBytes;
  // IB = 13: a row's step (84 bytes) is no multiple of 16, so a pair's chunk is stored row-major,
  // each row's 4 steps (336 bytes = 21 pieces, 16-byte aligned in global memory when group_size
  // % 128 == 0: dispatch.cu checks) contiguous; else step-major (step, row, the row's words).
  constexpr int kRowChunkBytes = kMmaChunk * kRowStepBytes, kRowChunkPieces = kRowChunkBytes / 16;
  constexpr int kStepStride = k13 ? kRowStepBytes : 2 * kRowStepBytes;  // ring bytes between steps
  static_assert(k13 || kRowStepBytes % 16 == 0, "step-major chunks: 16-byte row steps");
  static_assert((kStages & (kStages - 1)) == 0 && kStages >= 2, "ring slots: a power of two >= 2");
  static_assert(!kHiLo || kXVec, "hi / lo activations are prepared buffers (aligned)");
  static_assert(kNT == 1 || kNT == 2, "n-tiles of 8 activation rows: M <= 8 or M <= 16");
  extern __shared__ __align__(16) unsigned char mma_smem[];
  constexpr int kRows = 256;  // entries per codebook (IB = RB = 8); the residual one for IB = 12, 13
  constexpr int kEntryBytes = 16 * kFastCopies;
  const LayerView& L = a.L;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;

  const int n_cb = L.groups * kRows * kFastCopies;  // 16-byte slots per codebook (IB = 8)
  const MmaWork k = mma_work(a, kPairs);
  const int upg = L.group_size / kMmaStepCols;  // units per group
  const int W = L.words_per_row;
  const size_t group_words = static_cast<size_t>(L.index_rows) * W;

  // bytes of the staged codebooks: IB = 8 both as n_cb slots; IB = 12, 13 one main copy + the residual copies
  const size_t cb_bytes = kWide ? (size_t{16} << kIB) * kMmaWideMainCopies +
                                      (kNoRes ? 0 : size_t{16} * kRows * kMmaWideResCopies)
                                : static_cast<size_t>(2 * n_cb) * 16;
  float* part = reinterpret_cast<float*>(mma_smem + cb_bytes);
  const size_t ring_off = cb_bytes + static_cast<size_t>(k.items) * kPairs * kNT * kMmaItemFloats * sizeof(float) +
                          static_cast<size_t>(warp) * kStages * kSlotBytes;
  unsigned char* ring = mma_smem + ring_off;
  const uint32_t ring_s = static_cast<uint32_t>(__cvta_generic_to_shared(ring));
  const uint32_t smem_s = static_cast<uint32_t>(__cvta_generic_to_shared(mma_smem));
  // the main codebook first (cp.async, its own commit group, waited for before the first
  // __syncthreads), so the ring's first requests below queue behind it
  if constexpr (kWide && kV == 8) mma_stage_rows_async<kThreads>(smem_s, mma_smem, L.cb, 1 << kIB);

  // ---- producer role of this lane, for each pair p of the row block: 16 bytes of a chunk =
  // step ps, row prow of pair p, words 4 pj .. 4 pj + 3 of the step's 16. IB = 12: a chunk is
  // kPieces pieces of 16 bytes (4 steps x 2 rows x kRowPieces: 40 with the residual, 24 without);
  // lane l copies piece l (if l < kPieces) and lanes 0 .. 7 also piece 32 + l (if < kPieces); piece
  // t: step t / (2 kRowPieces), row t / kRowPieces % 2, bytes 16 (t % kRowPieces) .. of the row's.
  // IB = 13 (row-major chunks, 42 pieces): piece t is row t / 21, bytes 16 (t % 21) .. of the
  // row's 336 (step 0's offset: the piece's source is the row's chunk, units u .. u + 3, whole).
  const int pt0 = lane, pt1 = 32 + (lane & 15);
  const int ps = k13 ? 0 : kWide ? pt0 / (2 * kRowPieces) : lane >> 3,
            prow = k13 ? pt0 / kRowChunkPieces : kWide ? pt0 / kRowPieces % 2 : (lane >> 2) & 1,
            pj = k13 ? pt0 % kRowChunkPieces : kWide ? pt0 % kRowPieces : lane & 3;
  const int ps1 = k13 ? 0 : pt1 / (2 * kRowPieces), prow1 = k13 ? pt1 / kRowChunkPieces : pt1 / kRowPieces % 2,
            pj1 = k13 ? pt1 % kRowChunkPieces : pt1 % kRowPieces;
  const bool first_piece = !kWide || lane < kPieces;
  const bool second_piece = kWide && lane < 16 && 32 + lane < kPieces;
  const int p_off = k13 ? prow * kRowChunkBytes + pj * 16 : ps * 2 * kRowStepBytes + prow * kRowStepBytes + pj * 16;
  const int p_off1 = k13 ? prow1 * kRowChunkBytes + pj1 * 16 : ps1 * 2 * kRowStepBytes + prow1 * kRowStepBytes + pj1 * 16;
  MmaWalk pw{0, 0, 0, 0, 0};
  pw.tile = static_cast<int>(blockIdx.x);
  pw.it = warp;
  mma_walk_settle<kWarps>(pw, k, warp);
  MmaWalk xw = pw;  // activations: one chunk ahead of the mma
  int kp = 0;       // chunks requested
  // words of this lane's index rows in group 0 (+ 16 per unit; other groups: + g * group_words)
  const uint32_t* prow_words[kPairs];
  const uint32_t* prow_words1 = nullptr;  // IB = 12, 13: the second piece (P = 1)
  auto row_words = [&]() {
#pragma unroll
    for (int p = 0; p < kPairs; ++p) {
      const int r = min(2 * (pw.rb * kPairs + p) + prow, L.index_rows - 1);
      prow_words[p] = L.packed + static_cast<size_t>(r) * W + 4 * pj;
    }
    if constexpr (kWide) {
      const int r1 = min(2 * pw.rb + prow1, L.index_rows - 1);
      prow_words1 = L.packed + static_cast<size_t>(r1) * W + 4 * pj1;
    }
  };
  row_words();
  auto request = [&]() {
    mma_ring_request<kWarps>(pw, k, warp, kp, [&]() {
      const int u = pw.u + ps;
      if (first_piece && u < pw.uend) {
        const size_t off_words = mma_unit_words<kUnitWords>(L, u, upg, group_words);
        const int off = (kp & (kStages - 1)) * kSlotBytes + p_off;
#pragma unroll
        for (int p = 0; p < kPairs; ++p)
          mma_cp_async16(ring_s + off + p * kPairBytes, ring + off + p * kPairBytes, prow_words[p] + off_words);
      }
      if constexpr (kWide) {
        const int u1 = pw.u + ps1;
        if (second_piece && u1 < pw.uend) {
          const int off1 = (kp & (kStages - 1)) * kSlotBytes + p_off1;
          mma_cp_async16(ring_s + off1, ring + off1, prow_words1 + mma_unit_words<kUnitWords>(L, u1, upg, group_words));
        }
      }
    }, row_words);
  };
#pragma unroll 1
  for (int s = 0; s < kStages - 1; ++s) request();

  // ---- address role (ldmatrix row) and fragment role (B / D) of this lane
  const int q = lane >> 3, i8 = lane & 7;
  const int arow = q & 1;  // index row of the pair
  const int acb = q >> 1;  // 0 main, 1 residual
  // code 4 i8 + b of the step (mma b) is half b & 1 of word 2 i8 + b / 2: byte 2 (b & 1) + acb
  const uint32_t sel_even = 0x4440u | static_cast<uint32_t>(acb), sel_odd = sel_even + 2;  // byte -> byte 0
  const uint32_t lane_cb = kWide ? smem_s + (acb && !kNoRes ? static_cast<uint32_t>((16u << kIB) * kMmaWideMainCopies +
                                                                          (i8 & (kMmaWideResCopies - 1)) * 16)
                                                : 0u)
                                 : static_cast<uint32_t>(__cvta_generic_to_shared(mma_smem)) +
                                       static_cast<uint32_t>(acb * n_cb * 16 + i8 * 16);
  // IB = 12: the lane's 4 codes (20 bits each) start at bit 80 i8 of the row's step words = bit
  // 16 (i8 & 1) of word 5 i8 / 2; it reads 3 words from there. Code c starts at bit 16 (i8 & 1) +
  // 20 c of them: word 0 / 0 / 1 / 1 (even i8) or 0 / 1 / 1 / 2 (odd), shift (16 (i8 & 1) + 20 c) % 32.
  const bool odd8 = i8 & 1;
  const uint32_t wide_sh0 = odd8 ? 16u : 0u, wide_sh1 = odd8 ? 4u : 20u, wide_sh2 = odd8 ? 24u : 8u,
                 wide_sh3 = odd8 ? 12u : 28u;
  const uint32_t wide_shift = acb ? static_cast<uint32_t>(kIB) : 0u,
                 wide_mask = acb ? 0xFFu : (1u << kIB) - 1u;  // residual / main bits
  // IB = 13: the lane's 4 codes (21 bits each) start at bit 84 i8 of the row's step = bit t13 =
  // 84 i8 % 32 of word 84 i8 / 32; it reads 4 words from there. Code c starts at bit t13 + 21 c:
  // word 0, then 0 or 1 (t13 >= 11), 1 or 2 (t13 >= 22), 1 or 2 (t13 >= 1).
  // Lanes with t13 <= 12 need 3 words only; their fourth read repeats the third (the row's
  // step ends at word 21: lane 7, t13 = 12, would read past it).
  const uint32_t t13 = (84u * i8) & 31u;
  const bool s13_1 = t13 >= 11, s13_2 = t13 >= 22, s13_3 = t13 >= 1;
  const int w13_last = t13 > 12 ? 3 : 2;
  const uint32_t wide_stride = acb ? 16u * kMmaWideResCopies : 16u * kMmaWideMainCopies;
  // IB = 12 without a residual (12-bit codes, the gather kernel's RB = 0 column map: code slot j
  // of mma b is column 8 (j % 8 / 2) + 2 (j / 8) + j % 2 + 4 b): address lane 8q + i supplies
  // slot 8 (q / 2) + i, so its codes are columns c0 = 8 (i / 2) + 2 (q / 2) + i % 2 (mma 0) and
  // c0 + 4 (mma 1), at bits 96 (i / 2) + 24 (q / 2) + 12 (i % 2) and 48 more: it reads words
  // 3 (i / 2) .. + 2 of the row's 12 and cuts code 0 out of words 0 / 1 (1 / 2 when q / 2 and
  // i % 2 are both 1) and code 1 out of words 1 / 2 (2 when q / 2 is 1).
  const bool nr_h = q >> 1, nr_ho = nr_h && odd8;
  const uint32_t nr_sh0 = (24u * nr_h + 12u * odd8) & 31u, nr_sh1 = (24u * nr_h + 12u * odd8 + 48u) & 31u;
  const unsigned char* c_src = k13      ? ring + arow * kRowChunkBytes + (84 * i8 >> 5) * 4
                               : kNoRes ? ring + arow * kRowStepBytes + 3 * (i8 >> 1) * 4
                               : kWide  ? ring + arow * kRowStepBytes + (5 * i8 >> 1) * 4
                                        : ring + arow * 64 + i8 * 8;  // + slot + pair + step
  const T* xh[kNT];
  const T* xl[kNT];
  mma_lane_activations<T, kHiLo, kNT>(a, lane, xh, xl);
  auto load_x = [&](uint4 (&xv)[kNT][kMmaChunk]) { mma_load_x_chunk<kXVec>(xh, xw, k, xv); };
  uint4 xc[kNT][kMmaChunk];
  load_x(xc);
  if (xw.tile < k.tiles) mma_walk_next<kMmaChunk, kWarps>(xw, k, warp);

  // ---- stage main and residual codebooks, 8 interleaved copies (mma_stage_codebook's layout) in
  // one loop, both loads first (a two-codebook form of the helper made ptxas spill 32 bytes in
  // the hi / lo, P = 2 variant; this loop compiles to the same SASS as before the helper existed).
  // IB = 12: the residual codebook's copies here; the main one was requested first, its group is
  // the oldest of the kStages in flight.
  if constexpr (kWide) {
    if constexpr (kV == 6) {
      // v6: 12-byte entries (3 words) padded to 16-byte rows (padding 0: D rows 6, 7, 14, 15)
      const uint32_t* src = static_cast<const uint32_t*>(L.cb);
      uint4* dst = reinterpret_cast<uint4*>(mma_smem);
      for (int e = threadIdx.x; e < (1 << kIB); e += kThreads)
        dst[e] = make_uint4(src[3 * e], src[3 * e + 1], src[3 * e + 2], 0u);
    }
    if constexpr (!kNoRes) {
      mma_stage_codebook<kMmaWideResCopies, kThreads>(
          reinterpret_cast<uint4*>(mma_smem + (size_t{16} << kIB) * kMmaWideMainCopies),
          static_cast<const uint4*>(L.rcb), kRows);
    }
    mma_cp_async_wait<kStages - 1>();
  } else {
    uint4* s = reinterpret_cast<uint4*>(mma_smem);
    const uint4* gm = static_cast<const uint4*>(L.cb);
    const uint4* gr = static_cast<const uint4*>(L.rcb);
    const int n = L.groups * kRows;
    for (int e = threadIdx.x; e < n; e += kThreads) {
      const uint4 vm = gm[e], vr = gr[e];
#pragma unroll
      for (int i = 0; i < kFastCopies; ++i) {
        const int c = (i + e) & (kFastCopies - 1);
        s[e * kFastCopies + c] = vm;
        s[n_cb + e * kFastCopies + c] = vr;
      }
    }
  }
  __syncthreads();

  // One step (32 columns) of every pair of the row block: P x 4 gathers, then P x 4 mma per n-tile
  // (x 2 with hi / lo). Pair p accumulates mma b of n-tile nt into d[p][nt][b % 2] (two chains per
  // pair and n-tile, summed in fixed order after the item).
  auto step = [&](float (&d)[kPairs][kNT][2][4], const unsigned char* slot, int s, uint32_t cbase,
                  const uint4 (&xs)[kNT][kMmaChunk], const uint4 (&xls)[kNT][kMmaChunk]) {
    uint32_t af[kPairs][4][4];
#pragma unroll
    for (int p = 0; p < kPairs; ++p) {
      if constexpr (kNoRes) {
        const uint32_t* w = reinterpret_cast<const uint32_t*>(slot + s * kStepStride);
        const uint32_t w0 = w[0], w1 = w[1], w2 = w[2];
        const uint32_t code0 = __funnelshift_r(nr_ho ? w1 : w0, nr_ho ? w2 : w1, nr_sh0) & 0xFFFu;
        const uint32_t code1 = __funnelshift_r(nr_h ? w2 : w1, w2, nr_sh1) & 0xFFFu;
        mma_ldsm_x4_trans(cbase + code0 * 16u * kMmaWideMainCopies, af[p][0]);
        mma_ldsm_x4_trans(cbase + code1 * 16u * kMmaWideMainCopies, af[p][1]);
      } else if constexpr (k13) {
        const uint32_t* w = reinterpret_cast<const uint32_t*>(slot + s * kStepStride);
        const uint32_t w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[w13_last];
        const uint32_t code[4] = {__funnelshift_r(w0, w1, t13),
                                  __funnelshift_r(s13_1 ? w1 : w0, s13_1 ? w2 : w1, (t13 + 21u) & 31u),
                                  __funnelshift_r(s13_2 ? w2 : w1, s13_2 ? w3 : w2, (t13 + 42u) & 31u),
                                  __funnelshift_r(s13_3 ? w2 : w1, s13_3 ? w3 : w2, (t13 + 63u) & 31u)};
#pragma unroll
        for (int b = 0; b < 4; ++b)
          mma_ldsm_x4_trans(cbase + ((code[b] >> wide_shift) & wide_mask) * wide_stride, af[p][b]);
      } else if constexpr (kWide) {
        const uint32_t* w = reinterpret_cast<const uint32_t*>(slot + s * kStepStride);
        const uint32_t w0 = w[0], w1 = w[1], w2 = w[2];
        const uint32_t code[4] = {__funnelshift_r(w0, w1, wide_sh0),
                                  __funnelshift_r(odd8 ? w1 : w0, odd8 ? w2 : w1, wide_sh1),
                                  __funnelshift_r(w1, w2, wide_sh2),
                                  __funnelshift_r(odd8 ? w2 : w1, w2, wide_sh3)};
#pragma unroll
        for (int b = 0; b < 4; ++b)
          mma_ldsm_x4_trans(cbase + ((code[b] >> wide_shift) & wide_mask) * wide_stride, af[p][b]);
      } else {
        const uint2 w = *reinterpret_cast<const uint2*>(slot + p * kMmaPairChunkBytes + s * 128);
        const uint32_t wv[2] = {w.x, w.y};
#pragma unroll
        for (int b = 0; b < 4; ++b)
          mma_ldsm_x4_trans(cbase + __byte_perm(wv[b >> 1], 0u, (b & 1) ? sel_odd : sel_even) * kEntryBytes, af[p][b]);
      }
    }
    if constexpr (kNoRes) {
      // mma b: columns 8t + 4b .. + 3 of B lane (g, t) = words 2b, 2b + 1 of its activation load
#pragma unroll
      for (int nt = 0; nt < kNT; ++nt) {
        const uint4& x = xs[nt][s];
        MmaOp<T>::run(d[0][nt][0], af[0][0], x.x, x.y);
        MmaOp<T>::run(d[0][nt][1], af[0][1], x.z, x.w);
        if constexpr (kHiLo) {
          const uint4& xlo = xls[nt][s];
          MmaOp<T>::run(d[0][nt][0], af[0][0], xlo.x, xlo.y);
          MmaOp<T>::run(d[0][nt][1], af[0][1], xlo.z, xlo.w);
        }
      }
    } else {
#pragma unroll
      for (int nt = 0; nt < kNT; ++nt) {
        const uint4& x = xs[nt][s];
        const uint32_t xv[4] = {mma_b_operand(x, 0), mma_b_operand(x, 1), mma_b_operand(x, 2), mma_b_operand(x, 3)};
#pragma unroll
        for (int p = 0; p < kPairs; ++p)
#pragma unroll
          for (int b = 0; b < 4; ++b) MmaOp<T>::run(d[p][nt][b & 1], af[p][b], xv[b], xv[b]);
        if constexpr (kHiLo) {
          const uint4& xlo = xls[nt][s];
          const uint32_t lv[4] = {mma_b_operand(xlo, 0), mma_b_operand(xlo, 1), mma_b_operand(xlo, 2),
                                  mma_b_operand(xlo, 3)};
#pragma unroll
          for (int p = 0; p < kPairs; ++p)
#pragma unroll
            for (int b = 0; b < 4; ++b) MmaOp<T>::run(d[p][nt][b & 1], af[p][b], lv[b], lv[b]);
        }
      }
    }
  };

  int kc = 0;  // chunks consumed
  for (int tile = blockIdx.x; tile < k.tiles; tile += gridDim.x) {
    for (int it = warp; it < k.items; it += kWarps) {
      const int rb = tile * k.RT + (it >> k.log_s);
      float d[kPairs][kNT][2][4];
#pragma unroll
      for (int p = 0; p < kPairs; ++p)
#pragma unroll
        for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
          for (int c = 0; c < 4; ++c) d[p][nt][0][c] = d[p][nt][1][c] = 0.f;
      const int ubeg = (it & (k.S - 1)) * k.U, uend = min(ubeg + k.U, k.upr);
      if (rb < k.blocks && ubeg < uend) {
        int g = 0, uu = ubeg;
        if (L.groups > 1) { g = ubeg / upg; uu = ubeg - g * upg; }
        uint32_t cbase = lane_cb + static_cast<uint32_t>(g * kRows * kEntryBytes);
#pragma unroll 1
        for (int u0 = ubeg; u0 < uend; u0 += kMmaChunk) {
          // lo activations of this chunk (hi / lo only: not ahead, to stay within 128 registers)
          uint4 xlc[kNT][kMmaChunk];
#pragma unroll
          for (int nt = 0; nt < kNT; ++nt) mma_load_lo<kHiLo>(xl[nt], u0, uend, xlc[nt]);
          // activations of the next chunk
          uint4 xn[kNT][kMmaChunk];
          load_x(xn);
          if (xw.tile < k.tiles) mma_walk_next<kMmaChunk, kWarps>(xw, k, warp);
          // index words of this chunk (requested kStages - 1 chunks ago)
          mma_cp_async_wait<kStages - 2>();
          __syncwarp();
          const unsigned char* slot = c_src + (kc & (kStages - 1)) * kSlotBytes;
          ++kc;
          request();  // into the slot read in the previous chunk (all lanes passed the __syncwarp)
          if (u0 + kMmaChunk <= uend && uu + kMmaChunk <= upg) {
            // the common case, warp-uniform: a whole chunk inside one group
#pragma unroll
            for (int s = 0; s < kMmaChunk; ++s) step(d, slot, s, cbase, xc, xlc);
            uu += kMmaChunk;
            if (uu == upg) {  // next group's codebooks
              uu = 0;
              cbase += static_cast<uint32_t>(kRows * kEntryBytes);
            }
          } else {
#pragma unroll
            for (int s = 0; s < kMmaChunk; ++s) {
              if (u0 + s < uend) {  // warp-uniform
                step(d, slot, s, cbase, xc, xlc);
                if (++uu == upg) {  // next group's codebooks
                  uu = 0;
                  cbase += static_cast<uint32_t>(kRows * kEntryBytes);
                }
              }
            }
          }
          mma_shift_activations(xc, xn);
        }
      }
      // D fragment of lane (g, t): (row pair output g, act row 2t, 2t+1), (output g + 8, ...)
#pragma unroll
      for (int p = 0; p < kPairs; ++p)
#pragma unroll
        for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
          for (int c = 0; c < 4; ++c)
            part[((it * kPairs + p) * kNT + nt) * kMmaItemFloats + lane * 4 + c] = d[p][nt][0][c] + d[p][nt][1][c];
    }
    __syncthreads();
    mma_fold_tile<T, kPairs, kV, kNT>(a, part, k, tile);
    __syncthreads();
  }
  mma_cp_async_wait<0>();  // nothing is left in flight (every request was consumed); for form
}
#endif  // !VPTQ_HIP

// The activation variant of a tensor-core kernel for a launch: hi / lo (prepared workspace
// buffers, aligned), X 16-byte aligned (vector loads), or element loads.
template <typename Kernel>
Kernel* mma_activation_variant(const GemvArgs& a, Kernel* hi_lo, Kernel* aligned, Kernel* unaligned) {
  return a.x_lo ? hi_lo : aligned_to(a.x, 16) ? aligned : unaligned;
}

// Host launchers (gemv_mma.cu; CUDA only), one per main index bits IB (8, 12, 13), residual bits
// RB, P, n-tile count NT (M <= 8 * NT rows), warps per block W and vector length V (8; 6).
template <typename T, int IB, int RB, int P, int NT, int W = mma_warps_of(IB), int V = 8>
gpuError_t launch_gemv_mma(const GemvArgs& a, size_t smem_bytes, int grid, gpuStream_t stream);

template <typename T, int IB, int RB, int P, int NT, int W = mma_warps_of(IB), int V = 8>
int gemv_mma_blocks_per_sm(size_t smem_bytes);

}  // namespace gpu
}  // namespace vptq
