// csrc/cuda/gemv_mma_v12.cuh: the tensor-core decode kernel (M <= 16) for v12-k4096-4096 (V = 12,
// 12-bit main and 12-bit residual codes = 24-bit codes, G = 1), fp16 / bf16, CUDA sm_80+ only.
// It reuses gemv_mma.cuh's pieces (mma / ldmatrix / cp.async wrappers, MmaWork / MmaWalk, the
// fold, the activation loads); what differs is the codebook layout and the A operand.
//
// Why a layout of its own: a v12 entry is 24 bytes, ldmatrix reads 16-byte rows at 16-byte
// aligned addresses, and two 4096-entry codebooks padded to 32 bytes (256 KB) do not fit shared
// memory. So each entry is split, and both codebooks fit in 192 KB:
//   head_main[c] = main[c] outputs 0..7       (16 bytes, 4096 rows, 64 KB)
//   head_res[c]  = res[c] outputs 0..7        (64 KB)
//   tail[c]      = main[c] outputs 8..11 | res[c] outputs 8..11   (16 bytes, 64 KB)
// One mma = one index row (A rows = outputs) x 16 codes of one codebook (k-slots):
//   main mma: A rows 0..7 from head_main[c], rows 8..15 from tail[c] (rows 8..11 = main outputs
//             8..11; rows 12..15 = res[c] outputs 8..11 of a MAIN code: junk)
//   res mma:  rows 0..7 from head_res[c'], rows 8..15 from tail[c'] (rows 8..11 junk, rows
//             12..15 = res outputs 8..11)
// so main and residual accumulate in two D fragments (dm, dr) and the item's result is
// outputs 0..7 = dm rows 0..7 + dr rows 0..7, outputs 8..11 = dm rows 8..11 + dr rows 12..15
// (one shuffle: D row 12 + g sits in lane + 16 of row 8 + g); rows 12..15 are never stored.
// The junk rows are products of real codebook values with real activations (finite), and an
// mma's D row depends on its A row only, so they cannot leak into the stored rows.
//
// Layout and work split
//   step        = 32 consecutive columns of one index row (24 words = 96 bytes of 24-bit codes;
//                 code of column c at bits 24c .. 24c + 23, main = low 12 bits): 2 main + 2 res
//                 mma. Column map of gemv_mma.cuh's 12-bit no-residual variant: code slot j of
//                 mma b = column 8 (j % 8 / 2) + 2 (j / 8) + j % 2 + 4 b, so lane (g, t)'s one
//                 16-byte activation load (columns 8t .. 8t + 7) gives B of mma 0 (words 0, 1)
//                 and mma 1 (words 2, 3), for the main and the residual mma alike.
//   address lane= lane 8q + i supplies row i of matrix q of ldmatrix.x4: A rows 8 (q & 1) ..
//                 (head table for q & 1 = 0, tail for 1), k-slots 8 (q / 2) + i, i.e. columns
//                 8 (i / 2) + d and 8 (i / 2) + d + 4 (mma 0, 1) with d = 2 (q / 2) + i % 2. Its
//                 two 24-bit codes start at bit 24 d and 24 d + 96 of the 6 words 6 (i / 2) ..;
//                 each is cut out by one funnel shift at a lane-constant offset (words that a
//                 code does not reach are not read: the last lane's window ends at the step's
//                 word 23).
//   warp item   = one index row x U steps (U a multiple of 4: chunk = 4 steps = 384 bytes).
//   index words = streamed by cp.async into a per-warp ring of kV12Stages(NT) chunk slots (24
//                 pieces of 16 bytes: lanes 0 .. 23 copy one), kStages - 1 chunks ahead, across
//                 items and tiles (MmaWalk), as in gemv_mma.cuh.
//   block       = 16 warps, one block per SM (192 KB of codebooks); tile = RT index rows x S
//                 items (RT * S = 16, or RT = 1 for S = 16), split-K S from dispatch.cu's
//                 persistent-grid model; the fold sums the S items in order (deterministic).
//   activations = as gemv_mma.cuh (X itself, or x' = X[perm] * scale as hi / lo for bf16 + norm).
//   n-tiles     = kNT = 1 (M <= 8) or 2 (9 <= M <= 16).
#pragma once

