#include "trainer_lib/attention/nsa_selection.h"

#include <torch/torch.h>

#include <cmath>
#include <cstdint>

#include "trainer_lib/attention/nsa_cuda.h"

#ifdef ABLATE_NSA_KERNELS
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "trainer_lib/kernels/nsa_selection.h"
#include "trainer_lib/kernels/nsa_top_blocks.h"
#endif

namespace ablate::train {

#ifdef ABLATE_NSA_KERNELS
namespace k = ablate::kernels;
#endif

bool NsaSelectionKernelTakes(const at::Tensor& q, int64_t kv_heads, int64_t block_size,
                             int64_t selected) {
#ifdef ABLATE_NSA_KERNELS
  if (!NsaKernelsEnabled() || !q.is_cuda() || q.dim() != 4 || q.size(0) <= 0 || q.size(1) <= 0 ||
      kv_heads <= 0 || q.size(1) % kv_heads != 0 || block_size <= 0) {
    return false;
  }
  k::NsaSelectionParams p;
  p.groups = q.size(0) * kv_heads;
  p.group_size = q.size(1) / kv_heads;
  p.seq_len = q.size(2);
  p.head_dim = q.size(3);
  p.block_size = block_size;
  p.selected = selected;
  if ((p.head_dim != 64 && p.head_dim != 128 && p.head_dim != 256) || p.groups > 65535 ||
      p.group_size > k::kNsaSelectionMaxGroup || p.seq_len <= 0 ||
      p.seq_len >= (int64_t{1} << 31) || selected <= 0 || selected > k::kNsaSelectionMaxSelected) {
    return false;
  }
  const c10::cuda::CUDAGuard guard(q.device());
  return k::NsaSelectionSharedBytes(p) <=
         at::cuda::getCurrentDeviceProperties()->sharedMemPerBlockOptin;
#else
  (void)q, (void)kv_heads, (void)block_size, (void)selected;
  return false;
#endif
}

void NsaSelectionInto(const at::Tensor& q, const at::Tensor& k_cmp, const at::Tensor& lse,
                      int64_t block_size, at::Tensor& block_idx) {
#ifdef ABLATE_NSA_KERNELS
  TORCH_CHECK(q.dim() == 4 && k_cmp.dim() == 4 && k_cmp.size(0) == q.size(0) && k_cmp.size(1) > 0 &&
                  q.size(1) % k_cmp.size(1) == 0 && k_cmp.size(3) == q.size(3) && block_size > 0 &&
                  k_cmp.size(2) == q.size(2) / block_size && q.is_cuda() &&
                  q.device() == k_cmp.device(),
              "nsa selection kernel: q ", q.sizes(), " and k_cmp ", k_cmp.sizes(),
              " must be [B, H, T, D] and [B, H_kv, T / ", block_size,
              ", D] on one CUDA device, H a multiple of H_kv");
  TORCH_CHECK(block_idx.dim() == 4 && block_idx.size(0) == q.size(0) &&
                  block_idx.size(1) == k_cmp.size(1) && block_idx.size(2) == q.size(2) &&
                  block_idx.scalar_type() == torch::kInt32 && block_idx.is_contiguous() &&
                  block_idx.device() == q.device(),
              "nsa selection kernel: block_idx ", block_idx.sizes(), " must be [", q.size(0), ", ",
              k_cmp.size(1), ", ", q.size(2), ", n] int32, contiguous, on q's device");
  if (lse.defined()) {
    TORCH_CHECK(lse.dim() == 3 && lse.size(0) == q.size(0) && lse.size(1) == q.size(1) &&
                    lse.size(2) == q.size(2) && lse.scalar_type() == torch::kFloat32 &&
                    lse.device() == q.device(),
                "nsa selection kernel: lse ", lse.sizes(), " ", lse.scalar_type(), " must be [",
                q.size(0), ", ", q.size(1), ", ", q.size(2), "] fp32 on q's device");
  }
  // The kernel copies 16-byte rows: a view that starts off that alignment is copied first.
  auto aligned = [](const torch::Tensor& x) {
    torch::Tensor y = x.to(torch::kBFloat16).contiguous();
    return reinterpret_cast<uintptr_t>(y.data_ptr()) % 16 == 0 ? y : y.clone();
  };
  const torch::Tensor q16 = aligned(q), k16 = aligned(k_cmp);
  const torch::Tensor lse32 = lse.defined() ? lse.contiguous() : lse;
  k::NsaSelectionParams p;
  p.groups = q.size(0) * k_cmp.size(1);
  p.group_size = q.size(1) / k_cmp.size(1);
  p.seq_len = q.size(2);
  p.head_dim = q.size(3);
  p.compressed = k_cmp.size(2);
  p.block_size = block_size;
  p.selected = block_idx.size(3);
  p.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(p.head_dim)));
  p.q = q16.data_ptr();
  p.k_cmp = p.compressed > 0 ? k16.data_ptr() : nullptr;
  p.lse = lse32.defined() ? lse32.data_ptr<float>() : nullptr;
  p.block_idx = block_idx.data_ptr<int32_t>();
  const c10::cuda::CUDAGuard guard(q.device());
  const cudaError_t error = k::NsaSelection(p, at::cuda::getCurrentCUDAStream(q.device().index()));
  TORCH_CHECK(error == cudaSuccess, "nsa selection kernel for q ", q.sizes(), ", ", p.selected,
              " blocks of ", block_size, ": ", cudaGetErrorString(error));
