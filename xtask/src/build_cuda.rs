//! `cargo xtask build-cuda`: the `mtcool` binary with the `cuda` feature, built on a machine
//! with no GPU and no system CUDA (the recipe of `docs/gpu.md`).
//!
//! 1. a Python virtual environment with the CUDA 13.0 toolkit wheels (nvcc, cicc, headers,
//!    cuBLAS, cuRAND, cudart, NVRTC);
//! 2. a `cuda-home` folder of links in the layout candle's build scripts search, with the
//!    unversioned library names the linker wants and a `libcuda.so` stub (every driver entry
//!    point cudarc declares; its SONAME is `libcuda.so.1`, so the binary asks for the real
//!    driver at run time and the stub never ships);
//! 3. `cargo build --release -p mtcool --features cuda` in its own target folder.
//!
//! Each step is skipped when its output exists, so a second call only rebuilds the binary.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::in_workspace;

/// Options of `build-cuda`.
#[derive(clap::Args)]
pub struct Args {
    /// Where the toolkit, `cuda-home` and the build go.
    #[arg(long, default_value = "target/cuda")]
    dir: PathBuf,
    /// GPU compute capability the kernels are built for (90: H100 / H200).
    #[arg(long, default_value = "90")]
    compute_cap: String,
    /// Version of the `cuda-toolkit` wheels. Keep 13.0.x: the GPU machines' driver JIT-compiles
    /// candle's PTX and may reject PTX from a newer nvcc.
    #[arg(long, default_value = "13.0.2")]
    toolkit: String,
    /// Python interpreter used to create the virtual environment.
    #[arg(long, default_value = "python3")]
    python: String,
}

fn run_checked(cmd: &mut Command, what: &str) -> Result<()> {
    tracing::info!("{what}: {cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("{what}: cannot start {:?}", cmd.get_program()))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

/// The `nvidia/cu13` folder of the virtual environment's site-packages.
fn toolkit_root(venv: &Path) -> Result<PathBuf> {
    let lib = venv.join("lib");
    let entries = std::fs::read_dir(&lib).with_context(|| format!("{}", lib.display()))?;
    for entry in entries.flatten() {
        let candidate = entry.path().join("site-packages/nvidia/cu13");
        if candidate.join("bin/nvcc").exists() {
            return Ok(candidate);
        }
    }
    bail!(
        "{}: no site-packages/nvidia/cu13/bin/nvcc; delete the folder and run again",
        lib.display()
    )
}

/// The cudarc driver bindings, whose `cu*` functions the stub must define.
fn cudarc_driver_sys() -> Result<PathBuf> {
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["metadata", "--format-version", "1"])
        .current_dir(crate::workspace_root())
        .output()
        .context("cargo metadata")?;
    if !output.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let meta: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let packages = meta["packages"].as_array().cloned().unwrap_or_default();
    for p in packages {
        if p["name"] == "cudarc" {
            if let Some(manifest) = p["manifest_path"].as_str() {
                let sys = Path::new(manifest)
                    .parent()
                    .map(|d| d.join("src/driver/sys/mod.rs"))
                    .unwrap_or_default();
                if sys.exists() {
                    return Ok(sys);
                }
            }
        }
    }
    bail!("cudarc's sources were not found (run `cargo fetch` first)")
}

fn symlink(target: &Path, link: &Path) -> Result<()> {
    if link.symlink_metadata().is_ok() {
        std::fs::remove_file(link).with_context(|| format!("{}", link.display()))?;
    }
    std::os::unix::fs::symlink(target, link)
        .with_context(|| format!("cannot link {} → {}", link.display(), target.display()))
}

/// Lays out `cuda-home` and compiles the driver stub.
fn cuda_home(toolkit: &Path, home: &Path) -> Result<()> {
    let stubs = home.join("lib64/stubs");
    std::fs::create_dir_all(&stubs).with_context(|| format!("{}", stubs.display()))?;
    for dir in ["bin", "include", "nvvm"] {
        symlink(&toolkit.join(dir), &home.join(dir))?;
    }
    for (versioned, plain) in [
        ("libcudart.so.13", "libcudart.so"),
        ("libcublas.so.13", "libcublas.so"),
        ("libcublasLt.so.13", "libcublasLt.so"),
        ("libcurand.so.10", "libcurand.so"),
        ("libnvrtc.so.13", "libnvrtc.so"),
    ] {
        let target = toolkit.join("lib").join(versioned);
        if !target.exists() {
            bail!("{}: missing from the toolkit wheels", target.display());
        }
        symlink(&target, &home.join("lib64").join(plain))?;
    }
    let stub_lib = stubs.join("libcuda.so");
    if stub_lib.exists() {
        return Ok(());
    }
    let sys = cudarc_driver_sys()?;
    let text = std::fs::read_to_string(&sys).with_context(|| format!("{}", sys.display()))?;
    let mut names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("pub unsafe fn "))
        .filter_map(|rest| rest.split(['(', '<']).next())
        .filter(|name| name.starts_with("cu"))
        .collect();
    names.sort_unstable();
    names.dedup();
    if names.is_empty() {
        bail!("{}: no driver functions found", sys.display());
    }
    let source = names
        .iter()
        .map(|n| format!("int {n}(void) {{ return 999; }}\n"))
        .collect::<String>();
    let c_file = home.join("libcuda_stub.c");
    std::fs::write(&c_file, source).with_context(|| format!("{}", c_file.display()))?;
    run_checked(
        Command::new("gcc")
            .args(["-shared", "-fPIC", "-Wl,-soname,libcuda.so.1", "-o"])
            .arg(&stub_lib)
            .arg(&c_file),
        "compile the libcuda stub",
    )
}

/// Builds the CUDA binary and prints where it is.
pub fn run(args: Args) -> Result<()> {
    let dir = in_workspace(&args.dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("{}", dir.display()))?;
    let dir = dir.canonicalize()?;
    let venv = dir.join("venv");
    if !venv.join("bin/pip").exists() {
        run_checked(
            Command::new(&args.python).args(["-m", "venv"]).arg(&venv),
            "create the Python environment",
        )?;
    }
    if toolkit_root(&venv).is_err() {
        let spec = format!(
            "cuda-toolkit[nvcc,cudart,cublas,curand,nvrtc,cccl,crt,nvvm]=={}",
            args.toolkit
        );
        run_checked(
            Command::new(venv.join("bin/pip")).args(["install", "--quiet", &spec]),
            "install the CUDA toolkit wheels (about 1.2 GB)",
        )?;
    }
    let toolkit = toolkit_root(&venv)?;
    let home = dir.join("cuda-home");
    cuda_home(&toolkit, &home)?;
    let path = format!(
        "{}:{}",
        home.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let target_dir = dir.join("target");
    run_checked(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--release", "-p", "mtcool", "--features", "cuda"])
            .current_dir(crate::workspace_root())
            .env("CUDA_HOME", &home)
            .env("CUDA_PATH", &home)
            .env("PATH", path)
            .env("CUDA_COMPUTE_CAP", &args.compute_cap)
            .env("CARGO_TARGET_DIR", &target_dir),
        "build mtcool with CUDA (the first build takes 10–20 minutes on 2 cores)",
    )?;
    let binary = target_dir.join("release/mtcool");
    println!("CUDA binary: {}", binary.display());
    println!(
        "It needs the NVIDIA driver and the CUDA 13 runtime libraries (cudart, cuBLAS, cuRAND) \
         on the GPU machine; without a GPU it stops with an error. Run, e.g.:\n  \
         mtcool train --config experiments/mnist.toml --device cuda"
    );
    Ok(())
}
