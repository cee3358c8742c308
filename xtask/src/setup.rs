//! What `cargo xtask ci` needs from the machine before its first cargo call: the GLUE data,
//! the Debian packages of the full build, and the Python environments (`.venv` also supplies
//! libtorch to the `tch` build). The machine is read once into [`Facts`]; [`plan`] turns them
//! into what would be done, a pure function, so that every situation is a unit test; then
//! [`Plan::blockers`] stops the run before anything is done if something is missing that only
//! the user can supply, and [`install_packages`] and [`prepare_python`] do the rest.
//! `cargo xtask ci --dry-run` prints the plan instead.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, ensure};

use crate::python::{self, EnvState, PythonEnv};

/// The Debian packages of the full build: Mesa's lavapipe runs the wgpu tests on the CPU, Open
/// MPI's `mpirun` starts the data-parallel tests, and its headers, read by bindgen through
/// libclang, build the `mpi` crate. `--flex-only` needs none of them.
pub const BACKEND_PACKAGES: [&str; 4] = [
    "mesa-vulkan-drivers",
    "openmpi-bin",
    "libopenmpi-dev",
    "libclang-dev",
];
/// Debian's `python3` makes no virtualenv without this package.
pub const VENV_PACKAGE: &str = "python3-venv";

/// The machine as the set-up sees it: read by [`Facts::gather`], written out in tests.
#[derive(Debug, Clone)]
pub struct Facts {
    /// Whether we run as root, and so may call apt-get ourselves.
    pub root: bool,
    /// Which of [`BACKEND_PACKAGES`] and [`VENV_PACKAGE`] dpkg does not list as installed;
    /// `None` where there is no dpkg (not Debian): nothing can be checked or installed.
    pub missing_packages: Option<Vec<String>>,
    /// Whether `python3` runs and has the `venv` and `ensurepip` modules.
    pub python3: Python3,
    /// Each Python environment the tests run (`.venv` first) and its state.
    pub python: Vec<(PythonEnv, EnvState)>,
    /// The GLUE MRPC folder the tests read.
    pub mrpc: PathBuf,
    /// Whether that folder is there.
    pub mrpc_present: bool,
    /// Whether `CI` is set: a clean build gains nothing from incremental state but disk use.
    pub ci: bool,
}

/// What `python3` can do, which matters only where `.venv` is to be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Python3 {
    /// It runs and makes virtualenvs.
    Ready,
    /// It runs, but without `venv` or `ensurepip` (Debian without `python3-venv`).
    NoVenv,
    /// There is no `python3` on `PATH`.
    Missing,
}

/// What the set-up would do: [`plan`]'s answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The GLUE MRPC folder, if it is missing (only the user can supply it).
    pub missing_mrpc: Option<PathBuf>,
    /// Debian packages to install.
    pub apt: Apt,
    /// Missing packages not installed because `--flex-only` needs none of them.
    pub skipped: Vec<String>,
    /// Packages needed that could not be checked (no dpkg).
    pub unchecked: Vec<String>,
    /// Whether `.venv` must be created by a `python3` that cannot create it (and no package
    /// can be installed for it).
    pub python3_unusable: Option<Python3>,
    /// Each Python environment and what becomes of it.
    pub python: Vec<(PythonEnv, EnvState)>,
    /// Whether the cargo calls get `CARGO_INCREMENTAL=0`.
    pub incremental_off: bool,
}

/// The Debian packages a plan installs, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Apt {
    /// Nothing is missing.
    Nothing,
    /// We are root: `apt-get update`, then `apt-get install -y` these.
    Install(Vec<String>),
    /// We are not root: the run stops before anything, with the `sudo apt-get` line to run.
    AskUser(Vec<String>),
}

