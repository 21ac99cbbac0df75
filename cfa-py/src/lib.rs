//! The native half of the Python package `cfa` (PyPI name `cfa-rs`; built by maturin
//! as the extension module `cfa._native`): policy decisions of signatures
//! ([`decision::check`]), the governed flow ([`kernel::PyKernel`]) and audit
//! verification, checkpoints and proofs ([`audit`]), each a thin binding of the facade
//! crate `cfa`. The Python half (`python/cfa/`) adds guards, the testing helpers and the
//! pytest plugin on top.
//!
//! This crate owns only the translation between Python objects and the facade's types
//! (and the loading of bundles and catalogs a Python caller names, by the CLI's rules,
//! reused while a file's text is unchanged), and the ids of its decisions and kernels
//! ([`ids`]: UUID v4 text from a per-process seed and a counter).
//! It must not make or change decisions, write audit events of its own, or know about
//! the CLI or the servers: every decision is byte-for-byte the facade's.

mod audit;
mod convert;
mod decision;
mod ids;
mod kernel;
mod load;
mod pyde;
mod recent;

use pyo3::prelude::*;

/// mimalloc for the extension's Rust allocations (Python's own objects stay with
/// Python's allocator): a `check(dict)` allocates the signature's ~20 strings and frees
/// them with its result, a guarded call the kernel's events, plan and code; against glibc
/// malloc it takes about a fifth off either (docs/python.md#benchmark).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The module `cfa._native`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(decision::check, m)?)?;
    m.add_function(wrap_pyfunction!(ids::reseed, m)?)?;
    m.add_function(wrap_pyfunction!(audit::verify, m)?)?;
    m.add_function(wrap_pyfunction!(audit::generate_key, m)?)?;
    m.add_function(wrap_pyfunction!(audit::checkpoint, m)?)?;
    m.add_function(wrap_pyfunction!(audit::prove, m)?)?;
    m.add_function(wrap_pyfunction!(audit::verify_proof, m)?)?;
    m.add_class::<decision::PyDecision>()?;
    m.add_class::<decision::PyChecker>()?;
    m.add_class::<decision::PySignature>()?;
    m.add_class::<decision::PyFault>()?;
    m.add_class::<kernel::PyKernel>()?;
    m.add_class::<kernel::PyKernelResult>()?;
    m.add_class::<audit::PyVerifyReport>()?;
    m.add(
        "BUILTIN_BUNDLES",
        cfa::policy::builtin::names().collect::<Vec<_>>(),
    )?;
    Ok(())
}
