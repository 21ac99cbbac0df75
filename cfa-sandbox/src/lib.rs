//! Ω execute and validate (being built).
