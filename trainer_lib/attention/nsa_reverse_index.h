// The reverse index of NSA's by-block selected kernels (trainer_lib/kernels/nsa_selected.h,
// "Design": the dk/dv kernel and the forward by key block): for each selected block, the
// queries that selected it, cut into work items. Built on the block indices' device: on a GPU
// by trainer_lib/kernels/nsa_reverse_index.h's kernels where its sizes fit them, else with
// LibTorch operators (the CPU's build, and the GPU's past the kernels' limits); both give the
// same index. nsa_cuda.cc hands it to the kernels.
//
// For block indices [B, H_kv, T, n] (block c of l tokens in slot s of query t, -1 for none),
// an entry is a (pair, query, slot) whose block holds a key the query sees: 0 <= c <= t / l,
// and with a window w > 0 also (c + 1) l - 1 > t - w. Entries are grouped into lists by
// (pair, query chunk t / C, block), pair = b H_kv + h_kv, a list's queries ascending (a block
// a query's slots name twice appears twice), and each list is cut into items of at most
// `queries_per_item` entries. A pair's items go chunk by chunk, and within a chunk block by
// block, so that the thread blocks running at once gather and add into one chunk's query rows
// (NsaQueryChunk says why and how long).
//
// Thread-safety: as LibTorch operators. The kernels' build synchronises with the host once (the
// entry and item counts) and holds [B H_kv, ceil(T / C), ceil(T / l), parts] counts, int32 and
// their int64 sums, beside its outputs. The LibTorch build synchronises twice (the entry count
// and the item count) and holds at most three int64 tensors of [B, H_kv, T, n] elements at once
// (the block indices' copy, the entries' slots and their keys), beside a bool mask.
#ifndef ABLATE_TRAINER_LIB_ATTENTION_NSA_REVERSE_INDEX_H_
#define ABLATE_TRAINER_LIB_ATTENTION_NSA_REVERSE_INDEX_H_

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace ablate::train {

struct NsaReverseIndex {
  // int32 [entries]: each entry's query position, list by list.
  at::Tensor rev_query;
  // int64 [items, 3]: (list, first entry, end entry) with list = pair * NB + block,
  // NB = ceil(T / l): the (pair, block) the kernels read, without the chunk.
  at::Tensor items;
  // Where each pair's items start, on the host: [B H_kv + 1], the last the item count.
  std::vector<int64_t> pair_items;
};

// The query chunk length C for G query heads per key/value head, head dim d, T positions and
// n slots of blocks of l: a power of two, at most the first one at or past T. Each query of a
// pair costs the by-block kernels 8 G d bytes of rows (a q row and a do row gathered, an fp32
// row of o or dq added into); C is the longest whose rows fit 32 MiB, within an H200's 50 MiB
// of L2, raised until a list still averages 256 entries' rows (C n G l / T under random
// selections) at the sequence's end, since each item loads its block's keys and adds its dk and
// dv once. Measured on one H200 in docs/benchmarks.md ("The by-block kernels' items query chunk
// by query chunk").
int64_t NsaQueryChunk(int64_t groups, int64_t head_dim, int64_t seq_len, int64_t selected,
                      int64_t block_size);

// The index of block_idx ([B, H_kv, T, n], any integer dtype) for blocks of block_size tokens,
// window (0: none), query chunks of `chunk` positions and items of at most queries_per_item
// entries. Requires block_size, chunk, queries_per_item > 0 and window >= 0 (TORCH_CHECK).
NsaReverseIndex NsaBuildReverseIndex(const at::Tensor& block_idx, int64_t block_size,
                                     int64_t window, int64_t chunk, int64_t queries_per_item);

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_ATTENTION_NSA_REVERSE_INDEX_H_
