//! `--backend`: which burn backend and device a command runs on.

use std::fmt;
use std::str::FromStr;

use anyhow::{Result, bail};
use burn::tensor::Device;

/// A backend and device, as `--backend` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// burn's pure-Rust CPU backend (`flex`).
    Flex,
    /// ndarray, on the CPU (`ndarray`).
    NdArray,
    /// libtorch on the CPU (`tch-cpu`).
    TchCpu,
    /// libtorch on CUDA device N (`tch-cuda[:N]`); without N, device 0, or the local rank's
    /// device when several processes train together.
    TchCuda(Option<usize>),
    /// wgpu adapter N, or the default adapter (`wgpu[:N]`); without N and with several
    /// processes, the local rank's adapter.
    Wgpu(Option<usize>),
    /// burn's CUDA backend on device N (`cuda[:N]`), chosen as for `tch-cuda`.
    Cuda(Option<usize>),
}

impl FromStr for Backend {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<Self> {
        let (name, index) = match text.split_once(':') {
            Some((name, index)) => match index.parse::<usize>() {
                Ok(index) => (name, Some(index)),
                Err(_) => bail!("`{text}`: the device index after `:` must be a number"),
            },
            None => (text, None),
        };
        Ok(match (name, index) {
            ("flex", None) => Backend::Flex,
            ("ndarray", None) => Backend::NdArray,
            ("tch-cpu", None) => Backend::TchCpu,
            ("tch-cuda", index) => Backend::TchCuda(index),
            ("wgpu", index) => Backend::Wgpu(index),
            ("cuda", index) => Backend::Cuda(index),
            _ => bail!(
                "unknown backend `{text}`; expected flex, ndarray, tch-cpu, tch-cuda[:N], wgpu[:N] or cuda[:N]"
            ),
        })
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backend::Flex => write!(f, "flex"),
            Backend::NdArray => write!(f, "ndarray"),
            Backend::TchCpu => write!(f, "tch-cpu"),
            Backend::TchCuda(index) => write!(f, "tch-cuda{}", Index(*index)),
            Backend::Wgpu(index) => write!(f, "wgpu{}", Index(*index)),
            Backend::Cuda(index) => write!(f, "cuda{}", Index(*index)),
        }
    }
}

/// `:N`, or nothing.
struct Index(Option<usize>);

impl fmt::Display for Index {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(index) => write!(f, ":{index}"),
            None => Ok(()),
        }
    }
}

