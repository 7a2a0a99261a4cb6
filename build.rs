//! Generates the gRPC code from `proto/` with protox, a pure-Rust protobuf
//! compiler, so a machine with only the Rust toolchain can build traftctl.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(["traft.proto"], ["proto"])?;
    tonic_prost_build::configure()
        // Deterministic iteration keeps encodings, tables and JSON stable.
        .btree_map(".")
        .compile_fds(descriptors)?;
    // Only the side-by-side benchmark (examples/side_by_side.rs) uses etcd's
    // API; a client is all it needs.
    let etcd = protox::compile(["etcd/kv.proto"], ["proto"])?;
    tonic_prost_build::configure().build_server(false).compile_fds(etcd)?;
    Ok(())
}
