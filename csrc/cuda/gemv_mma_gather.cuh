// csrc/cuda/gemv_mma_gather.cuh: the tensor-core decode kernel (M <= 16) for main codebooks
// larger than gemv_mma.cuh stages: 65536 rows (index bits IB = 16: v8-k65536 (V = 8, RB = 0),
// v8-k65536-256 (V = 8, its 256-row residual codebook staged, RB = 8), v16-k65536-65536 (V = 16,
// both codebooks gathered, RB = 16)) and 4096 / 8192 rows (IB = 12 / 13: v8-k4096, v8-k4096-256,
// v8-k8192-256, codes cut out with funnel shifts), fp16 / bf16, CUDA sm_80+ only (dispatch.cu
// decides). Main-codebook rows are gathered, or, in the staged-main variant (4096 rows, G = 1),
// read from one copy of the codebook in shared memory.
//
// Why: a 1 MiB (v8) or 2 MiB (v16) codebook does not fit shared memory, so every lookup is a
// random 16- or 32-byte gather from L2 (perf-facts: ~140 G/s of 16-byte gathers on the H100);
// 64 / 128 KB ones are gathered through L1. The CUDA-core fast kernel (gemv_fast.cuh)
// holds each gathered row in registers and then spends 8 FMAs per code and activation row (M = 8
// costs 2.2x M = 1). Here cp.async copies each main-codebook row from L2 into a per-warp staging
// ring in shared memory (no registers held while the gather is in flight), laid out so that the
// inner loop of gemv_mma.cuh (ldmatrix.trans + mma.m16n8k16, fp32 accumulation) reads it as the
// mma A operand: one mma applies 16 lookups to 8 outputs x 8 activation rows (one n-tile).
//
// Layout and work split (one row pair per warp step; MmaWork / MmaWalk / mma_fold_tile of
// gemv_mma.cuh)
//   step        = 32 consecutive columns (one 32-code unit: 16 + RB packed words per row) of 2
//                 index rows (r0, r1) for V = 8, of one index row for V = 16: 16 outputs, the
//                 mma's 16 A rows, either way.
//   RB = 8      = 4 mma per step, as in gemv_mma.cuh: k-slots = 8 codes x {main, residual}, code
//                 slot i of mma b is column 4i + b (B operand: mma_b_operand). Address lane 8q + i
//                 (row q & 1, codebook q / 2) needs codes 4i .. 4i + 3 of its row = the 96 bits of
//                 words 3i .. 3i + 2 of the unit (24-bit codes, main = low 16 bits). Main lanes
//                 (q < 2) gather their 4 main rows into staging rows (mma b, lane); residual lanes
//                 (q >= 2) keep the 4 residual bytes and address the residual codebook, staged
//                 once per block as one copy (4 KB; random rows conflict in the banks, but shared
//                 memory is not this kernel's limit and every KB it takes is L1 lost).
//   RB = 0      = 2 mma per step: k-slots = 16 main codes, matrix q = row q & 1, k-half h = q / 2;
//                 code slot j of mma b is column 8 (j % 8 / 2) + 2 (j / 8) + j % 2 + 4b, so B lane
//                 (g, t) finds mma b's four columns at 8t + 4b .. 8t + 4b + 3 = words 2b, 2b + 1 of
//                 its 16-byte activation load (no permutes), and address lane 8q + i finds its
//                 two codes (mma 0, 1) in half i % 2 of words 4 (i / 2) + h and 4 (i / 2) + h + 2.
//   V = 16      = 4 mma per step (RB = 16, 32-bit codes: word c of the unit is code c, main = low
//                 16 bits): mma 2b + r applies the main (r = 0) or residual (r = 1) rows of the
//                 16 codes in B words 2b, 2b + 1, with the RB = 0 column map (code slot j of
//                 column group b is column 8 (j % 8 / 2) + 2 (j / 8) + j % 2 + 4b). A row = output
//                 element of the 32-byte codebook row: matrix q of ldmatrix = k-half q / 2, output
//                 half q & 1, so address lane 8q + i gathers bytes 16 (q & 1) .. + 15 of the rows
//                 of code word 8 (i / 2) + 2 (q / 2) + i % 2 + 4b, main and residual, both from
//                 global memory (L2): 4 gathers per lane and step, a step's staging is 2 KB.
//   IB = 12, 13 = the V = 8 layouts above with T = IB + RB-bit codes: the lane's codes (RB = 8:
//                 4i .. 4i + 3, RB = 0: its two code slots, 48 bits apart) lie in at most 4 (3)
//                 words from word first_bit / 32 of the unit (loads clamped to the unit's last
//                 word), cut out with __funnelshift_r at lane-constant word positions.
//   staging     = per warp, 2 slots of one chunk (2 KB: 2 steps x 1 KB for V = 8, one step of
//                 2 KB for V = 16; 16-byte rows at (mma, lane), the order ldmatrix reads them: each 8-row matrix is 128
//                 contiguous bytes, conflict-free). Gathers are cp.async.ca (through L1: repeated
//                 rows may hit). While a warp computes chunk c from one slot, the gathers of chunk
//                 c + 1 fill the other, and the index words of chunk c + 2 are in flight to
//                 registers (plain loads); activations are loaded one chunk ahead.
//   pipeline    = per chunk: __syncwarp (every lane is done with the slot), issue chunk c + 1's
//                 gathers + commit, cp.async.wait_group 1 (chunk c landed), __syncwarp, 2 steps
//                 of ldmatrix + mma. A warp's chunks form one sequence across warp items and
//                 block tiles (MmaWalk), so the gather stream never drains at an item boundary.
//   block       = 256 threads, tile = RT row pairs x S items as in gemv_mma.cuh (P = 1); the D
//                 fragments go to shared memory and mma_fold_tile sums the S items in order.
//   groups      = RB = 0, 16: any G (codebook g at cb + g * 65536 rows, rcb + g * 65536 rows);
//                 RB = 8: G = 1 only (the staged residual codebook; dispatch.cu checks).
//   activations = as gemv_mma.cuh: T [m][I], X itself or prepared x' (hi / lo for bf16 + norm).
//   n-tiles     = kNT = 1 (M <= 8) or 2 (M <= 16): B columns of n-tile nt = activation rows
//                 8 nt .. 8 nt + 7; every A fragment (one ldmatrix) feeds kNT mma, so a second
//                 n-tile costs activation loads and mma, not gathers (measured: M = 16 at
//                 1.01-1.19x the M = 8 time, docs/kernels.md). D fragments per (item, n-tile).
//   staged main = kStageMain (IB = 12 only in the table: 4096 rows = 64 KB, G = 1): the main
//                 codebook is copied once per block into shared memory (one copy, cp.async.cg,
//                 before the first __syncthreads) and ldmatrix reads each code's row there: no
//                 gathers, no ring, no cp.async waits in the loop. issue() turns the chunk's codes
//                 into ldmatrix row addresses (main lanes: the main codebook, residual lanes: the
//                 residual one), the same lane roles and column maps as above. Random rows share
//                 banks (measured 1.5 M bank conflicts in 2.5 M shared wavefronts, H200, 8B up
//                 M = 8), but the kernel is issue-bound (~100 instructions per step against ~44
//                 in gemv_mma.cuh: index loads and funnel-shift decode per 2-step chunk, chunk
//                 bookkeeping). 0.73-0.95x of the gathering time at M = 2..16 (docs/kernels.md).
#pragma once