impl Backend {
    /// The cargo feature of `bert-ft` that compiles this backend in.
    pub fn feature(self) -> &'static str {
        match self {
            Backend::Flex => "flex",
            Backend::NdArray => "ndarray",
            Backend::TchCpu | Backend::TchCuda(_) => "tch",
            Backend::Wgpu(_) => "wgpu",
            Backend::Cuda(_) => "cuda",
        }
    }

    /// The backend one process of several uses: a GPU backend given without an index takes
    /// the device of the process's rank on its machine, as `torchrun` hands out
    /// `LOCAL_RANK`. CPU backends and explicit indices are kept.
    pub fn for_local_rank(self, local_rank: usize) -> Backend {
        match self {
            Backend::TchCuda(None) => Backend::TchCuda(Some(local_rank)),
            Backend::Wgpu(None) => Backend::Wgpu(Some(local_rank)),
            Backend::Cuda(None) => Backend::Cuda(Some(local_rank)),
            other => other,
        }
    }

    /// The device, or an error naming the missing feature or device. Never falls back to
    /// another device.
    pub fn device(self) -> Result<Device> {
        let not_compiled = || {
            anyhow::anyhow!(
                "backend `{self}` is not compiled into this binary; rebuild with `--features {}` \
                 (cargo xtask does this from --backend)",
                self.feature()
            )
        };
        match self {
            Backend::Flex => {
                #[cfg(feature = "flex")]
                {
                    crate::process::keep_freed_memory();
                    return Ok(Device::flex());
                }
                #[allow(unreachable_code)]
                Err(not_compiled())
            }
            Backend::NdArray => {
                #[cfg(feature = "ndarray")]
                {
                    crate::process::keep_freed_memory();
                    #[allow(deprecated)]
                    return Ok(Device::ndarray());
                }
                #[allow(unreachable_code)]
                Err(not_compiled())
            }
            Backend::TchCpu => {
                #[cfg(feature = "tch")]
                #[allow(deprecated)]
                return Ok(Device::libtorch());
                #[allow(unreachable_code)]
                Err(not_compiled())
            }
            Backend::TchCuda(index) => {
                let index = index.unwrap_or(0);
                #[cfg(feature = "tch")]
                {
                    let count = Device::enumerate(burn::tensor::DeviceType::LibTorch).len();
                    if index >= count {
                        bail!(
                            "no CUDA device {index} for libtorch: it sees {count} CUDA device(s)"
                        );
                    }
                    #[allow(deprecated)]
                    return Ok(Device::libtorch_cuda(index));
                }
                #[allow(unreachable_code)]
                {
                    let _ = index;
                    Err(not_compiled())
                }
            }
            Backend::Wgpu(index) => {
                #[cfg(feature = "wgpu")]
                {
                    let adapters = Device::enumerate(burn::tensor::DeviceType::Wgpu);
                    if adapters.is_empty() {
                        bail!(
                            "no wgpu adapter found (no GPU driver; on Linux without a GPU install \
                             mesa-vulkan-drivers for the lavapipe CPU device)"
                        );
                    }
                    return match index {
                        None => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
                        Some(i) => adapters.get(i).cloned().ok_or_else(|| {
                            anyhow::anyhow!("no wgpu adapter {i}: found {}", adapters.len())
                        }),
                    };
                }
                #[allow(unreachable_code)]
                {
                    let _ = index;
                    Err(not_compiled())
                }
            }
            Backend::Cuda(index) => {
                let index = index.unwrap_or(0);
                #[cfg(feature = "cuda")]
                {
                    let count = Device::enumerate(burn::tensor::DeviceType::Cuda).len();
                    if index >= count {
                        bail!("no CUDA device {index}: found {count}");
                    }
                    return Ok(Device::cuda(index));
                }
                #[allow(unreachable_code)]
                {
                    let _ = index;
                    Err(not_compiled())
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_print_back() {
        for name in [
            "flex",
            "ndarray",
            "tch-cpu",
            "tch-cuda:1",
            "tch-cuda",
            "wgpu",
            "wgpu:0",
            "cuda:0",
            "cuda",
        ] {
            assert_eq!(name.parse::<Backend>().unwrap().to_string(), name);
        }
        assert_eq!(
            "tch-cuda".parse::<Backend>().unwrap(),
            Backend::TchCuda(None)
        );
        assert!("tpu".parse::<Backend>().is_err());
        assert!("wgpu:x".parse::<Backend>().is_err());
        assert!("flex:1".parse::<Backend>().is_err());
    }

    #[test]
    fn each_process_takes_the_gpu_of_its_local_rank_unless_told() {
        let local = |name: &str| name.parse::<Backend>().unwrap().for_local_rank(3);
        assert_eq!(local("tch-cuda"), Backend::TchCuda(Some(3)));
        assert_eq!(local("cuda"), Backend::Cuda(Some(3)));
        assert_eq!(local("wgpu"), Backend::Wgpu(Some(3)));
        assert_eq!(local("tch-cuda:1"), Backend::TchCuda(Some(1)));
        assert_eq!(local("flex"), Backend::Flex);
    }

    #[test]
    fn flex_is_always_available_in_default_builds() {
        #[cfg(feature = "flex")]
        assert!(Backend::Flex.device().is_ok());
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn a_backend_not_compiled_in_names_its_feature() {
        let err = Backend::Cuda(None).device().unwrap_err().to_string();
        assert!(err.contains("--features cuda"), "{err}");
    }

    /// These machines have no NVIDIA GPU: asking for one is an error, not a CPU fallback.
    #[cfg(feature = "tch")]
    #[test]
    fn an_absent_cuda_device_is_an_error_naming_it() {
        if burn::tensor::Device::enumerate(burn::tensor::DeviceType::LibTorch).is_empty() {
            let err = Backend::TchCuda(None).device().unwrap_err().to_string();
            assert!(err.contains("no CUDA device 0"), "{err}");
        }
        let err = Backend::TchCuda(Some(7)).device().unwrap_err().to_string();
        assert!(err.contains("no CUDA device 7"), "{err}");
    }
}
