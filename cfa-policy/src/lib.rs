//! Γ govern: conditions, policy bundles and the pure policy decision (being built).