#include <cstdint>

#include "gemv_mma.cuh"

namespace vptq {
namespace gpu {

constexpr int kGatherIndexBits = 16;                     // 16-bit main codes (65536 rows); also IB = 12, 13
constexpr int kGatherResRows = 256;                      // staged residual codebook rows (RB = 8)
constexpr int kGatherSlotBytes = 2048;                   // staging of one chunk
// One step's staged rows: V = 8, 64 main rows of 16 bytes (4 or 2 mma x 16 or 32 lanes); V = 16,
// 128 half rows of 16 bytes (4 mma x 32 lanes). Steps per chunk: what fills a slot.
__host__ __device__ constexpr int mma_gather_step_bytes(int v) { return v == 16 ? 128 * 16 : 64 * 16; }
__host__ __device__ constexpr int mma_gather_chunk(int v) { return kGatherSlotBytes / mma_gather_step_bytes(v); }
// Shared memory is taken from L1, which caches ~20% of the random main-codebook gathers for the
// fast kernel: the ring and the residual codebook are kept small. Measured (H200, 8B up, M = 1,
// separate device calls): 8 residual copies (32 KB) -> 1 copy (4 KB): v8-k65536-256 83.8 -> 67.1 us;
// 4-step -> 2-step chunks (8 KB -> 4 KB of ring per warp): 59.5 -> 58.9 us (v8-k65536), 67.1 ->
// 66.3 us (v8-k65536-256). The single residual copy's bank conflicts cost shared-memory
// wavefronts, which are not this kernel's limit.
constexpr int kGatherSlots = 2;                          // staging slots per warp
constexpr int kGatherWarpBytes = kGatherSlots * kGatherSlotBytes;
constexpr int kGatherResCopies = 1;  // copies of the staged residual codebook

// Dynamic shared memory, in this order: the main codebook (staged-main variant: G = 1, one copy),
// the residual codebook (RB = 8, G = 1), the items' D fragments, the warps' staging
// rings (gathering variant only).
__host__ __device__ constexpr size_t mma_gather_main_bytes(int ib, bool stage_main) {
  return stage_main ? (size_t{1} << ib) * 16 : 0;
}
__host__ __device__ constexpr size_t mma_gather_res_bytes(int rb) {
  return rb == 8 ? static_cast<size_t>(kGatherResRows) * 16 * kGatherResCopies : 0;
}
inline size_t mma_gather_smem_bytes(int ib, int rb, bool stage_main, int items, int ntiles) {
  return mma_gather_main_bytes(ib, stage_main) + mma_gather_res_bytes(rb) +
         static_cast<size_t>(items) * ntiles * kMmaItemFloats * sizeof(float) +
         (stage_main ? 0 : static_cast<size_t>(kMmaWarps) * kGatherWarpBytes);
}

#if !VPTQ_HIP
// A lane's index word `a` (0 .. N - 1, a lane constant) of a step, as a select chain (no
// dynamically indexed register array, which would go to local memory).
template <int N>
__device__ __forceinline__ uint32_t mma_pick_word(const uint32_t (&w)[N], int a) {
  uint32_t v = w[0];
#pragma unroll
  for (int j = 1; j < N; ++j) v = a == j ? w[j] : v;
  return v;
}

template <typename T, bool kXVec, bool kHiLo, int kV, int kIB, int kRB, int kNT, bool kStageMain>
__global__ void __launch_bounds__(kMmaThreads, 2) gemv_mma_gather_kernel(GemvArgs a) {
  static_assert((kV == 8 && (kIB == 16 || kIB == 12 || kIB == 13) && (kRB == 0 || kRB == 8)) ||
                    (kV == 16 && kIB == 16 && kRB == 16),
                "v8 with 12, 13 or 16-bit main codes without or with a 256-row residual, v16-k65536-65536");
  static_assert(!kHiLo || kXVec, "hi / lo activations are prepared buffers (aligned)");
  static_assert(kNT == 1 || kNT == 2, "n-tiles of 8 activation rows: M <= 8 or M <= 16");
  static_assert(!kStageMain || (kV == 8 && kIB != 16), "staged main codebook: 4096 / 8192 rows (64 / 128 KB)");
  constexpr bool kWide = kV == 16;
  constexpr bool kStagedRes = kRB == 8;               // residual codebook in shared memory
  constexpr bool kOddCodes = kIB != 16;               // codes not aligned to 16-bit halves: funnel shifts
  constexpr int kCodeBits = kIB + kRB;                // T
  constexpr int kUnitWords = kCodeBits;               // packed words per 32-code unit and row
  // index words a lane reads per step: its codes' bits (odd codes: up to 4 words for the 4 codes
  // of RB = 8, 3 for the 2 codes of RB = 0, 48 bits apart)
  constexpr int kLaneWords = kOddCodes ? (kStagedRes ? 4 : 3) : (kStagedRes ? 3 : 2);
  constexpr int kMmas = kRB ? 4 : 2;                  // mma per step
  constexpr int kChunk = mma_gather_chunk(kV);        // steps per chunk
  constexpr int kStepBytes = mma_gather_step_bytes(kV);
  constexpr int kRowBytes = kV * 2;                   // one codebook row
  constexpr size_t kGroupRowsBytes = (size_t{1} << kIB) * kRowBytes;  // one group's main codebook
  constexpr size_t kResGroupBytes = kWide ? (size_t{1} << kRB) * kRowBytes : 0;  // V = 16: one residual group
  extern __shared__ __align__(16) unsigned char mma_smem[];
  const LayerView& L = a.L;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const MmaWork k = mma_work(a, 1, mma_index_rows_per_pair(kV));
  const int upg = L.group_size / kMmaStepCols;  // units per group
  const int W = L.words_per_row;
  const size_t group_words = static_cast<size_t>(L.index_rows) * W;

  constexpr size_t main_bytes = mma_gather_main_bytes(kIB, kStageMain);
  constexpr size_t res_bytes = mma_gather_res_bytes(kRB);
  float* part = reinterpret_cast<float*>(mma_smem + main_bytes + res_bytes);
  unsigned char* stage = mma_smem + main_bytes + res_bytes +
                         static_cast<size_t>(k.items) * kNT * kMmaItemFloats * sizeof(float) + warp * kGatherWarpBytes;
  const uint32_t smem_s = static_cast<uint32_t>(__cvta_generic_to_shared(mma_smem));
  const uint32_t stage_s = static_cast<uint32_t>(__cvta_generic_to_shared(stage));

  // ---- this lane's roles: address lane 8q + i of ldmatrix (V = 8: row arow of the pair; V = 16:
  // bytes 16 arow .. 16 arow + 15 of the codebook rows)
  const int q = lane >> 3, i8 = lane & 7, arow = q & 1;
  const bool main_lane = !kStagedRes || q < 2;
  // first index word of the lane in a unit
  // Odd codes: the lane's first code (RB = 8: codes 4i .. 4i + 3, T bits apart; RB = 0: the code
  // slots of the RB = 0 column map, columns c0 and c0 + 4) starts at bit first_bit of the unit;
  // code k at bit code_bit[k] of the lane's words (word code_bit >> 5, shift code_bit & 31).
  constexpr int kOddCodesPerLane = kStagedRes ? 4 : 2;
  constexpr int kOddCodeStride = kStagedRes ? kCodeBits : 4 * kCodeBits;
  const int first_bit = kStagedRes ? 4 * i8 * kCodeBits : kCodeBits * (8 * (i8 >> 1) + 2 * (q >> 1) + (i8 & 1));
  const int word_off = kOddCodes  ? first_bit >> 5
                       : kWide    ? 8 * (i8 >> 1) + 2 * (q >> 1) + (i8 & 1)
                       : kStagedRes ? 3 * i8
                                  : 4 * (i8 >> 1) + (q >> 1);
  const int last_word = kUnitWords - 1 - word_off;  // odd codes: the lane's words stay in the unit
  const int half_shift = kRB ? 0 : 16 * (i8 & 1);   // 16-bit codes, RB = 0: half of the word
  const int row_byte = kWide ? 16 * arow : 0;      // V = 16: half of the codebook row
  // staging row of (step s, mma b): s * kStepBytes + b * kMmaRowsBytes + lane * 16 (main lanes)
  constexpr int kMmaRowsBytes = kStepBytes / kMmas;
  const uint32_t lane_stage = stage_s + static_cast<uint32_t>(lane * 16);
  const uint32_t lane_res =
      smem_s + static_cast<uint32_t>(main_bytes + (i8 & (kGatherResCopies - 1)) * 16);  // its copy of entry 0
  const unsigned char* cb = static_cast<const unsigned char*>(L.cb);

  // index words of the lane's row for the chunk at walk w (zeros past the end), then w moves on
  auto load_index = [&](MmaWalk& w, uint32_t (&iv)[kChunk][kLaneWords]) {
    const int r = kWide ? w.rb : min(2 * w.rb + arow, L.index_rows - 1);
    const uint32_t* row = L.packed + static_cast<size_t>(r) * W + word_off;
#pragma unroll
    for (int s = 0; s < kChunk; ++s) {
      const int u = w.u + s;
#pragma unroll
      for (int j = 0; j < kLaneWords; ++j) iv[s][j] = 0u;
      if (w.tile < k.tiles && u < w.uend) {
        const size_t off = mma_unit_words<kUnitWords>(L, u, upg, group_words);
#pragma unroll
        for (int j = 0; j < kLaneWords; ++j)
          iv[s][j] = row[off + (kOddCodes ? min(j, last_word) : kWide ? 4 * j : kStagedRes ? j : 2 * j)];
      }
    }
    if (w.tile < k.tiles) mma_walk_next<kChunk>(w, k, warp);
  };

  // activations of this lane's B columns, per n-tile
  const T* xh[kNT];
  const T* xl[kNT];
  mma_lane_activations<T, kHiLo, kNT>(a, lane, xh, xl);

  // gathers of the chunk at walk w into staging slot `slot` from index words iv, its activations
  // into xv and (residual lanes) its residual bytes into rw, one commit group; then w moves on
  // Staged main codebook: no gathers; the ldmatrix row address of each (step, mma) goes to ma.
  auto issue = [&](MmaWalk& w, const uint32_t (&iv)[kChunk][kLaneWords], int slot, uint4 (&xv)[kNT][kChunk],
                   uint32_t (&rw)[kChunk], uint32_t (&ma)[kChunk][kMmas]) {
    const uint32_t dst0 = lane_stage + static_cast<uint32_t>(slot * kGatherSlotBytes);
    unsigned char* dst0_g = stage + slot * kGatherSlotBytes + lane * 16;
#pragma unroll
    for (int s = 0; s < kChunk; ++s) {
      const int u = w.u + s;
#pragma unroll
      for (int nt = 0; nt < kNT; ++nt) xv[nt][s] = make_uint4(0, 0, 0, 0);
      rw[s] = 0u;
#pragma unroll
      for (int b = 0; b < kMmas; ++b) ma[s][b] = smem_s;
      if (w.tile < k.tiles && u < w.uend) {  // warp-uniform
        const size_t g = L.groups > 1 ? static_cast<size_t>(u / upg) : 0;
        const unsigned char* cbg = cb + g * kGroupRowsBytes + row_byte;
        uint32_t code[kMmas];
        if constexpr (kOddCodes) {
          constexpr uint32_t kCodeMask = (1u << kCodeBits) - 1u;
          uint32_t res = 0u;
#pragma unroll
          for (int c = 0; c < kOddCodesPerLane; ++c) {
            const int bit = (first_bit & 31) + c * kOddCodeStride, wa = bit >> 5;
            const uint32_t full =
                __funnelshift_r(mma_pick_word(iv[s], wa), mma_pick_word(iv[s], wa + 1), bit & 31) & kCodeMask;
            code[c] = full & ((1u << kIB) - 1u);
            if constexpr (kStagedRes) res |= (full >> kIB) << (8 * c);
          }
          rw[s] = res;
        } else if constexpr (kWide) {
          code[0] = iv[s][0] & 0xFFFFu;  // column group 0: main, residual
          code[1] = iv[s][0] >> 16;
          code[2] = iv[s][1] & 0xFFFFu;  // column group 1
          code[3] = iv[s][1] >> 16;
        } else if constexpr (kStagedRes) {
          const uint32_t w0 = iv[s][0], w1 = iv[s][1], w2 = iv[s][2];
          code[0] = w0 & 0xFFFFu;
          code[1] = __funnelshift_r(w0, w1, 24) & 0xFFFFu;
          code[2] = w1 >> 16;
          code[3] = (w2 >> 8) & 0xFFFFu;
          // residual bytes of codes 0..3: byte 2 of w0, byte 1 of w1, bytes 0 and 3 of w2
          rw[s] = __byte_perm(__byte_perm(w0, w1, 0x0052u), w2, 0x7410u);
        } else {
          code[0] = (iv[s][0] >> half_shift) & 0xFFFFu;
          code[1] = (iv[s][1] >> half_shift) & 0xFFFFu;
        }
        if constexpr (kStageMain) {
#pragma unroll
          for (int b = 0; b < kMmas; ++b)
            ma[s][b] = main_lane ? smem_s + code[b] * 16u
                                 : lane_res + ((rw[s] >> (8 * b)) & 0xFFu) * (16u * kGatherResCopies);
        } else if (main_lane) {
#pragma unroll
          for (int b = 0; b < kMmas; ++b) {
            const int off = s * kStepBytes + b * kMmaRowsBytes;
            const unsigned char* src =
                kWide && (b & 1) ? static_cast<const unsigned char*>(L.rcb) + g * kResGroupBytes + row_byte : cbg;
            mma_cp_async16<true>(dst0 + off, dst0_g + off, src + static_cast<size_t>(code[b]) * kRowBytes);
          }
        }
#pragma unroll
        for (int nt = 0; nt < kNT; ++nt) xv[nt][s] = mma_load_x8<kXVec>(xh[nt] + u * kMmaStepCols);
      }
    }
    if constexpr (!kStageMain) mma_cp_async_commit();  // one group per chunk, empty ones included (uniform waits)
    if (w.tile < k.tiles) mma_walk_next<kChunk>(w, k, warp);
  };

  // ---- prologue: index words of chunks 0 .. 2, gathers of chunk 0, codebooks
  MmaWalk iw{static_cast<int>(blockIdx.x), warp, 0, 0, 0};
  mma_walk_settle(iw, k, warp);
  MmaWalk pw = iw;  // gathers + activations: one chunk ahead of the mma
  uint32_t icur[kChunk][kLaneWords], inext[kChunk][kLaneWords];
  load_index(iw, icur);
  load_index(iw, inext);
  uint4 xc[kNT][kChunk];
  uint32_t rc[kChunk];
  // icur = the next chunk to issue (loaded one chunk ago), inext = the one after it (in flight)
  auto advance_index = [&]() {
#pragma unroll
    for (int s = 0; s < kChunk; ++s)
#pragma unroll
      for (int j = 0; j < kLaneWords; ++j) icur[s][j] = inext[s][j];
    load_index(iw, inext);
  };
  uint32_t mc[kChunk][kMmas];
  issue(pw, icur, 0, xc, rc, mc);
  advance_index();
  if constexpr (kStageMain) mma_stage_rows_async(smem_s, mma_smem, L.cb, 1 << kIB);
  if constexpr (kStagedRes) {
    mma_stage_codebook<kGatherResCopies>(reinterpret_cast<uint4*>(mma_smem + main_bytes),
                                         static_cast<const uint4*>(L.rcb), kGatherResRows);
  }
  if constexpr (kStageMain) mma_cp_async_wait<0>();
  __syncthreads();

  // One step: kMmas ldmatrix from the staging slot (and the staged residual codebook), then kMmas
  // mma per n-tile (x 2 with hi / lo); mma b of n-tile nt accumulates into d[nt][b % 2]. The A
  // fragments are shared by the n-tiles.
  auto step = [&](float (&d)[kNT][2][4], uint32_t slot_stage, int s, uint32_t rbytes,
                  const uint32_t (&mas)[kChunk][kMmas], const uint4 (&xs)[kNT][kChunk],
                  const uint4 (&xls)[kNT][kChunk]) {
    uint32_t af[kMmas][4];
#pragma unroll
    for (int b = 0; b < kMmas; ++b) {
      uint32_t addr = slot_stage + static_cast<uint32_t>(s * kStepBytes + b * kMmaRowsBytes);
      if constexpr (kStageMain) {
        addr = mas[s][b];
      } else if constexpr (kStagedRes) {
        if (!main_lane) addr = lane_res + __byte_perm(rbytes, 0u, 0x4440u | b) * (16 * kGatherResCopies);
      }
      mma_ldsm_x4_trans_after_wait(addr, af[b]);
    }
#pragma unroll
    for (int nt = 0; nt < kNT; ++nt) {
      const uint4& x = xs[nt][s];
      const uint4& xlo = xls[nt][s];
#pragma unroll
      for (int b = 0; b < kMmas; ++b) {
        if constexpr (kWide) {  // mma b: column group b / 2 (B words 2 (b / 2), + 1), main or residual
          const bool hi = b >> 1;
          MmaOp<T>::run(d[nt][b & 1], af[b], hi ? x.z : x.x, hi ? x.w : x.y);
          if constexpr (kHiLo) MmaOp<T>::run(d[nt][b & 1], af[b], hi ? xlo.z : xlo.x, hi ? xlo.w : xlo.y);
        } else if constexpr (kStagedRes) {
          const uint32_t xb = mma_b_operand(x, b);
          MmaOp<T>::run(d[nt][b & 1], af[b], xb, xb);
          if constexpr (kHiLo) {
            const uint32_t lb = mma_b_operand(xlo, b);
            MmaOp<T>::run(d[nt][b & 1], af[b], lb, lb);
          }
        } else {
          MmaOp<T>::run(d[nt][b], af[b], b ? x.z : x.x, b ? x.w : x.y);
          if constexpr (kHiLo) MmaOp<T>::run(d[nt][b], af[b], b ? xlo.z : xlo.x, b ? xlo.w : xlo.y);
        }
      }
    }
  };

  int kc = 0;  // chunks consumed
  for (int tile = blockIdx.x; tile < k.tiles; tile += gridDim.x) {
    for (int it = threadIdx.x >> 5; it < k.items; it += kMmaWarps) {
      const int rb = tile * k.RT + (it >> k.log_s);
      float d[kNT][2][4];
#pragma unroll
      for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
        for (int c = 0; c < 4; ++c) d[nt][0][c] = d[nt][1][c] = 0.f;
      const int ubeg = (it & (k.S - 1)) * k.U, uend = min(ubeg + k.U, k.upr);
      if (rb < k.blocks && ubeg < uend) {
#pragma unroll 1
        for (int u0 = ubeg; u0 < uend; u0 += kChunk) {
          uint4 xlc[kNT][kChunk];
#pragma unroll
          for (int nt = 0; nt < kNT; ++nt) mma_load_lo<kHiLo>(xl[nt], u0, uend, xlc[nt]);
          // the next chunk: every lane is done with the slot it reuses (read in the previous chunk)
          if constexpr (!kStageMain) __syncwarp();
          uint4 xn[kNT][kChunk];
          uint32_t rn[kChunk], mn[kChunk][kMmas];
          issue(pw, icur, (kc + 1) & 1, xn, rn, mn);
          advance_index();
          // this chunk's gathers (issued one chunk ago) have landed, for every lane
          if constexpr (!kStageMain) {
            mma_cp_async_wait<1>();
            __syncwarp();
          }
          const uint32_t slot_stage = lane_stage + static_cast<uint32_t>((kc & 1) * kGatherSlotBytes);
          ++kc;
          if (u0 + kChunk <= uend) {
#pragma unroll
            for (int s = 0; s < kChunk; ++s) step(d, slot_stage, s, rc[s], mc, xc, xlc);
          } else {
#pragma unroll
            for (int s = 0; s < kChunk; ++s)
              if (u0 + s < uend) step(d, slot_stage, s, rc[s], mc, xc, xlc);  // warp-uniform
          }
#pragma unroll
          for (int s = 0; s < kChunk; ++s) {
#pragma unroll
            for (int nt = 0; nt < kNT; ++nt) xc[nt][s] = xn[nt][s];
            rc[s] = rn[s];
#pragma unroll
            for (int b = 0; b < kMmas; ++b) mc[s][b] = mn[s][b];
          }
        }
      }
#pragma unroll
      for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
        for (int c = 0; c < 4; ++c) part[(it * kNT + nt) * kMmaItemFloats + lane * 4 + c] = d[nt][0][c] + d[nt][1][c];
    }
    __syncthreads();
    mma_fold_tile<T, 1, kV, kNT>(a, part, k, tile);
    __syncthreads();
  }
  mma_cp_async_wait<0>();  // only empty groups can be left; for form
}
#endif  // !VPTQ_HIP

// Host launchers (gemv_mma_gather.cu; CUDA only), one per layout (vector length, index bits,
// residual bits), n-tile count NT (M <= 8 * NT rows) and SM (the staged-main variant).
template <typename T, int V, int IB, int RB, int NT, bool SM>
gpuError_t launch_gemv_mma_gather(const GemvArgs& a, size_t smem_bytes, int grid, gpuStream_t stream);

template <typename T, int V, int IB, int RB, int NT, bool SM>
int gemv_mma_gather_blocks_per_sm(size_t smem_bytes);

}  // namespace gpu
}  // namespace vptq
