//! Budgets per scope over a window: reservation, reconciliation, release.
