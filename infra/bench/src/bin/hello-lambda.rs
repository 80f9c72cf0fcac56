//! The reference for cold start and memory: a hello-world `lambda_http` function built by the
//! same workspace with the same profile. Nothing a Rust Lambda does can start faster.

use lambda_http::{Body, Error, Request, Response, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::run(service_fn(|_: Request| async {
        Ok::<_, Error>(
            Response::builder().status(200).body(Body::from("{\"hello\":\"world\"}")).expect("static response"),
        )
    }))
    .await
}
