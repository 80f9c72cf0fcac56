//! The process's one HTTPS stack: one TLS configuration and one connection pool, shared by the
//! Calendly client and every AWS SDK client.
//!
//! Why one: a cold start used to set TLS up twice (the SDK's hyper client and reqwest), each
//! reading and parsing the system's root store from disk, and each linking its own crypto
//! (aws-lc). Here the roots are compiled in (Mozilla's, via `webpki-roots`: no file read, no
//! parsing; they change only with a rebuild, which a Lambda deployment is anyway), the crypto
//! is `ring`, and the SDK talks through the same `reqwest::Client` as Calendly
//! (`sdk_http_client`), so the binary carries one HTTP and one TLS implementation.
//!
//! The SDK adapter sends whole bodies: every request of the services we use (DynamoDB, SQS,
//! Secrets Manager, the WebSocket management API) is a small JSON document, never a stream.

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// How long a TCP connect may take: the AWS SDK's own default (just over the 3 s of a lost
/// SYN's first retransmission), for every host.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);

/// The TLS configuration of the process: Mozilla's roots (compiled in), `ring`, TLS 1.2 and 1.3.
pub fn tls_config() -> rustls::ClientConfig {
    static CONFIG: OnceLock<rustls::ClientConfig> = OnceLock::new();
    CONFIG
        .get_or_init(|| tls_config_trusting(rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() }))
        .clone()
}

/// The same configuration over other roots (tests trust their own certificate authority).
pub fn tls_config_trusting(roots: rustls::RootCertStore) -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// A reqwest builder with the process's TLS configuration and connect timeout (reqwest is
/// built without a default crypto provider: a client built otherwise would not start).
pub fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder().tls_backend_preconfigured(tls_config()).connect_timeout(CONNECT_TIMEOUT)
}

/// The process's HTTP client (built on first use; clones share its pool and TLS set-up).
/// Per-use limits go on each request (`RequestBuilder::timeout`).
pub fn client() -> reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            client_builder()
                .user_agent(concat!("velvena-calendly/", env!("CARGO_PKG_VERSION")))
                .build()
                .expect("the HTTP client's fixed configuration is valid")
        })
        .clone()
}

/// The AWS SDK's HTTP client over `client()`: give it to every SDK client's config.
pub fn sdk_http_client() -> SharedHttpClient {
    static SDK: OnceLock<SharedHttpClient> = OnceLock::new();
    SDK.get_or_init(|| SharedHttpClient::new(SdkOverReqwest)).clone()
}

/// The SDK's `HttpClient`: one connector per timeout setting, all over the shared client.
#[derive(Debug)]
struct SdkOverReqwest;

impl HttpClient for SdkOverReqwest {
    fn http_connector(&self, settings: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(SdkConnector { client: client(), read_timeout: settings.read_timeout() })
    }
}

/// Sends one SDK request through the shared client.
#[derive(Debug)]
struct SdkConnector {
    client: reqwest::Client,
    /// The SDK's read timeout, applied to the whole exchange (bodies are small).
    read_timeout: Option<Duration>,
}

impl HttpConnector for SdkConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let prepared = self.prepare(request);
        HttpConnectorFuture::new(async move {
            let response = prepared?.send().await.map_err(connector_error)?;
            let status =
                StatusCode::try_from(response.status().as_u16()).map_err(|e| ConnectorError::other(e.into(), None))?;
            let headers = response.headers().clone();
            let body = response.bytes().await.map_err(connector_error)?;
            let mut answer = HttpResponse::new(status, SdkBody::from(body));
            // The SDK's headers are strings; AWS sends no other kind (a non-text value is dropped).
            for (name, value) in &headers {
                if let Ok(value) = value.to_str() {
                    answer.headers_mut().append(name.as_str().to_owned(), value.to_owned());
                }
            }
            Ok(answer)
        })
    }
}

impl SdkConnector {
    fn prepare(&self, request: HttpRequest) -> Result<reqwest::RequestBuilder, ConnectorError> {
        let invalid = |e: Box<dyn std::error::Error + Send + Sync>| ConnectorError::user(e);
        let method = reqwest::Method::from_bytes(request.method().as_bytes()).map_err(|e| invalid(e.into()))?;
        let body = request
            .body()
            .bytes()
            .ok_or_else(|| invalid("a streaming request body (no service this client serves sends one)".into()))?
            .to_vec();
        let mut builder = self.client.request(method, request.uri()).body(body);
        for (name, value) in request.headers() {
            builder = builder.header(name, value);
        }
        if let Some(timeout) = self.read_timeout {
            builder = builder.timeout(timeout);
        }
        Ok(builder)
    }
}

/// Timeouts and broken connections are transient for the SDK's retry policy; anything else
/// is reported as it is.
fn connector_error(error: reqwest::Error) -> ConnectorError {
    if error.is_timeout() {
        ConnectorError::timeout(error.into())
    } else if error.is_connect() || error.is_request() || error.is_body() {
        ConnectorError::io(error.into())
    } else {
        ConnectorError::other(error.into(), None)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_roots_are_compiled_in_and_include_amazons() {
        let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        assert!(roots.len() > 100, "{} roots", roots.len());
        // AWS endpoints chain to Amazon Trust Services' roots.
        let amazon = webpki_roots::TLS_SERVER_ROOTS
            .iter()
            .filter(|anchor| String::from_utf8_lossy(anchor.subject.as_ref()).contains("Amazon Root CA"))
            .count();
        assert!(amazon >= 4, "Amazon Root CA 1-4 expected, found {amazon}");
    }
}
