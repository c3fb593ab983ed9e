// Element access for our kernels over tensors of fp32 or bf16: every element is computed in
// fp32, so a load widens (exactly) and a store rounds to nearest even, as eager PyTorch's
// casts do. Device code only; included by the .cu files of this folder.
#ifndef ABLATE_TRAINER_LIB_KERNELS_ELEMENT_ACCESS_CUH_
#define ABLATE_TRAINER_LIB_KERNELS_ELEMENT_ACCESS_CUH_

#include <cstdint>

#include <cuda_bf16.h>

namespace ablate::kernels {

template <typename T>
__device__ float Load(const T* p, int64_t i);
template <>
inline __device__ float Load<float>(const float* p, int64_t i) {
  return p[i];
}
template <>
inline __device__ float Load<__nv_bfloat16>(const __nv_bfloat16* p, int64_t i) {
  return __bfloat162float(p[i]);
}

template <typename T>
__device__ void Store(T* p, int64_t i, float v);
template <>
inline __device__ void Store<float>(float* p, int64_t i, float v) {
  p[i] = v;
}
template <>
inline __device__ void Store<__nv_bfloat16>(__nv_bfloat16* p, int64_t i, float v) {
  p[i] = __float2bfloat16_rn(v);
}

}  // namespace ablate::kernels

#endif  // ABLATE_TRAINER_LIB_KERNELS_ELEMENT_ACCESS_CUH_
