//! The CFA kernel (being built).
