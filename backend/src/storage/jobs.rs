//! Background jobs (room exports).
