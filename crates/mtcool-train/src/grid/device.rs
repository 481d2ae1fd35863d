//! Devices named on the command line: `cpu`, `cuda`, `cuda:N`, and lists of them for the
//! workers of a grid (`--devices cuda:0,cuda:1`).

use candle_core::Device;

use crate::error::{Result, TrainError};

/// Human name of a device (`cpu`, `cuda:0`).
pub fn device_name(device: &Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => "cpu".into(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

/// Parses `cpu`, `cuda` or `cuda:N` into a device, with a clear error when CUDA is not
/// available in this build or on this machine.
pub fn parse_device(spec: &str) -> Result<Device> {
    let fail = |problem: String| TrainError::Config {
        path: "--device".into(),
        problem,
    };
    match spec {
        "cpu" => Ok(Device::Cpu),
        s if s == "cuda" || s.starts_with("cuda:") => {
            let ordinal = s
                .strip_prefix("cuda:")
                .map(|n| {
                    n.parse::<usize>()
                        .map_err(|_| fail(format!("bad GPU index in `{s}`")))
                })
                .transpose()?
                .unwrap_or(0);
            if !candle_core::utils::cuda_is_available() {
                return Err(fail(
                    "this binary was built without CUDA support (build with `--features cuda`)"
                        .into(),
                ));
            }
            Device::new_cuda(ordinal)
                .map_err(|e| fail(format!("no usable CUDA device {ordinal}: {e}")))
        }
        other => Err(fail(format!(
            "unknown device `{other}` (expected cpu, cuda or cuda:N)"
        ))),
    }
}

/// Parses a comma-separated `--devices` list, checking every entry (workers are spread over
/// them round-robin).
pub fn parse_devices(list: &str) -> Result<Vec<Device>> {
    let devices = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            parse_device(s).map_err(|e| match e {
                TrainError::Config { problem, .. } => TrainError::Config {
                    path: "--devices".into(),
                    problem,
                },
                other => other,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if devices.is_empty() {
        return Err(TrainError::Config {
            path: "--devices".into(),
            problem: "an empty device list".into(),
        });
    }
    Ok(devices)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn device_lists_are_checked_entry_by_entry() {
        assert_eq!(parse_devices("cpu, cpu").unwrap().len(), 2);
        let err = parse_devices("cpu,tpu:0").unwrap_err().to_string();
        assert!(
            err.starts_with("--devices:") && err.contains("unknown device `tpu:0`"),
            "{err}"
        );
        assert!(parse_devices(" , ").is_err());
    }
}
