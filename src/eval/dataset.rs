//! Dataset layouts (MVTec AD, BTAD, plain folders) and defect categories.
