//! Quantised transformer files cached next to their checkpoint (written in a later step).
