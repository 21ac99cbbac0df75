//! The decision and intent service both long-running faces share (`cfa mcp` and
//! `cfa serve`): the configured bundle, catalog and audit log ([`decide::Governance`]),
//! audited signature decisions through the kernel's `PolicyCheck`, intents through the
//! kernel ([`intent`]), the face-level error of one shape ([`FaceError`]) and the
//! credential comparison both faces' auth uses. It knows no transport: HTTP belongs to
//! `serve/`, JSON-RPC and MCP to `mcp/`.

pub mod audit_log;
pub mod backtest;
pub mod budget;
pub mod candidate;
pub mod control;
pub mod control_store;
pub mod decide;
pub mod error;
pub mod evidence;
pub mod ids;
pub mod intent;
pub mod policy_test;
pub mod shadow;

pub use audit_log::AuditLog;
pub use error::FaceError;

/// Compares two byte strings in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_compare() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
