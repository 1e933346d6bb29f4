//! Measuring how well a profile separates damage, and choosing its threshold.

pub mod calibration;
pub mod charts;
pub mod dataset;
pub mod masks;
pub mod metrics;
pub mod outcome;
pub mod report;
#[cfg(feature = "scoring")]
pub mod session;
pub mod threshold;