/// What the set-up would do on a machine with `facts`; `flex_only` builds neither libtorch,
/// wgpu nor MPI, so it needs none of [`BACKEND_PACKAGES`].
pub fn plan(facts: &Facts, flex_only: bool) -> Plan {
    let creates_venv = facts
        .python
        .iter()
        .any(|(env, state)| *env == PythonEnv::Venv && *state == EnvState::Absent);
    let mut needed: Vec<String> = BACKEND_PACKAGES.iter().map(|p| p.to_string()).collect();
    if creates_venv && facts.python3 == Python3::NoVenv {
        needed.push(VENV_PACKAGE.to_string());
    }
    let (mut install, mut skipped, mut unchecked) = (Vec::new(), Vec::new(), Vec::new());
    for package in needed {
        let skippable = flex_only && package != VENV_PACKAGE;
        match &facts.missing_packages {
            None if !skippable => unchecked.push(package),
            None => {}
            Some(missing) if !missing.contains(&package) => {}
            Some(_) if skippable => skipped.push(package),
            Some(_) => install.push(package),
        }
    }
    let apt = match (install.is_empty(), facts.root) {
        (true, _) => Apt::Nothing,
        (false, true) => Apt::Install(install),
        (false, false) => Apt::AskUser(install),
    };
    // Only installing python3-venv mends a python3 without venv; where dpkg lists it as
    // installed already, or there is no dpkg, nothing here can.
    let venv_package_missing = facts
        .missing_packages
        .as_ref()
        .is_some_and(|missing| missing.iter().any(|p| p == VENV_PACKAGE));
    let venv_fixable = facts.python3 == Python3::NoVenv && venv_package_missing;
    let python3_unusable =
        (creates_venv && facts.python3 != Python3::Ready && !venv_fixable).then_some(facts.python3);
    Plan {
        missing_mrpc: (!facts.mrpc_present).then(|| facts.mrpc.clone()),
        apt,
        skipped,
        unchecked,
        python3_unusable,
        python: facts.python.clone(),
        incremental_off: facts.ci,
    }
}

impl Plan {
    /// What only the user can supply, each as a message saying how; the run stops on any of
    /// them before doing anything, so that it never fails halfway for want of a library.
    pub fn blockers(&self) -> Vec<String> {
        let mut blockers = Vec::new();
        if let Some(mrpc) = &self.missing_mrpc {
            blockers.push(format!(
                "no GLUE MRPC data at {}: the tests read the shared GLUE files beside the \
                 checkout (../shared/data/glue); set GLUE_DIR or FT_SHARED_DIR to where they are",
                mrpc.display()
            ));
        }
        if let Apt::AskUser(packages) = &self.apt {
            let flex_only_hint = if packages.iter().any(|p| p != VENV_PACKAGE) {
                "\n(`cargo xtask ci --flex-only` needs none of the wgpu, libtorch and MPI ones)"
            } else {
                ""
            };
            blockers.push(format!(
                "missing Debian packages ({}); install them with\n    sudo apt-get install -y {}\n\
                 then run cargo xtask ci again{flex_only_hint}",
                packages.join(", "),
                packages.join(" ")
            ));
        }
        match self.python3_unusable {
            Some(Python3::Missing) => blockers.push(
                "no python3 on PATH: .venv is made with `python3 -m venv` (Python 3.10 or newer)"
                    .to_string(),
            ),
            Some(_) => blockers.push(
                "python3 has no venv module, so it cannot make .venv: install your system's \
                 venv package for it"
                    .to_string(),
            ),
            None => {}
        }
        blockers
    }

    /// The commands that install the missing packages, as root (none otherwise).
    pub fn apt_commands(&self) -> Vec<Vec<String>> {
        let Apt::Install(packages) = &self.apt else {
            return Vec::new();
        };
        let update = ["apt-get", "update", "-qq"].map(String::from).to_vec();
        let install = [
            "DEBIAN_FRONTEND=noninteractive",
            "apt-get",
            "install",
            "-y",
            "-qq",
        ]
        .map(String::from)
        .into_iter()
        .chain(packages.iter().cloned())
        .collect();
        vec![update, install]
    }

