//! The Redis layer (scale-out).
