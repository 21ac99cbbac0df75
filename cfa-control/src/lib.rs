//! The control plane around the decision: what an operator sets beside the policy bundle.
//!
//! - [`approval`]: approval tickets bound to the exact action that was held (the
//!   signature's `content_hash` and the bundle hash), single-use, with an expiry.
//! - [`budget`]: spend caps per scope over a window, reserved when a run is approved,
//!   reconciled with measured metrics, released on rollback.
//! - [`kill`]: the kill switch that stops every approval in a scope at once.
//! - [`snapshot`]: the point-in-time [`ControlSnapshot`] a decision reads, the pure
//!   [`gate`] (kill switch → approvals → budgets) and the [`ControlStore`] trait.
//! - `sqlite` (feature `sqlite`): `ControlDb`, the control tables in the lifecycle
//!   SQLite database, shared by every process using the file.
//! - `pg` (feature `postgres`): `PgControl` (tickets and kill switches) and
//!   `budget::PgBudgets`, the same state in one PostgreSQL database every replica
//!   shares; the DSN is never shown (errors name the server as `user@host:port/db`).
//! - `rows`: what the stores share (rows → values, the checks before a write), so the
//!   SQLite and PostgreSQL stores refuse and answer alike.
//!
//! The decision path only ever reads a point-in-time snapshot of this state, handed in by
//! the caller, so a decision stays a deterministic function of its inputs; the stores
//! (the lifecycle SQLite database with the `sqlite` feature, PostgreSQL with
//! `postgres`) are written by the faces
//! before and after a decision, never during one. The one exception is a budget charge:
//! once the policy approved a run, the kernel reserves, reconciles or releases it through
//! the [`budget::BudgetLedger`] trait it is handed, before and after execution. Time is
//! injected.
//!
//! It must NOT know the kernel, the faces (CLI, MCP, HTTP), the audit chain or how the
//! policy engine evaluates: it turns a finished policy action and a snapshot into the
//! control plane's verdict, and stores tickets, budgets and switches.

pub mod approval;
pub mod budget;
mod error;
pub mod kill;
#[cfg(feature = "postgres")]
mod pg;
#[cfg(feature = "postgres")]
mod pg_control;
#[cfg(all(test, feature = "postgres"))]
mod pg_tests;
#[cfg(feature = "postgres")]
mod pg_watch;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod rows;
pub mod snapshot;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use approval::{Resolution, Ticket, TicketStatus};
pub use error::{ControlError, parse_time};
pub use kill::{KillSwitch, Scope, Subject};
#[cfg(feature = "postgres")]
pub use pg_control::PgControl;
pub use snapshot::{
    ControlOutcome, ControlRequest, ControlSnapshot, ControlStatus, ControlStore, ControlVerdict,
    gate,
};
#[cfg(feature = "sqlite")]
pub use sqlite::ControlDb;
