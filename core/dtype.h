// Element types of tensors, with the conversions for the 16-bit floats (round to nearest even).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

namespace kiln {

enum class DType : uint8_t { f32, f64, bf16, f16, i32, u8 };

size_t dtype_size(DType t);
const char* dtype_name(DType t);
// Parses "f32", "float32", "bf16", ...; throws with the list of valid names.
DType parse_dtype(const std::string& s);
bool is_float(DType t);

template <typename T>
constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::f32; }
template <> constexpr DType dtype_of<double>() { return DType::f64; }
template <> constexpr DType dtype_of<int32_t>() { return DType::i32; }
template <> constexpr DType dtype_of<uint8_t>() { return DType::u8; }

// bfloat16 and IEEE half stored as raw bits; conversions round to nearest even, keep NaN.
struct bf16_t {
  uint16_t bits;
};
struct f16_t {
  uint16_t bits;
};
template <> constexpr DType dtype_of<bf16_t>() { return DType::bf16; }
template <> constexpr DType dtype_of<f16_t>() { return DType::f16; }

inline float bf16_to_f32(bf16_t h) {
  uint32_t u = static_cast<uint32_t>(h.bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline bf16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bf16_t{static_cast<uint16_t>((u >> 16) | 0x40)};
  u += 0x7fffu + ((u >> 16) & 1u);
  return bf16_t{static_cast<uint16_t>(u >> 16)};
}

float f16_to_f32(f16_t h);
f16_t f32_to_f16(float f);

}  // namespace kiln