#include "gemv_mma.cuh"

namespace vptq {
namespace gpu {

constexpr int kV12Warps = 16;
constexpr int kV12Threads = kV12Warps * 32;
constexpr int kV12Entries = 4096;         // rows of each codebook (12-bit codes)
constexpr int kV12TableBytes = kV12Entries * 16;  // one of head_main, head_res, tail
constexpr int kV12StepBytes = 96;         // one row's 24 words of one 32-column step
constexpr int kV12SlotBytes = kMmaChunk * kV12StepBytes;  // one chunk of one row: 384 bytes
// Ring slots per warp: 4 with one n-tile; 2 with two (their larger D fragments would pass the
// 227 KB per-block limit of sm_90 with 4).
__host__ __device__ constexpr int v12_stages(int ntiles) { return ntiles == 1 ? 4 : 2; }

// Dynamic shared memory: the three tables + the items' D fragments + the warps' rings.
inline size_t mma_v12_smem_bytes(int items, int ntiles) {
  return size_t{3} * kV12TableBytes + static_cast<size_t>(items) * ntiles * kMmaItemFloats * sizeof(float) +
         static_cast<size_t>(kV12Warps) * v12_stages(ntiles) * kV12SlotBytes;
}

#if !VPTQ_HIP
template <typename T, bool kXVec, bool kHiLo, int kNT>
__global__ void __launch_bounds__(kV12Threads, 1) gemv_mma_v12_kernel(GemvArgs a) {
  static_assert(!kHiLo || kXVec, "hi / lo activations are prepared buffers (aligned)");
  static_assert(kNT == 1 || kNT == 2, "n-tiles of 8 activation rows: M <= 8 or M <= 16");
  constexpr int kStages = v12_stages(kNT);
  constexpr int kPieces = kV12SlotBytes / 16;  // 24
  constexpr int kUnitWords = kV12StepBytes / 4;
  extern __shared__ __align__(16) unsigned char mma_smem[];
  const LayerView& L = a.L;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const MmaWork k = mma_work(a, 1, 1);  // one index row per "pair"
  const int W = L.words_per_row;

  float* part = reinterpret_cast<float*>(mma_smem + 3 * kV12TableBytes);
  unsigned char* ring = mma_smem + 3 * kV12TableBytes +
                        static_cast<size_t>(k.items) * kNT * kMmaItemFloats * sizeof(float) +
                        static_cast<size_t>(warp) * kStages * kV12SlotBytes;
  const uint32_t ring_s = static_cast<uint32_t>(__cvta_generic_to_shared(ring));
  const uint32_t smem_s = static_cast<uint32_t>(__cvta_generic_to_shared(mma_smem));

  // ---- producer role: piece `lane` (< 24) of a chunk = step lane / 6, bytes 16 (lane % 6) ..
  const bool producer = lane < kPieces;
  const int piece_step = lane / 6, piece_word = 4 * (lane % 6);
  MmaWalk pw{0, 0, 0, 0, 0};
  pw.tile = static_cast<int>(blockIdx.x);
  pw.it = warp;
  mma_walk_settle<kV12Warps>(pw, k, warp);
  MmaWalk xw = pw;  // activations: one chunk ahead of the mma
  int kp = 0;       // chunks requested
  const uint32_t* row_words = nullptr;
  auto set_row = [&]() { row_words = L.packed + static_cast<size_t>(min(pw.rb, L.index_rows - 1)) * W + piece_word; };
  set_row();
  auto request = [&]() {
    mma_ring_request<kV12Warps>(pw, k, warp, kp, [&]() {
      const int u = pw.u + piece_step;
      if (producer && u < pw.uend) {
        const int off = (kp & (kStages - 1)) * kV12SlotBytes + lane * 16;
        mma_cp_async16(ring_s + off, ring + off, row_words + static_cast<size_t>(u) * kUnitWords);
      }
    }, set_row);
  };
#pragma unroll 1
  for (int s = 0; s < kStages - 1; ++s) request();

  // ---- address role of this lane (see the header)
  const int q = lane >> 3, i8 = lane & 7;
  const int d = 2 * (q >> 1) + (i8 & 1);                   // column offset within 8 (0 .. 3)
  const int w_lo = (24 * d) >> 5;                          // first word of the code (0, 0, 1, 2)
  const uint32_t sh = static_cast<uint32_t>((24 * d) & 31);  // its bit offset (0, 24, 16, 8)
  const int w_hi = w_lo + (sh > 8 ? 1 : 0);                // second word, only if the code reaches it
  const unsigned char* c_src = ring + (i8 >> 1) * 24;      // + slot + step: the lane's 6 words
  const uint32_t base_main = smem_s + ((q & 1) ? 2u * kV12TableBytes : 0u);
  const uint32_t base_res = smem_s + ((q & 1) ? 2u * kV12TableBytes : static_cast<uint32_t>(kV12TableBytes));

  const T* xh[kNT];
  const T* xl[kNT];
  mma_lane_activations<T, kHiLo, kNT>(a, lane, xh, xl);
  auto load_x = [&](uint4 (&xv)[kNT][kMmaChunk]) { mma_load_x_chunk<kXVec>(xh, xw, k, xv); };
  uint4 xc[kNT][kMmaChunk];
  load_x(xc);
  if (xw.tile < k.tiles) mma_walk_next<kMmaChunk, kV12Warps>(xw, k, warp);

  // ---- stage the three tables (entries are 24 bytes: 3 x 8-byte loads per codebook)
  {
    const uint2* cm = static_cast<const uint2*>(L.cb);
    const uint2* cr = static_cast<const uint2*>(L.rcb);
    uint4* hm = reinterpret_cast<uint4*>(mma_smem);
    uint4* hr = hm + kV12Entries;
    uint4* tl = hr + kV12Entries;
    for (int e = threadIdx.x; e < kV12Entries; e += kV12Threads) {
      const uint2 m0 = cm[3 * e], m1 = cm[3 * e + 1], m2 = cm[3 * e + 2];
      const uint2 r0 = cr[3 * e], r1 = cr[3 * e + 1], r2 = cr[3 * e + 2];
      hm[e] = make_uint4(m0.x, m0.y, m1.x, m1.y);
      hr[e] = make_uint4(r0.x, r0.y, r1.x, r1.y);
      tl[e] = make_uint4(m2.x, m2.y, r2.x, r2.y);
    }
  }
  __syncthreads();

  // One step: 2 main + 2 residual gathers, then per n-tile 2 main + 2 residual mma (x 2 hi / lo).
  auto step = [&](float (&dm)[kNT][4], float (&dr)[kNT][4], const unsigned char* slot, int s,
                  const uint4 (&xs)[kNT][kMmaChunk], const uint4 (&xls)[kNT][kMmaChunk]) {
    const uint32_t* w = reinterpret_cast<const uint32_t*>(slot + s * kV12StepBytes);
    const uint32_t code0 = __funnelshift_r(w[w_lo], w[w_hi], sh);
    const uint32_t code1 = __funnelshift_r(w[w_lo + 3], w[w_hi + 3], sh);
    uint32_t am0[4], am1[4], ar0[4], ar1[4];
    mma_ldsm_x4_trans(base_main + (code0 & 0xFFFu) * 16u, am0);
    mma_ldsm_x4_trans(base_main + (code1 & 0xFFFu) * 16u, am1);
    mma_ldsm_x4_trans(base_res + ((code0 >> 12) & 0xFFFu) * 16u, ar0);
    mma_ldsm_x4_trans(base_res + ((code1 >> 12) & 0xFFFu) * 16u, ar1);
#pragma unroll
    for (int nt = 0; nt < kNT; ++nt) {
      const uint4& x = xs[nt][s];
      MmaOp<T>::run(dm[nt], am0, x.x, x.y);
      MmaOp<T>::run(dr[nt], ar0, x.x, x.y);
      MmaOp<T>::run(dm[nt], am1, x.z, x.w);
      MmaOp<T>::run(dr[nt], ar1, x.z, x.w);
      if constexpr (kHiLo) {
        const uint4& xlo = xls[nt][s];
        MmaOp<T>::run(dm[nt], am0, xlo.x, xlo.y);
        MmaOp<T>::run(dr[nt], ar0, xlo.x, xlo.y);
        MmaOp<T>::run(dm[nt], am1, xlo.z, xlo.w);
        MmaOp<T>::run(dr[nt], ar1, xlo.z, xlo.w);
      }
    }
  };

  int kc = 0;  // chunks consumed
  for (int tile = blockIdx.x; tile < k.tiles; tile += gridDim.x) {
    for (int it = warp; it < k.items; it += kV12Warps) {
      const int rb = tile * k.RT + (it >> k.log_s);
      float dm[kNT][4], dr[kNT][4];
#pragma unroll
      for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
        for (int c = 0; c < 4; ++c) dm[nt][c] = dr[nt][c] = 0.f;
      const int ubeg = (it & (k.S - 1)) * k.U, uend = min(ubeg + k.U, k.upr);
      if (rb < k.blocks && ubeg < uend) {
#pragma unroll 1
        for (int u0 = ubeg; u0 < uend; u0 += kMmaChunk) {
          uint4 xlc[kNT][kMmaChunk];
#pragma unroll
          for (int nt = 0; nt < kNT; ++nt) mma_load_lo<kHiLo>(xl[nt], u0, uend, xlc[nt]);
          uint4 xn[kNT][kMmaChunk];
          load_x(xn);
          if (xw.tile < k.tiles) mma_walk_next<kMmaChunk, kV12Warps>(xw, k, warp);
          mma_cp_async_wait<kStages - 2>();  // this chunk's index words (requested kStages - 1 ago)
          __syncwarp();
          const unsigned char* slot = c_src + (kc & (kStages - 1)) * kV12SlotBytes;
          ++kc;
          request();  // into the slot read in the previous chunk (all lanes passed the __syncwarp)
          if (u0 + kMmaChunk <= uend) {  // warp-uniform
#pragma unroll
            for (int s = 0; s < kMmaChunk; ++s) step(dm, dr, slot, s, xc, xlc);
          } else {
#pragma unroll
            for (int s = 0; s < kMmaChunk; ++s)
              if (u0 + s < uend) step(dm, dr, slot, s, xc, xlc);
          }
          mma_shift_activations(xc, xn);
        }
      }
      // D fragment of lane (g, t): c0, c1 = row g, c2, c3 = row g + 8. Outputs 8 + g (g < 4) take
      // the residual's row 12 + g from lane + 16; rows 12 .. 15 (lanes 16 .. 31, c2 / c3) are 0.
#pragma unroll
      for (int nt = 0; nt < kNT; ++nt) {
        const float r2 = __shfl_down_sync(0xFFFFFFFFu, dr[nt][2], 16);
        const float r3 = __shfl_down_sync(0xFFFFFFFFu, dr[nt][3], 16);
        float* out = part + (it * kNT + nt) * kMmaItemFloats + lane * 4;
        out[0] = dm[nt][0] + dr[nt][0];
        out[1] = dm[nt][1] + dr[nt][1];
        out[2] = lane < 16 ? dm[nt][2] + r2 : 0.f;
        out[3] = lane < 16 ? dm[nt][3] + r3 : 0.f;
      }
    }
    __syncthreads();
    mma_fold_tile<T, 1, 12, kNT>(a, part, k, tile);
    __syncthreads();
  }
  mma_cp_async_wait<0>();  // nothing is left in flight (every request was consumed); for form
}
#endif  // !VPTQ_HIP

// Host launchers (gemv_mma_v12.cu; CUDA only), one per n-tile count NT (M <= 8 * NT rows).
template <typename T, int NT>
gpuError_t launch_gemv_mma_v12(const GemvArgs& a, size_t smem_bytes, int grid, gpuStream_t stream);

template <typename T, int NT>
int gemv_mma_v12_blocks_per_sm(size_t smem_bytes);

}  // namespace gpu
}  // namespace vptq
