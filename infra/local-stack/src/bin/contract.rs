//! `cargo run -p local-stack --bin contract`: writes the OpenAPI document generated from the
//! code to `docs/openapi.json`, the route table it implies into `docs/API.md`, and the table of
//! what each function is granted into `docs/SECURITY.md`. A test fails while any differs from
//! what the code generates.

use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::write(root.join("docs/openapi.json"), shared::http::contract::openapi_json())?;
    let api = root.join("docs/API.md");
    let updated = shared::http::contract::with_route_table(&std::fs::read_to_string(&api)?)
        .ok_or("docs/API.md has no route table markers (see shared::http::contract::ROUTE_TABLE_BEGIN)")?;
    std::fs::write(&api, updated)?;
    let security = root.join("docs/SECURITY.md");
    let updated = shared::startup::wiring::with_grants_table(&std::fs::read_to_string(&security)?)
        .ok_or("docs/SECURITY.md has no grants table markers (see shared::startup::wiring::GRANTS_TABLE_BEGIN)")?;
    std::fs::write(&security, updated)?;
    let operations = shared::http::routes().len();
    println!(
        "docs/openapi.json, the route table of docs/API.md ({operations} operations) and the grants of docs/SECURITY.md written"
    );
    Ok(())
}
