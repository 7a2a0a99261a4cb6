//! `traftctl`: a traft cluster member and the operator's client in one binary.

fn main() {}
