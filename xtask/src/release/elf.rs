//! Reads just enough of an ELF file to prove a release binary is static and built for the right
//! CPU: a `FROM scratch` image has no dynamic loader and no libc, so anything else cannot start.

use std::path::Path;

use anyhow::{Context, Result, bail, ensure};

/// The CPU a Linux target triple runs on, as the ELF header spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Machine {
    /// Human name, as `file(1)` prints it.
    pub name: &'static str,
    /// The `e_machine` field of the ELF header.
    pub code: u16,
    /// The architecture as `std::env::consts::ARCH` names it, to tell whether this host runs it.
    pub arch: &'static str,
}

pub const X86_64: Machine = Machine {
    name: "x86-64",
    code: 62,
    arch: "x86_64",
};
pub const AARCH64: Machine = Machine {
    name: "ARM aarch64",
    code: 183,
    arch: "aarch64",
};
pub const RISCV64: Machine = Machine {
    name: "RISC-V",
    code: 243,
    arch: "riscv64",
};

impl Machine {
    /// The machine a 64-bit little-endian Linux target triple builds for.
    pub fn for_target(target: &str) -> Result<Self> {
        let arch = target.split('-').next().unwrap_or_default();
        match arch {
            "x86_64" => Ok(X86_64),
            "aarch64" => Ok(AARCH64),
            "riscv64gc" | "riscv64" => Ok(RISCV64),
            _ => bail!(
                "cannot check binaries for target `{target}`: the release supports 64-bit \
                 little-endian Linux targets (x86_64, aarch64, riscv64gc)"
            ),
        }
    }

    /// Whether this host executes the machine's binaries natively.
    pub fn runs_on_host(self) -> bool {
        cfg!(target_os = "linux") && self.arch == std::env::consts::ARCH
    }
}

/// What the program headers say about how the binary is loaded.
#[derive(Debug, PartialEq, Eq)]
pub struct ElfInfo {
    pub e_machine: u16,
    /// `ET_EXEC` (2) or `ET_DYN` (3, a PIE; static-pie when there is no interpreter).
    pub e_type: u16,
    /// The `PT_INTERP` path (the dynamic loader), if any.
    pub interpreter: Option<String>,
    /// How many `DT_NEEDED` entries (shared libraries) the dynamic section lists.
    pub needed_libraries: usize,
}

const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;

