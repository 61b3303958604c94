//! The on-disk journal (being built; see the module list in `history`).
