#include "trainer_lib/optim/blockwise_quant.h"

#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include <torch/torch.h>

#include "common/optimizer_state.h"

namespace ablate::train {
namespace {

std::vector<float> TableValues(QuantTable table) {
  switch (table) {
    case QuantTable::kNormalFloat4:
      return {-1.0f,        -0.69619280f, -0.52507305f, -0.39491749f, -0.28444138f, -0.18477343f,
              -0.09105004f, 0.0f,         0.07958030f,  0.16093020f,  0.24611230f,  0.33791524f,
              0.44070983f,  0.56261700f,  0.72295684f,  1.0f};
    case QuantTable::kPositive4: {
      std::vector<float> v;
      for (int k = 0; k < 16; ++k) v.push_back(static_cast<float>(k + 1) / 16.0f);
      return v;
    }
    case QuantTable::kPositive8: {
      std::vector<float> v;
      for (int k = 0; k < 256; ++k) v.push_back(static_cast<float>(k + 1) / 256.0f);
      return v;
    }
    case QuantTable::kSigned8: {
      std::vector<float> v;
      for (int k = -127; k <= 127; ++k) v.push_back(static_cast<float>(k) / 127.0f);
      return v;
    }
  }
  return {};
}

// A table's values and the midpoints between neighbours, on one device.
struct Codebook {
  at::Tensor values;
  at::Tensor midpoints;
};

// Made once per (table, device) and kept for the process: built from host memory on each call,
// the table is a blocking host-to-device copy, which waits for the CUDA stream once per
// quantized tensor (SOAP-4bit quantizes and dequantizes thousands per step). Never freed:
// CUDA tensors must not be released after the CUDA runtime's teardown at exit.
Codebook CodebookOn(QuantTable table, const at::Device& device) {
  static std::mutex mu;
  static auto* const cache = new std::map<std::tuple<int, int, int>, Codebook>();
  const std::lock_guard<std::mutex> lock(mu);
  const auto key = std::make_tuple(static_cast<int>(table), static_cast<int>(device.type()),
                                   static_cast<int>(device.index()));
  auto it = cache->find(key);
  if (it == cache->end()) {
    const at::Tensor values = torch::tensor(TableValues(table), torch::kFloat32).to(device);
    const at::Tensor midpoints = (values.slice(0, 1) + values.slice(0, 0, -1)) / 2;
    it = cache->emplace(key, Codebook{values, midpoints}).first;
  }
  return it->second;
}

bool IsFourBit(QuantTable table) {
  return table == QuantTable::kNormalFloat4 || table == QuantTable::kPositive4;
}

int64_t Blocks(int64_t n, int64_t block) { return (n + block - 1) / block; }

}  // namespace

Quantized Quantize(const at::Tensor& x, QuantTable table, int64_t block) {
  return QuantizeEach(x.unsqueeze(0), table, block).front();
}

at::Tensor Dequantize(const Quantized& q, QuantTable table, int64_t block,
                      at::IntArrayRef shape) {
  return DequantizeEach({q}, table, block, shape).squeeze(0);
}

std::vector<Quantized> QuantizeEach(const at::Tensor& xs, QuantTable table, int64_t block) {
  const int64_t count = xs.size(0);
  const int64_t n = xs.numel() / count;
  const int64_t blocks = Blocks(n, block);
  at::Tensor rows = xs.reshape({count, n}).to(torch::kFloat32);
  if (blocks * block != n) rows = torch::constant_pad_nd(rows, {0, blocks * block - n});
  const at::Tensor grid = rows.reshape({count * blocks, block});
  const at::Tensor scales = grid.abs().amax(1).clamp_min(1e-12);
  const at::Tensor normed = grid / scales.unsqueeze(1);
  // Nearest table value: count the midpoints below each element.
  at::Tensor codes = torch::bucketize(normed, CodebookOn(table, xs.device()).midpoints)
                         .to(torch::kUInt8)
                         .view({-1});
  if (IsFourBit(table)) {
    const at::Tensor pairs = codes.view({-1, 2});  // blocks are even, so pairs stay in a slice
    codes = pairs.select(1, 0).bitwise_or(pairs.select(1, 1).bitwise_left_shift(4));
  }
  const at::Tensor codes_each = codes.view({count, -1});
  const at::Tensor scales_each = scales.view({count, blocks});
  std::vector<Quantized> each;
  each.reserve(static_cast<size_t>(count));
  for (int64_t b = 0; b < count; ++b) {
    each.push_back({codes_each[b].clone(), scales_each[b].clone()});
  }
  return each;
}

at::Tensor DequantizeEach(const std::vector<Quantized>& qs, QuantTable table, int64_t block,
                          at::IntArrayRef shape) {
  std::vector<at::Tensor> codes_each, scales_each;
  for (const Quantized& q : qs) {
    codes_each.push_back(q.codes);
    scales_each.push_back(q.scales);
  }
  at::Tensor codes = torch::cat(codes_each);
  if (IsFourBit(table)) {
    codes = torch::stack({codes.bitwise_and(15), codes.bitwise_right_shift(4)}, 1).view({-1});
  }
  const at::Tensor scales = torch::cat(scales_each);
  const at::Tensor values = CodebookOn(table, scales.device()).values;
  const at::Tensor grid = values.index({codes.to(torch::kLong)}).view({-1, block});
  const auto count = static_cast<int64_t>(qs.size());
  const at::Tensor rows = (grid * scales.unsqueeze(1)).view({count, -1});
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::vector<int64_t> sizes = {count};
  sizes.insert(sizes.end(), shape.begin(), shape.end());
  return rows.slice(1, 0, n).reshape(sizes);
}

int64_t QuantizedBytes(int64_t n, QuantTable table, int64_t block) {
  return BlockQuantizedBytes(n, IsFourBit(table) ? 4 : 8, block);
}

}  // namespace ablate::train
