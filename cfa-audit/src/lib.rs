//! Σ audit: the SHA-256 hash-chained audit log (being built).
