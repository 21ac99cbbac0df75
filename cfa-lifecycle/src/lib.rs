//! Σ state and lifecycle (being built).
