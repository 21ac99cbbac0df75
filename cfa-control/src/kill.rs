//! The kill switch: stops every approval in a scope until it is lifted.