#else
  (void)q, (void)k_cmp, (void)lse, (void)block_size, (void)block_idx;
  TORCH_CHECK(false, "nsa: this build has no CUDA kernels");
#endif
}

bool NsaTopBlocksKernelTakes(const at::Tensor& q, int64_t kv_heads, int64_t block_size) {
#ifdef ABLATE_NSA_KERNELS
  if (!NsaKernelsEnabled() || !q.is_cuda() || q.dim() != 4 || kv_heads <= 0 ||
      q.size(1) % kv_heads != 0 || q.size(1) / kv_heads > k::kNsaTopBlocksMaxGroup ||
      block_size <= 0 || q.size(0) * kv_heads > 65535 || q.size(2) <= 0 ||
      q.size(2) >= (int64_t{1} << 31)) {
    return false;
  }
  k::NsaTopBlocksParams p;
  p.group_size = q.size(1) / kv_heads;
  p.queries = q.size(2);
  p.block_size = block_size;
  const c10::cuda::CUDAGuard guard(q.device());
  return k::NsaTopBlocksSharedBytes(p) <=
         at::cuda::getCurrentDeviceProperties()->sharedMemPerBlockOptin;
#else
  (void)q, (void)kv_heads, (void)block_size;
  return false;
#endif
}

void NsaTopBlocksInto(const at::Tensor& scores, int64_t group_size, int64_t first_query,
                      int64_t queries, int64_t block_size, double scale, at::Tensor& block_idx) {
#ifdef ABLATE_NSA_KERNELS
  TORCH_CHECK(block_idx.dim() == 4 && block_idx.is_cuda() && block_idx.is_contiguous() &&
                  block_idx.scalar_type() == torch::kInt32,
              "nsa top blocks: block_idx ", block_idx.sizes(),
              " must be [B, H_kv, T, n] int32, contiguous, on CUDA");
  k::NsaTopBlocksParams p;
  p.groups = block_idx.size(0) * block_idx.size(1);
  p.group_size = group_size;
  p.first_query = first_query;
  p.queries = queries;
  p.seq_len = block_idx.size(2);
  p.block_size = block_size;
  p.selected = block_idx.size(3);
  p.scale = static_cast<float>(scale);
  p.block_idx = block_idx.data_ptr<int32_t>();
  if (scores.defined()) {
    TORCH_CHECK(scores.dim() == 3 && scores.size(0) == p.groups &&
                    scores.size(1) == group_size * queries &&
                    scores.scalar_type() == torch::kFloat32 && scores.is_contiguous() &&
                    scores.device() == block_idx.device(),
                "nsa top blocks: scores ", scores.sizes(), " must be [", p.groups, ", ",
                group_size * queries, ", NFc] fp32, contiguous, on block_idx's device");
    p.score_cols = scores.size(2);
    p.scores = scores.data_ptr<float>();
  }
  const c10::cuda::CUDAGuard guard(block_idx.device());
  const cudaError_t error =
      k::NsaTopBlocks(p, at::cuda::getCurrentCUDAStream(block_idx.device().index()));
  TORCH_CHECK(error == cudaSuccess, "nsa top blocks kernel for queries ", first_query, " .. ",
              first_query + queries - 1, " of ", p.seq_len, ": ", cudaGetErrorString(error));
#else
  (void)scores, (void)group_size, (void)first_query, (void)queries, (void)block_size, (void)scale,
      (void)block_idx;
  TORCH_CHECK(false, "nsa: this build has no CUDA kernels");
#endif
}

}  // namespace ablate::train
