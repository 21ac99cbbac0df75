//! Approval tickets bound to the exact action that was held.