    /// What is said loudly on stderr before the run: what is skipped or could not be checked.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if !self.skipped.is_empty() {
            warnings.push(format!(
                "--flex-only: not installing {} (the wgpu, libtorch and MPI tests are not built)",
                self.skipped.join(", ")
            ));
        }
        if !self.unchecked.is_empty() {
            warnings.push(format!(
                "no dpkg here, so {} could not be checked: install your system's equivalents \
                 (the build needs libclang and Open MPI's headers, the tests lavapipe and mpirun)",
                self.unchecked.join(", ")
            ));
        }
        warnings
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let line =
            |f: &mut fmt::Formatter<'_>, what: &str, how: &str| writeln!(f, "  {what:<20} {how}");
        match &self.missing_mrpc {
            Some(mrpc) => line(f, "GLUE data", &format!("MISSING ({})", mrpc.display()))?,
            None => line(f, "GLUE data", "present")?,
        }
        let apt = match &self.apt {
            Apt::Nothing => "nothing to install".to_string(),
            Apt::Install(packages) => format!("would install {} (as root)", packages.join(", ")),
            Apt::AskUser(packages) => {
                format!("MISSING {} (not root: the run stops)", packages.join(", "))
            }
        };
        line(f, "Debian packages", &apt)?;
        for command in self.apt_commands() {
            line(f, "", &format!("$ {}", command.join(" ")))?;
        }
        for (env, state) in &self.python {
            let (folder, requirements) = (env.folder(), env.requirements());
            let how = match state {
                EnvState::Current => format!("ready ({} holds {requirements})", folder.display()),
                EnvState::Absent => {
                    format!("would create {} from {requirements}", folder.display())
                }
                EnvState::Stale => format!(
                    "would install {requirements} into {} again (no record that it holds them)",
                    folder.display()
                ),
            };
            line(f, &env.name(), &how)?;
        }
        let incremental = if self.incremental_off {
            "CARGO_INCREMENTAL=0 (CI is set)"
        } else {
            "CARGO_INCREMENTAL as it is (CI is not set)"
        };
        line(f, "cargo", incremental)?;
        for warning in self.warnings() {
            writeln!(f, "  warning: {warning}")?;
        }
        for blocker in self.blockers() {
            writeln!(f, "  the run would stop: {blocker}")?;
        }
        Ok(())
    }
}

impl Facts {
    /// Reads the machine, changing nothing.
    pub fn gather(root: &Path) -> Result<Facts> {
        let python = python::environments(root)?
            .into_iter()
            .map(|env| {
                let state = env.state(root);
                (env, state)
            })
            .collect();
        let mrpc = glue_dir(root).join("MRPC");
        Ok(Facts {
            root: is_root(),
            missing_packages: missing_packages(),
            python3: python3(),
            python,
            mrpc_present: mrpc.is_dir(),
            mrpc,
            ci: std::env::var_os("CI").is_some_and(|value| !value.is_empty()),
        })
    }
}

/// The GLUE folder as the tests find it (`test_support::glue_dir`): `$GLUE_DIR`, else
/// `$FT_SHARED_DIR/data/glue`, else `../shared/data/glue` beside the checkout.
fn glue_dir(root: &Path) -> PathBuf {
    if let Some(dir) = std::env::var_os("GLUE_DIR") {
        return PathBuf::from(dir);
    }
    match std::env::var_os("FT_SHARED_DIR") {
        Some(shared) => PathBuf::from(shared).join("data/glue"),
        None => root.join("../shared/data/glue"),
    }
}

/// Whether the effective user is root (`id -u`; anything unreadable counts as not root).
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
}

/// Which of the packages the set-up may need dpkg does not list as installed; `None` where
/// dpkg cannot be run.
fn missing_packages() -> Option<Vec<String>> {
    let mut missing = Vec::new();
    for package in BACKEND_PACKAGES.iter().chain(&[VENV_PACKAGE]) {
        let output = Command::new("dpkg").args(["-s", package]).output().ok()?;
        let text = String::from_utf8_lossy(&output.stdout);
        if !(output.status.success() && dpkg_says_installed(&text)) {
            missing.push(package.to_string());
        }
    }
    Some(missing)
}

/// Whether `dpkg -s`'s report says the package is installed: dpkg also reports, and exits 0
/// for, a package removed with its configuration files left (`deinstall ok config-files`).
fn dpkg_says_installed(report: &str) -> bool {
    report
        .lines()
        .any(|line| line.trim() == "Status: install ok installed")
}

