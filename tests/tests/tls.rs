//! Outbound https through the host: the connection goes to the address the policy checked,
//! and TLS verifies the certificate against the host name the plugin asked for.

use seam::runtime::{Runtime, RuntimeOptions};
use seam_tests::{hostile, message_context, reason};
use std::sync::Arc;

/// A TLS server on 127.0.0.1 with a self-signed certificate for `localhost` and
/// `127.0.0.1`, answering every request with `hello over tls`. Returns its port and the
/// certificate to trust.
async fn tls_stand_in() -> (u16, rustls::pki_types::CertificateDer<'static>) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let der = cert.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![der.clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let service = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(http_body_util::Full::new(
                        hyper::body::Bytes::from_static(b"hello over tls"),
                    )))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (port, der)
}

fn runtime_trusting(roots: Vec<rustls::pki_types::CertificateDer<'static>>) -> Runtime {
    let db = sled::Config::new().temporary(true).open().unwrap();
    let options = RuntimeOptions { extra_tls_roots: roots, ..RuntimeOptions::default() };
    Runtime::new(options, db, seam::metrics::Metrics::default()).unwrap()
}

fn caps(hosts: &[String]) -> String {
    let list: Vec<String> = hosts.iter().map(|h| format!("\"{h}\"")).collect();
    format!(
        "[capabilities]\nlog = true\nkv = {{ quota-bytes = 8 }}\nhttp = [{}]\n[limits]\ntimeout-ms = 5000\n",
        list.join(", ")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_goes_to_the_checked_address_with_the_name_verified() {
    let (port, cert) = tls_stand_in().await;
    let rt = runtime_trusting(vec![cert]);
    // By IP: the certificate's IP name matches.
    rt.load(hostile("by-ip", &caps(&[format!("https://127.0.0.1:{port}")])), &Default::default())
        .await
        .unwrap();
    let got = reason(&rt.route("by-ip", &message_context(&format!("http:https://127.0.0.1:{port}/x"))).await);
    assert_eq!(got, "status:200:hello over tls");
    // By name: localhost resolves to loopback, which the manifest names literally, so it is
    // allowed; the TCP connection goes to that address and TLS checks the name `localhost`.
    let hosts = [
        format!("https://localhost:{port}"),
        format!("https://127.0.0.1:{port}"),
        format!("https://[::1]:{port}"),
    ];
    rt.load(hostile("by-name", &caps(&hosts)), &Default::default()).await.unwrap();
    let got =
        reason(&rt.route("by-name", &message_context(&format!("http:https://localhost:{port}/"))).await);
    assert_eq!(got, "status:200:hello over tls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_to_an_untrusted_certificate_fails() {
    let (port, _cert) = tls_stand_in().await;
    let rt = runtime_trusting(Vec::new());
    rt.load(hostile("strict", &caps(&[format!("https://127.0.0.1:{port}")])), &Default::default())
        .await
        .unwrap();
    let got = reason(&rt.route("strict", &message_context(&format!("http:https://127.0.0.1:{port}/"))).await);
    assert!(got.starts_with("error:transport error:"), "self-signed certificate refused: {got}");
}
