//! Where the engine computes: MLX's GPU (Metal on macOS, CUDA with the CUDA wheel) when it has one,
//! else its CPU backend. The CPU computes in f32 (MLX's bf16 matmuls are far slower there), the GPU in bf16.
use std::fmt;

use mlx_rs::{Device, DeviceType, Dtype};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Cpu,
    Metal,
    Cuda,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Cpu => "cpu",
            Backend::Metal => "metal",
            Backend::Cuda => "cuda",
        })
    }
}

/// The device the engine runs on and the dtype it computes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compute {
    pub backend: Backend,
    pub dtype: Dtype,
}

impl Compute {
    /// The best backend this MLX build has; `LTX_DEVICE=cpu` forces the CPU.
    pub fn detect() -> Self {
        let force_cpu = std::env::var("LTX_DEVICE").is_ok_and(|v| v.eq_ignore_ascii_case("cpu"));
        let backend = if force_cpu { Backend::Cpu } else { gpu_backend().unwrap_or(Backend::Cpu) };
        Self::on(backend)
    }

    pub fn on(backend: Backend) -> Self {
        let dtype = if backend == Backend::Cpu { Dtype::Float32 } else { Dtype::Bfloat16 };
        Self { backend, dtype }
    }

    /// Makes this the default device for MLX operations on the calling thread's default stream.
    pub fn activate(&self) {
        let device = if self.backend == Backend::Cpu { Device::cpu() } else { Device::gpu() };
        Device::set_default(&device);
    }

    pub fn device_type(&self) -> DeviceType {
        if self.backend == Backend::Cpu {
            DeviceType::Cpu
        } else {
            DeviceType::Gpu
        }
    }
}

/// `cpu f32, MLX 0.32.2`: the backend, compute dtype and MLX version, as `ltxctl status` shows them.
impl std::fmt::Display for Compute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let dtype = if self.dtype == Dtype::Float32 { "f32" } else { "bf16" };
        write!(f, "{} {dtype}, MLX {}", self.backend, mlx_version())
    }
}

/// MLX version this binary was built against (from the wheel's headers).
pub fn mlx_version() -> String {
    let mut s = unsafe { mlx_sys::mlx_string_new() };
    // SAFETY: mlx_version writes a new string into `s`, which is read then freed.
    unsafe {
        let version = if mlx_sys::mlx_version(&mut s) == 0 {
            std::ffi::CStr::from_ptr(mlx_sys::mlx_string_data(s)).to_string_lossy().into_owned()
        } else {
            "unknown".into()
        };
        mlx_sys::mlx_string_free(s);
        version
    }
}

fn gpu_backend() -> Option<Backend> {
    let mut yes = false;
    // SAFETY: plain out-parameter queries.
    if unsafe { mlx_sys::mlx_metal_is_available(&mut yes) } == 0 && yes {
        return Some(Backend::Metal);
    }
    if unsafe { mlx_sys::mlx_cuda_is_available(&mut yes) } == 0 && yes {
        return Some(Backend::Cuda);
    }
    None
}
