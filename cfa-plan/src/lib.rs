//! Π plan: execution plans (being built).
