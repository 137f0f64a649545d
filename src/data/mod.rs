//! Datasets (see the data issue).
