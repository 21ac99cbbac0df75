//! Φ formalize: normalizers and confirmation (being built).
