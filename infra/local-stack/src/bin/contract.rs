//! `cargo run -p local-stack --bin contract`: writes the OpenAPI document generated from the
//! code to `docs/openapi.json`, and into README.md the route table it implies and the table of
//! what each function is granted. A test fails while any differs from what the code generates.

use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::write(root.join("docs/openapi.json"), shared::http::contract::openapi_json())?;
    let readme_path = root.join("README.md");
    let readme = std::fs::read_to_string(&readme_path)?;
    let updated = shared::http::contract::readme_with_route_table(&readme)
        .ok_or("README.md has no route table markers (see shared::http::contract::README_TABLE_BEGIN)")?;
    let updated = shared::wiring::readme_with_grants_table(&updated)
        .ok_or("README.md has no grants table markers (see shared::wiring::README_GRANTS_BEGIN)")?;
    std::fs::write(&readme_path, updated)?;
    let operations = shared::http::routes().len();
    println!("docs/openapi.json, the README route table ({operations} operations) and its table of grants written");
    Ok(())
}
