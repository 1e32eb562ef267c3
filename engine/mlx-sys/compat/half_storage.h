/* Force-included off ARM. mlx-c's half.h declares float16_t/bfloat16_t only on ARM, but mlx-rs uses the
 * functions taking them everywhere. Only pointers to them cross the C boundary, so storage types suffice:
 * for bindgen `__fp16` (giving the same Rust types as on macOS), for the C++ build `unsigned short`. */
#ifndef MLX_HALF_H
#define MLX_HALF_H
#define HAS_FLOAT16
#define HAS_BFLOAT16
#ifdef MLX_SYS_BINDGEN
typedef __fp16 float16_t;
#else
typedef unsigned short float16_t;
#endif
typedef unsigned short bfloat16_t;
#endif
