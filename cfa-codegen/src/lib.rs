//! Π generate: backends and static validation (being built).
