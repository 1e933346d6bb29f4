//! Threshold-free and threshold-dependent metrics of the twofold evaluation.
