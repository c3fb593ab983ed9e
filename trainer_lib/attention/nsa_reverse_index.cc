#include "trainer_lib/attention/nsa_reverse_index.h"

#include <torch/torch.h>

#ifdef ABLATE_NSA_KERNELS
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "trainer_lib/kernels/nsa_reverse_index.h"
#endif

#include <cstdint>
#include <optional>
#include <tuple>
#include <utility>
#include <vector>

namespace ablate::train {
namespace {

// The chunk's budget of query rows and the entries an item should average (the header's
// NsaQueryChunk). On one H200 at fla's shape at 64K (G = 16, 1 GiB of rows a pair), items
// ordered by block alone left the dk/dv kernel at an L2 hit rate of 46%, reading or writing
// 48 GB of HBM a launch; chunked at 32 MiB the forward by key block went from 39.7 to 22.7 ms.
// 8 MiB took the forward 4% further but the dk/dv kernel 4% back, the layer no faster.
constexpr int64_t kChunkRowBytes = int64_t{32} << 20;
constexpr int64_t kMinItemRows = 256;

// The header's build with LibTorch operators, on any device: a stable sort of every entry's list.
NsaReverseIndex BuildWithLibTorch(const at::Tensor& block_idx, int64_t block_size, int64_t window,
                                  int64_t chunk, int64_t queries_per_item) {
  const int64_t b = block_idx.size(0), hkv = block_idx.size(1), t = block_idx.size(2),
                n = block_idx.size(3);
  const int64_t blocks = (t + block_size - 1) / block_size;
  const int64_t chunks = (t + chunk - 1) / chunk;
  const int64_t lists = b * hkv * chunks * blocks;
  const auto long_opts = block_idx.options().dtype(torch::kInt64);
  // A copy even of int64 indices: the list bases are added into it in place.
  torch::Tensor blk = block_idx.to(torch::kInt64, /*non_blocking=*/false, /*copy=*/true);
  // Query positions [1, 1, T, 1], broadcast against the [B, H_kv, T, n] slots: this runs in the
  // backward too, beside the gradients, where each [B, H_kv, T, n] int64 tensor is 1 GiB at
  // Qwen3-0.6B's 1M tokens. At most three are alive at once (blk, the entries' slots and their
  // keys), and only the entries' int32 keys and queries leave this block.
  const torch::Tensor pos = torch::arange(t, long_opts).view({1, 1, t, 1});
  // A block after the query's own has no key it may see (and one past the end would fall in
  // the next head's lists): only blocks 0 .. t / l enter the index. With a window, nor does a
  // block c whose last key (c + 1) l - 1 is at or below t - w, i.e. unless
  // c > floor((t - w - l + 1) / l).
  torch::Tensor valid = blk.ge(0) & blk.le(pos.floor_divide(block_size));
  if (window > 0) {
    valid &= blk.gt(torch::div(pos - (window + block_size - 1), block_size, "floor"));
  }
  // Keys and positions sorted in int32 where list ids fit (positions always do, T < 2^31): the
  // radix sort then makes half the passes. The list of a slot is its block plus its (pair,
  // query chunk)'s base, [B, H_kv, T, 1], added into blk in place.
  const torch::Tensor list_base =
      (torch::arange(b * hkv, long_opts).view({b, hkv, 1, 1}) * chunks + pos.floor_divide(chunk)) *
      blocks;
  // The entries' flat slots, found once for both gathers: masked_select on the 4-D mask would
  // find them twice, each time as an [N, 4] int64 nonzero on CUDA (4 GiB at Qwen3-0.6B's 1M).
  torch::Tensor slots = valid.view(-1).nonzero().squeeze(1);
  valid.reset();
  torch::Tensor keys = blk.add_(list_base).view(-1).index_select(0, slots);
  blk.reset();
  if (lists < (int64_t{1} << 31)) keys = keys.to(torch::kInt32);
  // Slot ((pair T + t) n + s)'s query t.
  torch::Tensor query = slots.floor_divide_(n).remainder_(t).to(torch::kInt32);
  slots.reset();
  auto [sorted, order] = torch::sort(keys, /*stable=*/std::optional<bool>(true), /*dim=*/0);
  keys.reset();
  torch::Tensor rev_query = query.index_select(0, order).contiguous();
  query.reset();
  order.reset();
  // bounds[i]: list i's first entry; bounds[lists]: the entry count. (A histogram of the keys
  // took longer: every query adds to its list of block 0.)
  const torch::Tensor bounds =
      torch::searchsorted(sorted, torch::arange(lists + 1, sorted.options()));
  sorted.reset();
  const torch::Tensor starts = bounds.narrow(0, 0, lists);
  const torch::Tensor counts = bounds.narrow(0, 1, lists) - starts;
  const torch::Tensor pieces = (counts + (queries_per_item - 1)).floor_divide(queries_per_item);
  // Where each pair's items end, on the host (the one synchronisation beyond nonzero's):
  // the item count sizes repeat_interleave's output.
  const torch::Tensor pair_ends = pieces.view({b * hkv, chunks * blocks}).sum(1).cumsum(0).cpu();
  std::vector<int64_t> pair_items(1, 0);
  pair_items.insert(pair_items.end(), pair_ends.data_ptr<int64_t>(),
                    pair_ends.data_ptr<int64_t>() + b * hkv);
  const torch::Tensor item_list = torch::repeat_interleave(
      torch::arange(lists, long_opts), pieces, /*dim=*/0, /*output_size=*/pair_items.back());
  const torch::Tensor piece_start = pieces.cumsum(0) - pieces;
  const torch::Tensor within =
      torch::arange(item_list.size(0), long_opts) - piece_start.index_select(0, item_list);
  const torch::Tensor begin = starts.index_select(0, item_list) + within * queries_per_item;
  const torch::Tensor end =
      torch::minimum(begin + queries_per_item, (starts + counts).index_select(0, item_list));
  // The kernels' list: the pair and the block, without the chunk.
  const torch::Tensor kernel_list =
      item_list.floor_divide(chunks * blocks) * blocks + item_list.remainder(blocks);
  return {rev_query, torch::stack({kernel_list, begin, end}, 1).contiguous(),
          std::move(pair_items)};
}

#ifdef ABLATE_NSA_KERNELS
namespace k = ablate::kernels;

void Check(cudaError_t error, const char* what) {
  TORCH_CHECK(error == cudaSuccess, "nsa reverse index kernel (", what,
              "): ", cudaGetErrorString(error));
}

// The same index from trainer_lib/kernels/nsa_reverse_index.h's kernels, where block_idx is on a
// GPU and its sizes fit them; nullopt otherwise. One read by the host: the item and entry counts.
std::optional<NsaReverseIndex> BuildWithKernels(const at::Tensor& block_idx, int64_t block_size,
                                                int64_t window, int64_t chunk,
                                                int64_t queries_per_item) {
  if (!block_idx.is_cuda()) return std::nullopt;
  k::NsaReverseIndexParams p;
  p.pairs = block_idx.size(0) * block_idx.size(1);
  p.seq_len = block_idx.size(2);
  p.slots = block_idx.size(3);
  p.block_size = block_size;
  p.window = window;
  p.chunk = chunk;
  p.blocks = (p.seq_len + block_size - 1) / block_size;
  p.chunks = (p.seq_len + chunk - 1) / chunk;
  p.queries_per_item = queries_per_item;
  if (p.pairs == 0 || p.seq_len == 0 || p.slots == 0) return std::nullopt;
  p.parts = k::NsaReverseIndexParts(p.pairs, p.chunks, chunk);
  if (!k::NsaReverseIndexKernelsFit(p)) return std::nullopt;
  const c10::cuda::CUDAGuard guard(block_idx.device());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  // Indices past every block (a wider dtype's) stay past them in int32, so that none becomes one.
  const at::Tensor idx = block_idx.scalar_type() == torch::kInt32
                             ? block_idx.contiguous()
                             : block_idx.clamp(-1, p.blocks).to(torch::kInt32).contiguous();
  p.block_idx = idx.data_ptr<int32_t>();
  const int64_t lists = p.pairs * p.chunks * p.blocks;
  const auto opts = idx.options();
  const at::Tensor part_counts = torch::empty({lists * p.parts}, opts);
  p.part_counts = part_counts.data_ptr<int32_t>();
  Check(k::NsaReverseIndexCount(p, stream), "count");
  const at::Tensor part_ends = part_counts.cumsum(0, torch::kInt64);
  p.part_ends = part_ends.data_ptr<int64_t>();
  const at::Tensor list_counts = part_counts.view({lists, p.parts}).sum(1, false, torch::kInt64);
  const at::Tensor item_ends =
      (list_counts + (queries_per_item - 1)).floor_divide_(queries_per_item).cumsum(0);
  // Each pair's item end, then the entry count: what sizes the outputs.
  const at::Tensor ends =
      torch::cat({item_ends.view({p.pairs, -1}).select(1, -1), part_ends.narrow(0, -1, 1)}).cpu();
  const int64_t* host = ends.data_ptr<int64_t>();
  std::vector<int64_t> pair_items(1, 0);
  pair_items.insert(pair_items.end(), host, host + p.pairs);
  at::Tensor rev_query = torch::empty({host[p.pairs]}, opts);
  at::Tensor items = torch::empty({pair_items.back(), 3}, opts.dtype(torch::kInt64));
  if (pair_items.back() == 0) return NsaReverseIndex{rev_query, items, std::move(pair_items)};
  p.rev_query = rev_query.data_ptr<int32_t>();
  Check(k::NsaReverseIndexFill(p, stream), "fill");
  p.list_counts = list_counts.data_ptr<int64_t>();
  p.item_ends = item_ends.data_ptr<int64_t>();
  p.items = items.data_ptr<int64_t>();
  Check(k::NsaReverseIndexItems(p, stream), "items");
  return NsaReverseIndex{std::move(rev_query), std::move(items), std::move(pair_items)};
}
#endif

}  // namespace

int64_t NsaQueryChunk(int64_t groups, int64_t head_dim, int64_t seq_len, int64_t selected,
                      int64_t block_size) {
  int64_t chunk = 1;
  while (chunk < seq_len && 2 * chunk * 8 * groups * head_dim <= kChunkRowBytes) chunk *= 2;
  while (chunk < seq_len && chunk * groups * selected * block_size < kMinItemRows * seq_len) {
    chunk *= 2;
  }
  return chunk;
}

NsaReverseIndex NsaBuildReverseIndex(const at::Tensor& block_idx, int64_t block_size,
                                     int64_t window, int64_t chunk, int64_t queries_per_item) {
  TORCH_CHECK(block_idx.dim() == 4, "nsa reverse index: block indices ", block_idx.sizes(),
              " must be [B, H_kv, T, n]");
  TORCH_CHECK(block_size > 0 && chunk > 0 && queries_per_item > 0 && window >= 0,
              "nsa reverse index: block size ", block_size, ", chunk ", chunk, " and items of ",
              queries_per_item, " must be positive, window ", window, " not negative");
#ifdef ABLATE_NSA_KERNELS
  if (auto built = BuildWithKernels(block_idx, block_size, window, chunk, queries_per_item)) {
    return *std::move(built);
  }
#endif
  return BuildWithLibTorch(block_idx, block_size, window, chunk, queries_per_item);
}

}  // namespace ablate::train
