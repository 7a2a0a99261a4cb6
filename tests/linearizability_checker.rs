//! Runs the linearizability checker's unit tests on their own, without the
//! simulator: `cargo test --test linearizability_checker`.

#[path = "sim/linearizability.rs"]
mod linearizability;