/// Whether `python3` runs and can make a virtualenv.
fn python3() -> Python3 {
    let probe = Command::new("python3")
        .args(["-c", "import ensurepip, venv"])
        .output();
    match probe {
        Err(_) => Python3::Missing,
        Ok(output) if output.status.success() => Python3::Ready,
        Ok(_) => Python3::NoVenv,
    }
}

/// Installs the plan's Debian packages, as root.
pub fn install_packages(plan: &Plan) -> Result<()> {
    for command in plan.apt_commands() {
        eprintln!("$ {}", command.join(" "));
        // `env` runs the words as shown, a leading `NAME=value` included.
        let status = Command::new("env")
            .args(&command)
            .status()
            .with_context(|| format!("running {}", command.join(" ")))?;
        ensure!(
            status.success(),
            "`{}` failed ({status})",
            command.join(" ")
        );
    }
    Ok(())
}

/// Creates or completes each Python environment of the plan, `.venv` first.
pub fn prepare_python(root: &Path, plan: &Plan) -> Result<()> {
    for (env, state) in &plan.python {
        python::prepare(root, env, *state)
            .with_context(|| format!("preparing {} ({})", env.name(), env.folder().display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Debian CI machine with everything in place.
    fn ready() -> Facts {
        Facts {
            root: false,
            missing_packages: Some(Vec::new()),
            python3: Python3::Ready,
            python: vec![
                (PythonEnv::Venv, EnvState::Current),
                (transformers_525(), EnvState::Current),
            ],
            mrpc: PathBuf::from("/shared/data/glue/MRPC"),
            mrpc_present: true,
            ci: false,
        }
    }

    fn transformers_525() -> PythonEnv {
        PythonEnv::Transformers {
            version: "5.25.0".into(),
            requirements: "python/requirements-transformers-5.25.txt".into(),
        }
    }

    fn missing(packages: &[&str]) -> Option<Vec<String>> {
        Some(packages.iter().map(|p| p.to_string()).collect())
    }

    #[test]
    fn a_ready_machine_needs_nothing() {
        let plan = plan(&ready(), false);
        assert_eq!(plan.apt, Apt::Nothing);
        assert!(plan.blockers().is_empty() && plan.warnings().is_empty());
        assert!(plan.apt_commands().is_empty());
        assert!(!plan.incremental_off);
        assert!(plan.python.iter().all(|(_, s)| *s == EnvState::Current));
    }

    #[test]
    fn root_installs_the_missing_packages_with_apt_get() {
        let facts = Facts {
            root: true,
            missing_packages: missing(&["openmpi-bin", "libclang-dev"]),
            ..ready()
        };
        let plan = plan(&facts, false);
        assert_eq!(
            plan.apt,
            Apt::Install(vec!["openmpi-bin".into(), "libclang-dev".into()])
        );
        assert!(plan.blockers().is_empty());
        let commands: Vec<String> = plan.apt_commands().iter().map(|c| c.join(" ")).collect();
        assert_eq!(
            commands,
            [
                "apt-get update -qq",
                "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openmpi-bin libclang-dev"
            ]
        );
    }

    #[test]
    fn a_user_is_given_the_one_sudo_line_and_the_run_stops() {
        let facts = Facts {
            missing_packages: missing(&["mesa-vulkan-drivers", "libopenmpi-dev"]),
            ..ready()
        };
        let plan = plan(&facts, false);
        assert!(plan.apt_commands().is_empty());
        let blockers = plan.blockers();
        assert_eq!(blockers.len(), 1, "{blockers:?}");
        assert!(
            blockers[0]
                .contains("\n    sudo apt-get install -y mesa-vulkan-drivers libopenmpi-dev\n"),
            "{}",
            blockers[0]
        );
    }

    #[test]
    fn flex_only_skips_the_backend_packages_loudly_as_user_or_root() {
        for root in [false, true] {
            let facts = Facts {
                root,
                missing_packages: missing(&BACKEND_PACKAGES),
                ..ready()
            };
            let plan = plan(&facts, true);
            assert_eq!(plan.apt, Apt::Nothing);
            assert!(plan.blockers().is_empty());
            assert_eq!(plan.skipped.len(), 4);
            let warnings = plan.warnings();
            assert!(warnings[0].starts_with("--flex-only: not installing mesa-vulkan-drivers"));
        }
    }

    #[test]
    fn a_missing_venv_is_created_and_a_stale_one_completed() {
        let facts = Facts {
            python: vec![
                (PythonEnv::Venv, EnvState::Absent),
                (transformers_525(), EnvState::Stale),
            ],
            ..ready()
        };
        let plan = plan(&facts, false);
        assert_eq!(plan.python, facts.python);
        assert!(plan.blockers().is_empty());
        let shown = plan.to_string();
        assert!(
            shown
                .contains(".venv                would create .venv from python/requirements.txt\n"),
            "{shown}"
        );
        assert!(
            shown.contains(
                "transformers 5.25.0  would install python/requirements-transformers-5.25.txt \
                 into .venv/transformers-5.25.0 again"
            ),
            "{shown}"
        );
    }

    #[test]
    fn python3_venv_is_needed_only_to_create_the_venv_even_under_flex_only() {
        let without_venv = Facts {
            python3: Python3::NoVenv,
            missing_packages: missing(&[VENV_PACKAGE]),
            python: vec![(PythonEnv::Venv, EnvState::Absent)],
            ..ready()
        };
        let plan_as_user = plan(&without_venv, true);
        assert_eq!(plan_as_user.apt, Apt::AskUser(vec![VENV_PACKAGE.into()]));
        assert!(plan_as_user.blockers()[0].contains("sudo apt-get install -y python3-venv"));
        let as_root = Facts {
            root: true,
            ..without_venv.clone()
        };
        assert_eq!(
            plan(&as_root, true).apt,
            Apt::Install(vec![VENV_PACKAGE.into()])
        );
        let venv_there = Facts {
            python: vec![(PythonEnv::Venv, EnvState::Current)],
            ..without_venv
        };
        assert_eq!(plan(&venv_there, false).apt, Apt::Nothing);
    }

    #[test]
    fn every_blocker_is_reported_at_once() {
        let facts = Facts {
            missing_packages: missing(&["libclang-dev"]),
            mrpc_present: false,
            python3: Python3::Missing,
            python: vec![(PythonEnv::Venv, EnvState::Absent)],
            ..ready()
        };
        let blockers = plan(&facts, false).blockers();
        assert_eq!(blockers.len(), 3, "{blockers:?}");
        assert!(blockers[0].contains("/shared/data/glue/MRPC"));
        assert!(blockers[1].contains("sudo apt-get install -y libclang-dev"));
        assert!(blockers[2].starts_with("no python3 on PATH"));
    }

    #[test]
    fn without_dpkg_nothing_is_installed_and_the_run_goes_on_warned() {
        let facts = Facts {
            root: true,
            missing_packages: None,
            ..ready()
        };
        let full = plan(&facts, false);
        assert_eq!(full.apt, Apt::Nothing);
        assert!(full.blockers().is_empty());
        assert_eq!(full.unchecked.len(), 4);
        assert!(full.warnings()[0].starts_with("no dpkg here"));
        assert!(plan(&facts, true).warnings().is_empty());
    }

    #[test]
    fn ci_turns_incremental_compilation_off() {
        let facts = Facts {
            ci: true,
            ..ready()
        };
        assert!(plan(&facts, false).incremental_off);
        assert!(
            plan(&facts, false)
                .to_string()
                .contains("CARGO_INCREMENTAL=0")
        );
    }

    #[test]
    fn dpkg_reports_are_read_by_their_status_line() {
        let installed = "Package: openmpi-bin\nStatus: install ok installed\nPriority: optional\n";
        let removed = "Package: openmpi-bin\nStatus: deinstall ok config-files\n";
        assert!(dpkg_says_installed(installed));
        assert!(!dpkg_says_installed(removed));
        assert!(!dpkg_says_installed(""));
    }
}
