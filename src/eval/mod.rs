//! Choosing thresholds (and, later, measuring how well a profile separates damage).

pub mod threshold;
