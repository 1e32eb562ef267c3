"""The operations of engine/benches/mlx_ops.rs from Python mlx (same shapes, same timing rule)."""
import os
import time

import mlx.core as mx

ITERS = int(os.environ.get("LTX_BENCH_ITERS", "10"))


def bench(name, f):
    mx.eval(f())
    wall, cpu = [], []
    for _ in range(ITERS):
        t, c = time.perf_counter(), time.process_time()
        mx.eval(f())
        wall.append((time.perf_counter() - t) * 1e3)
        cpu.append((time.process_time() - c) * 1e3)
    wall.sort()
    cpu.sort()
    print(f"{name} {wall[len(wall) // 2]:.3f} {cpu[len(cpu) // 2]:.3f}", flush=True)


mx.set_default_device(mx.cpu)
a, b = mx.random.normal((2048, 2048)), mx.random.normal((2048, 2048))
mx.eval(a, b)
bench("matmul_f32_2048", lambda: a @ b)
q, k, v = (mx.random.normal((1, 4, 4096, 64)) for _ in range(3))
mx.eval(q, k, v)
bench("sdpa_f32_4096x4x64", lambda: mx.fast.scaled_dot_product_attention(q, k, v, scale=0.125))
x, w = mx.random.normal((1, 8, 32, 32, 128)), mx.random.normal((128, 3, 3, 3, 128))
mx.eval(x, w)
bench("conv3d_f32_8x32x32x128_k3", lambda: mx.conv3d(x, w, padding=1))
