//! The process's one HTTPS client (`shared::https`) for real: its TLS against a loopback server
//! whose certificate no compiled-in root vouches for (refused by the Calendly client and the
//! SDK clients alike) or whose CA it is told to trust (a completed handshake), and the AWS SDK
//! over it when DynamoDB answers an error or nobody answers at all. (Every other DynamoDB test
//! runs through the same client against moto, whose answers the SDK checks by their CRC32
//! header: bodies and headers come back intact.)

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use shared::domain::OrganizationId;
use shared::store::{DynamoStore, OrganizationStore, StoreError};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A DynamoDB stand-in that throttles every request, counting them and keeping the last
/// request's target header.
async fn throttling_dynamodb() -> (String, Arc<AtomicUsize>, Arc<std::sync::Mutex<Option<String>>>) {
    let attempts = Arc::new(AtomicUsize::new(0));
    let target = Arc::new(std::sync::Mutex::new(None));
    let (count, seen) = (attempts.clone(), target.clone());
    let app = Router::new().fallback(move |headers: HeaderMap| {
        let (count, seen) = (count.clone(), seen.clone());
        async move {
            count.fetch_add(1, Ordering::SeqCst);
            *seen.lock().unwrap() =
                headers.get("x-amz-target").and_then(|v| v.to_str().ok()).map(String::from);
            (
                StatusCode::BAD_REQUEST,
                [("content-type", "application/x-amz-json-1.0")],
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate of requests exceeds the allowed throughput."}"#,
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, attempts, target)
}

#[tokio::test]
async fn a_throttled_request_is_retried_by_the_sdk_then_reported_as_throttling() {
    let (endpoint, attempts, target) = throttling_dynamodb().await;
    let store = DynamoStore::new(local_stack::dynamo::client(Some(&endpoint), None, None), "velvena");

    let answer = store.get_organization(&OrganizationId::new("org-a")).await;

    assert!(matches!(answer, Err(StoreError::Throttled)), "{answer:?}");
    // The SDK's standard retry policy: 3 attempts, each one sent through the shared client.
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    assert_eq!(target.lock().unwrap().as_deref(), Some("DynamoDB_20120810.GetItem"));
}

#[tokio::test]
async fn nobody_listening_is_unavailable_not_a_corrupt_answer() {
    // The discard port: nothing listens there.
    let store = DynamoStore::new(local_stack::dynamo::client(Some("http://127.0.0.1:9"), None, None), "velvena");

    let answer = store.get_organization(&OrganizationId::new("org-a")).await;

    match answer {
        Err(StoreError::Unavailable(cause)) => {
            let detail = shared::errors::chain(cause.as_ref());
            assert!(detail.contains("dispatch failure"), "{detail}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

/// A TLS server on loopback with a certificate for `localhost` issued by the tests' own CA
/// (`tests/tls/`, valid until 2126): it answers `ok` to any request, and counts the requests
/// that got past the handshake.
async fn tls_server() -> (u16, Arc<AtomicUsize>) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tls");
    let chain = CertificateDer::pem_file_iter(format!("{dir}/localhost.pem")).unwrap().map(Result::unwrap).collect();
    let key = PrivateKeyDer::from_pem_file(format!("{dir}/localhost.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let requests = Arc::new(AtomicUsize::new(0));
    let served = requests.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, served) = (acceptor.clone(), served.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                served.fetch_add(1, Ordering::SeqCst);
                let _ = tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok").await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (port, requests)
}

/// An error and its sources, as one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(&format!(": {e}"));
        source = e.source();
    }
    text
}

#[tokio::test]
async fn the_process_client_refuses_a_certificate_outside_its_compiled_in_roots() {
    let (port, requests) = tls_server().await;

    let error = shared::https::client().get(format!("https://localhost:{port}/")).send().await.unwrap_err();

    let text = chain(&error);
    assert!(text.contains("UnknownIssuer"), "{text}");
    assert_eq!(requests.load(Ordering::SeqCst), 0, "nothing was sent past the handshake");
}

#[tokio::test]
async fn the_sdk_clients_fail_closed_on_the_same_certificate() {
    let (port, requests) = tls_server().await;
    let endpoint = format!("https://localhost:{port}");
    let store = DynamoStore::new(local_stack::dynamo::client(Some(&endpoint), None, None), "velvena");

    let answer = store.get_organization(&OrganizationId::new("org-a")).await;

    match answer {
        Err(StoreError::Unavailable(cause)) => {
            let detail = shared::errors::chain(cause.as_ref());
            assert!(detail.contains("UnknownIssuer"), "{detail}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert_eq!(requests.load(Ordering::SeqCst), 0, "nothing was sent past the handshake");
}

#[tokio::test]
async fn the_process_tls_configuration_completes_a_handshake_with_a_root_it_trusts() {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let (port, requests) = tls_server().await;
    let ca = CertificateDer::from_pem_file(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tls/ca.pem")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).unwrap();
    // The process's configuration (ring, TLS 1.2/1.3), over the tests' CA instead of Mozilla's.
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(shared::https::tls_config_trusting(roots))
        .build()
        .unwrap();

    let answer = client.get(format!("https://localhost:{port}/")).send().await.unwrap();

    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.unwrap(), "ok");
    assert_eq!(requests.load(Ordering::SeqCst), 1);
}