/// Parses the ELF64 little-endian header and program headers of `bytes`.
pub fn inspect(bytes: &[u8]) -> Result<ElfInfo> {
    ensure!(
        bytes.get(..4) == Some(b"\x7fELF".as_slice()),
        "not an ELF file (it does not start with the bytes 7f 45 4c 46)"
    );
    ensure!(
        bytes.get(4) == Some(&2),
        "not a 64-bit ELF file (EI_CLASS is not ELFCLASS64)"
    );
    ensure!(
        bytes.get(5) == Some(&1),
        "not a little-endian ELF file (EI_DATA is not ELFDATA2LSB)"
    );
    let e_type = u16_at(bytes, 16)?;
    let e_machine = u16_at(bytes, 18)?;
    let phoff = usize_at(bytes, 32)?;
    let phentsize = usize::from(u16_at(bytes, 54)?);
    let phnum = usize::from(u16_at(bytes, 56)?);
    ensure!(
        phentsize >= 56,
        "ELF program header entries are {phentsize} bytes, expected 56"
    );

    let mut interpreter = None;
    let mut needed_libraries = 0;
    for index in 0..phnum {
        let ph = phoff + index * phentsize;
        let p_type = u32_at(bytes, ph)?;
        let offset = usize_at(bytes, ph + 8)?;
        let size = usize_at(bytes, ph + 32)?;
        let segment = bytes
            .get(offset..offset.saturating_add(size))
            .context("an ELF program header points past the end of the file")?;
        match p_type {
            PT_INTERP => {
                let path = segment.split(|&b| b == 0).next().unwrap_or_default();
                interpreter = Some(String::from_utf8_lossy(path).into_owned());
            }
            PT_DYNAMIC => {
                for entry in segment.chunks_exact(16) {
                    let tag = u64_at(entry, 0)?;
                    if tag == DT_NULL {
                        break;
                    }
                    if tag == DT_NEEDED {
                        needed_libraries += 1;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(ElfInfo {
        e_machine,
        e_type,
        interpreter,
        needed_libraries,
    })
}

/// Fails unless `bytes` is a statically linked executable for `machine`; returns a one-line
/// description for the release log.
pub fn check_static_bytes(bytes: &[u8], machine: Machine) -> Result<String> {
    let info = inspect(bytes)?;
    ensure!(
        info.e_machine == machine.code,
        "the binary is for ELF machine {} but the target needs {} ({})",
        info.e_machine,
        machine.code,
        machine.name
    );
    let kind = match info.e_type {
        2 => "static",
        3 => "static-pie",
        other => bail!("the binary is not an executable (ELF e_type {other})"),
    };
    if let Some(interp) = &info.interpreter {
        bail!(
            "the binary is dynamically linked (interpreter {interp}); a FROM scratch image has no \
             loader: build for a *-linux-musl target"
        );
    }
    ensure!(
        info.needed_libraries == 0,
        "the binary needs {} shared libraries; a FROM scratch image has none: build for a \
         *-linux-musl target",
        info.needed_libraries
    );
    Ok(format!(
        "ELF 64-bit {}, {kind}, no interpreter, no shared libraries",
        machine.name
    ))
}

/// [`check_static_bytes`] for a file on disk.
pub fn check_static(path: &Path, machine: Machine) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    check_static_bytes(&bytes, machine).with_context(|| format!("checking {}", path.display()))
}

fn field<const N: usize>(bytes: &[u8], at: usize) -> Result<[u8; N]> {
    bytes
        .get(at..at + N)
        .and_then(|b| b.try_into().ok())
        .context("the ELF file is truncated")
}

fn u16_at(bytes: &[u8], at: usize) -> Result<u16> {
    field(bytes, at).map(u16::from_le_bytes)
}

fn u32_at(bytes: &[u8], at: usize) -> Result<u32> {
    field(bytes, at).map(u32::from_le_bytes)
}

fn u64_at(bytes: &[u8], at: usize) -> Result<u64> {
    field(bytes, at).map(u64::from_le_bytes)
}

fn usize_at(bytes: &[u8], at: usize) -> Result<usize> {
    usize::try_from(u64_at(bytes, at)?).context("an ELF offset does not fit in memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_a_file_that_is_not_elf() {
        let err = check_static_bytes(b"#!/bin/sh\necho hi\n", X86_64).unwrap_err();
        assert!(err.to_string().contains("not an ELF file"), "{err}");
    }

    #[test]
    fn rejects_a_truncated_header() {
        let err = inspect(b"\x7fELF\x02\x01\x01").unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
    }

    #[test]
    fn rejects_a_dynamically_linked_system_binary() {
        // Debian's coreutils are dynamically linked against glibc on every architecture.
        let path = Path::new("/bin/ls");
        let machine =
            Machine::for_target(&format!("{}-unknown-linux-musl", std::env::consts::ARCH))
                .expect("the host is a supported architecture");
        let info = inspect(&std::fs::read(path).unwrap()).unwrap();
        assert!(
            info.interpreter
                .as_deref()
                .is_some_and(|i| i.contains("ld-linux")),
            "{info:?}"
        );
        assert!(info.needed_libraries > 0, "{info:?}");
        let err = check_static(path, machine).unwrap_err();
        assert!(format!("{err:#}").contains("dynamically linked"), "{err:#}");
    }

    #[test]
    fn rejects_the_wrong_machine() {
        let err = check_static(Path::new("/bin/ls"), Machine { code: 1, ..X86_64 }).unwrap_err();
        assert!(format!("{err:#}").contains("ELF machine"), "{err:#}");
    }

    #[test]
    fn accepts_a_static_musl_binary() {
        // musl-gcc (musl-tools) is what a static C program is built with on Debian.
        let dir = crate::fs::scratch_dir("elf-static");
        let source = dir.join("hello.c");
        std::fs::write(&source, "int main(void) { return 0; }\n").unwrap();
        let binary = dir.join("hello");
        let status = std::process::Command::new("musl-gcc")
            .arg("-static")
            .arg("-o")
            .arg(&binary)
            .arg(&source)
            .status()
            .expect("musl-gcc runs (apt-get install musl-tools)");
        assert!(status.success());
        let host =
            Machine::for_target(&format!("{}-unknown-linux-musl", std::env::consts::ARCH)).unwrap();
        let summary = check_static(&binary, host).unwrap();
        assert!(summary.contains("no interpreter"), "{summary}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn maps_targets_to_machines() {
        assert_eq!(
            Machine::for_target("x86_64-unknown-linux-musl").unwrap(),
            X86_64
        );
        assert_eq!(
            Machine::for_target("aarch64-unknown-linux-musl").unwrap(),
            AARCH64
        );
        assert!(Machine::for_target("armv7-unknown-linux-musleabihf").is_err());
    }
}
