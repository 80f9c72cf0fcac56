//! `cargo run -p local-stack --bin contract`: writes the OpenAPI document generated from the
//! code to `docs/openapi.json` and the route table it implies into README.md. A test fails
//! while either differs from what the code generates.

use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::write(root.join("docs/openapi.json"), shared::http::contract::openapi_json())?;
    let readme_path = root.join("README.md");
    let readme = std::fs::read_to_string(&readme_path)?;
    let updated = shared::http::contract::readme_with_route_table(&readme)
        .ok_or("README.md has no route table markers (see shared::http::contract::README_TABLE_BEGIN)")?;
    std::fs::write(&readme_path, updated)?;
    let operations = shared::http::routes().len();
    println!("docs/openapi.json and the README route table written ({operations} operations)");
    Ok(())
}
