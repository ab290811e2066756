//! Prints the CRDs generated from the Rust types, or writes them to the
//! files given as arguments (`crds/crds.yaml`, the chart's copy).

fn main() -> std::io::Result<()> {
    let yaml = smooch_operator::resources::crds_yaml();
    let targets: Vec<String> = std::env::args().skip(1).collect();
    if targets.is_empty() {
        print!("{yaml}");
    }
    for target in targets {
        std::fs::write(&target, &yaml)?;
        eprintln!("wrote {target}");
    }
    Ok(())
}
