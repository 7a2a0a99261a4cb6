//! TLS for members and clients: loading PEM files with errors that name the
//! file and the flag, dialing a member in plaintext or TLS (never falling
//! back from one to the other), and naming the cause of a failed handshake.
//!
//! rustls does the work with the `ring` provider: through tonic's TLS
//! support on the listeners, and through tokio-rustls in a connector of our
//! own when dialing, so that a failed handshake reaches the caller as a
//! typed rustls error (see [`Connector`]) and [`cause`] can name it, where
//! tonic's own top level only says "transport error".
//!
//! The messages name no flag: members (peer flags) and the CLI (client
//! flags) share them.

use std::fmt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::{Certificate, Channel, Endpoint, Identity, ServerTlsConfig};

/// Bad TLS input: each error names the file and the flag it came from.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{flag} {}: cannot read it: {error}", path.display())]
    Read { flag: &'static str, path: PathBuf, error: std::io::Error },
    #[error("{flag} {}: holds no PEM certificate", path.display())]
    NoCertificate { flag: &'static str, path: PathBuf },
    #[error("{flag} {}: holds no PEM private key", path.display())]
    NoKey { flag: &'static str, path: PathBuf },
    #[error("{flag} {}: not valid PEM: {error}", path.display())]
    BadPem { flag: &'static str, path: PathBuf, error: String },
    #[error("{0}")]
    Config(String),
}

/// A PEM file read and checked at startup, so a typo in a path is reported
/// before anything listens or dials.
fn read(flag: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|error| TlsError::Read { flag, path: path.to_path_buf(), error })
}

/// The certificates of a PEM file (at least one).
pub fn read_certs(flag: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    let pem = read(flag, path)?;
    let mut count = 0;
    for cert in CertificateDer::pem_slice_iter(&pem) {
        cert.map_err(|e| TlsError::BadPem { flag, path: path.to_path_buf(), error: e.to_string() })?;
        count += 1;
    }
    if count == 0 {
        return Err(TlsError::NoCertificate { flag, path: path.to_path_buf() });
    }
    Ok(pem)
}

/// A PEM file holding a private key.
pub fn read_key(flag: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    let pem = read(flag, path)?;
    match PrivateKeyDer::from_pem_slice(&pem) {
        Ok(_) => Ok(pem),
        Err(rustls::pki_types::pem::Error::NoItemsFound) => Err(TlsError::NoKey { flag, path: path.to_path_buf() }),
        Err(e) => Err(TlsError::BadPem { flag, path: path.to_path_buf(), error: e.to_string() }),
    }
}

/// The flag names one listener's files come from, for error messages:
/// etcd's client (`--cert-file`) or peer (`--peer-cert-file`) set.
#[derive(Debug, Clone, Copy)]
pub struct ServerFlags {
    pub cert: &'static str,
    pub key: &'static str,
    pub ca: &'static str,
}

pub const CLIENT_FLAGS: ServerFlags = ServerFlags { cert: "--cert-file", key: "--key-file", ca: "--trusted-ca-file" };
pub const PEER_FLAGS: ServerFlags =
    ServerFlags { cert: "--peer-cert-file", key: "--peer-key-file", ca: "--peer-trusted-ca-file" };

/// How long a listener waits for a client to finish its TLS handshake.
pub const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// One listener's TLS files, as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Verifies client certificates; with `client_cert_auth` one is required.
    pub trusted_ca: Option<PathBuf>,
    pub client_cert_auth: bool,
}

/// A listener's TLS, loaded and checked.
#[derive(Clone)]
pub struct ServerTls {
    config: ServerTlsConfig,
    pub client_cert_auth: bool,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls").field("client_cert_auth", &self.client_cert_auth).finish_non_exhaustive()
    }
}

impl ServerTls {
    pub fn load(files: &ServerFiles, flags: ServerFlags) -> Result<Self, TlsError> {
        let cert = read_certs(flags.cert, &files.cert)?;
        let key = read_key(flags.key, &files.key)?;
        // tonic sets no deadline on a handshake, and a client that connects
        // and says nothing would hold its connection forever.
        let mut config = ServerTlsConfig::new().identity(Identity::from_pem(cert, key)).timeout(HANDSHAKE_TIMEOUT);
        match &files.trusted_ca {
            Some(ca) => {
                let ca = read_certs(flags.ca, ca)?;
                // Without client-cert auth a client may still present a
                // certificate, and then it must be one this CA signed.
                config = config.client_ca_root(Certificate::from_pem(ca)).client_auth_optional(!files.client_cert_auth);
            }
            None if files.client_cert_auth => {
                return Err(TlsError::Config(format!(
                    "client certificate auth needs {} to verify the certificates with",
                    flags.ca
                )));
            }
            None => {}
        }
        Ok(ServerTls { config, client_cert_auth: files.client_cert_auth })
    }

    pub fn config(&self) -> ServerTlsConfig {
        self.config.clone()
    }
}

/// What a dialing side trusts and presents: the client's `--cacert`,
/// `--cert`, `--key`, or a member's peer files. `None` inside: plaintext
/// only, and an `https://` address is refused.
#[derive(Clone, Default)]
pub struct ClientTls {
    config: Option<Arc<rustls::ClientConfig>>,
    /// Addresses without a scheme use TLS (the client gave `--cacert`, a
    /// member has peer TLS).
    by_default: bool,
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("configured", &self.config.is_some())
            .field("by_default", &self.by_default)
            .finish()
    }
}

/// The flag names of a dialing side, for error messages.
#[derive(Debug, Clone, Copy)]
pub struct DialFlags {
    pub ca: &'static str,
    pub cert: &'static str,
    pub key: &'static str,
}

pub const CLI_FLAGS: DialFlags = DialFlags { ca: "--cacert", cert: "--cert", key: "--key" };
pub const PEER_DIAL_FLAGS: DialFlags =
    DialFlags { ca: "--peer-trusted-ca-file", cert: "--peer-cert-file", key: "--peer-key-file" };

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl ClientTls {
    /// Loads the files; `cert` and `key` come together or not at all.
    /// `skip_verify` (`--insecure-skip-tls-verify`) encrypts but accepts any
    /// server certificate; only an explicit flag sets it.
    pub fn load(
        ca: Option<&Path>,
        cert_key: Option<(&Path, &Path)>,
        skip_verify: bool,
        flags: DialFlags,
    ) -> Result<Self, TlsError> {
        fn bad(flag: &'static str, path: &Path) -> impl FnOnce(rustls::Error) -> TlsError {
            let path = path.to_path_buf();
            move |e| TlsError::BadPem { flag, path, error: e.to_string() }
        }
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let builder = if skip_verify {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(NoVerify(provider())))
        } else if let Some(ca) = ca {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&read_certs(flags.ca, ca)?) {
                let cert = cert.map_err(|e| TlsError::BadPem {
                    flag: flags.ca,
                    path: ca.to_path_buf(),
                    error: e.to_string(),
                })?;
                roots.add(cert).map_err(bad(flags.ca, ca))?;
            }
            builder.with_root_certificates(roots)
        } else if let Some((cert, key)) = cert_key {
            // A certificate alone asks for TLS but gives no way to verify
            // the server: every address is then refused with that reason,
            // rather than dialed in plaintext with the certificate unused.
            read_certs(flags.cert, cert)?;
            read_key(flags.key, key)?;
            return Ok(ClientTls { config: None, by_default: true });
        } else {
            return Ok(ClientTls::none());
        };
        let mut config = match cert_key {
            Some((cert, key)) => {
                let chain: Vec<CertificateDer<'static>> =
                    CertificateDer::pem_slice_iter(&read_certs(flags.cert, cert)?).collect::<Result<_, _>>().map_err(
                        |e| TlsError::BadPem { flag: flags.cert, path: cert.to_path_buf(), error: e.to_string() },
                    )?;
                let private = PrivateKeyDer::from_pem_slice(&read_key(flags.key, key)?)
                    .map_err(|e| TlsError::BadPem { flag: flags.key, path: key.to_path_buf(), error: e.to_string() })?;
                builder.with_client_auth_cert(chain, private).map_err(bad(flags.key, key))?
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(ClientTls { config: Some(Arc::new(config)), by_default: true })
    }

    /// Plaintext for every address without `https://`.
    pub fn none() -> Self {
        ClientTls::default()
    }

    /// The endpoint for `addr` (`HOST:PORT`, `http://HOST:PORT` or
    /// `https://HOST:PORT`). Fails, rather than dialing in plaintext, for an
    /// `https://` address with nothing to verify the server against.
    pub fn endpoint(&self, addr: &str) -> Result<Dial, String> {
        let (tls, hostport) = if let Some(rest) = addr.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = addr.strip_prefix("http://") {
            (false, rest)
        } else {
            (self.by_default, addr)
        };
        // tonic sees plain HTTP/2 either way: the connector below does TLS,
        // so that it, not the HTTP/2 layer, reports a handshake's failure.
        let endpoint = Endpoint::from_shared(format!("http://{hostport}"))
            .map_err(|e| format!("invalid address `{addr}`: {e}"))?;
        let tls = match (tls, &self.config) {
            (false, _) => None,
            (true, Some(config)) => {
                let host = hostport.rsplit_once(':').map_or(hostport, |(h, _)| h);
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let name = rustls::pki_types::ServerName::try_from(host.to_string())
                    .map_err(|e| format!("`{host}` cannot be checked against a certificate: {e}"))?;
                Some((config.clone(), name))
            }
            (true, None) => {
                return Err("TLS without trust roots to verify the member's certificate: pass --cacert FILE (or \
                            set TRAFTCTL_CACERT), or --insecure-skip-tls-verify"
                    .to_string());
            }
        };
        Ok(Dial { endpoint, connector: Connector { tls: tls.map(Arc::new) } })
    }
}

/// An endpoint ready to dial, over a connector of our own.
pub struct Dial {
    pub endpoint: Endpoint,
    connector: Connector,
}

impl Dial {
    pub fn map(self, f: impl FnOnce(Endpoint) -> Endpoint) -> Self {
        Dial { endpoint: f(self.endpoint), connector: self.connector }
    }

    pub async fn connect(&self) -> Result<Channel, tonic::transport::Error> {
        self.endpoint.connect_with_connector(self.connector.clone()).await
    }

    pub fn connect_lazy(&self) -> Channel {
        self.endpoint.connect_with_connector_lazy(self.connector.clone())
    }
}

/// TCP with Nagle off, then TLS if asked, then the server's first bytes.
///
/// An HTTP/2 server sends its SETTINGS frame at once, so waiting for the
/// first bytes costs nothing and settles two things while the error can
/// still be told apart (past this point HTTP/2 turns it into a string or
/// "connection closed"): with TLS 1.3 the server checks our certificate
/// after our side of the handshake is done, and its refusal is an alert in
/// place of those bytes; and in plaintext, a TLS server answers our
/// HTTP/2 preface with an alert record. A TLS server says nothing until it
/// hears something, so in plaintext the connector sends the preface itself
/// (and swallows hyper's copy). HTTP/2's first frame is SETTINGS, whose
/// 24-bit length starts with a zero byte at any legal frame size; a TLS
/// record starts with 0x15 (alert) or 0x16 (handshake), so they cannot be
/// mistaken.
#[derive(Clone)]
struct Connector {
    tls: Option<Arc<(Arc<rustls::ClientConfig>, rustls::pki_types::ServerName<'static>)>>,
}

impl tonic::codegen::Service<tonic::codegen::http::Uri> for Connector {
    type Response = hyper_util::rt::TokioIo<Conn>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: tonic::codegen::http::Uri) -> Self::Future {
        let tls = self.tls.clone();
        Box::pin(async move {
            use tokio::io::AsyncReadExt;
            let authority = uri.authority().map(|a| a.as_str().to_string()).unwrap_or_default();
            let tcp = tokio::net::TcpStream::connect(authority.as_str()).await?;
            tcp.set_nodelay(true)?;
            let mut io = match tls.as_deref() {
                Some((config, name)) => {
                    let connector = tokio_rustls::TlsConnector::from(config.clone());
                    Io::Tls(Box::new(connector.connect(name.clone(), tcp).await?))
                }
                None => {
                    use tokio::io::AsyncWriteExt;
                    let mut tcp = tcp;
                    tcp.write_all(PREFACE).await?;
                    Io::Plain(tcp)
                }
            };
            let unsent_preface = if tls.is_none() { PREFACE.len() } else { 0 };
            let mut first = vec![0u8; 64];
            let n = io.read(&mut first).await?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the server closed the connection before it said anything",
                ));
            }
            if tls.is_none() && matches!(first[0], 0x15 | 0x16) {
                return Err(std::io::Error::other(ServerSpeaksTls));
            }
            first.truncate(n);
            Ok(hyper_util::rt::TokioIo::new(Conn { io, first, pos: 0, swallow: unsent_preface }))
        })
    }
}

/// A plaintext answer to a TLS handshake or the other way round.
#[derive(Debug)]
pub struct ServerSpeaksTls;

impl fmt::Display for ServerSpeaksTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the server speaks TLS and this side connected in plaintext")
    }
}

impl std::error::Error for ServerSpeaksTls {}

enum Io {
    Plain(tokio::net::TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>),
}

impl AsyncRead for Io {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

/// The client's HTTP/2 connection preface (RFC 9113, 3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A dialed connection: the server's first bytes, replayed, then the stream.
pub struct Conn {
    io: Io,
    first: Vec<u8>,
    pos: usize,
    /// Bytes of hyper's preface still to drop: the connector sent it.
    swallow: usize,
}

impl AsyncRead for Conn {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.pos < this.first.len() {
            let n = buf.remaining().min(this.first.len() - this.pos);
            buf.put_slice(&this.first[this.pos..this.pos + n]);
            this.pos += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if this.swallow > 0 {
            let done = PREFACE.len() - this.swallow;
            let n = this.swallow.min(buf.len());
            if buf[..n] != PREFACE[done..done + n] {
                return Poll::Ready(Err(std::io::Error::other("HTTP/2 did not start with its preface")));
            }
            this.swallow -= n;
            return Poll::Ready(Ok(n));
        }
        match &mut this.io {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Accepts any server certificate (the signatures of the handshake are
/// still checked, so the session key is the server's).
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Why a connection or call failed, in words: the TLS reason when it was
/// TLS (see [`tls_cause`]), else the deepest error in the source chain.
pub fn cause(error: &(dyn std::error::Error + 'static)) -> String {
    tls_cause(error).unwrap_or_else(|| {
        let mut deepest = error;
        while let Some(next) = deepest.source() {
            deepest = next;
        }
        deepest.to_string()
    })
}

/// The TLS reason a connection or call failed, if it was TLS that failed:
/// a rustls error or the connector's plaintext check, anywhere in the
/// source chain (an `io::Error` hides its payload from `source()`, so each
/// one is opened).
pub fn tls_cause(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            return Some(describe(r));
        }
        if e.downcast_ref::<ServerSpeaksTls>().is_some() {
            return Some(ServerSpeaksTls.to_string());
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if let Some(inner) = io.get_ref() {
                if let Some(r) = inner.downcast_ref::<rustls::Error>() {
                    return Some(describe(r));
                }
                if inner.downcast_ref::<ServerSpeaksTls>().is_some() {
                    return Some(ServerSpeaksTls.to_string());
                }
            }
            // tokio-rustls reports a server that hangs up during the
            // handshake as an EOF: a plaintext HTTP/2 server does, on bytes
            // that are not its preface.
            if io.kind() == std::io::ErrorKind::UnexpectedEof && io.to_string().contains("handshake") {
                return Some("the server does not speak TLS: it closed the connection during the TLS handshake".into());
            }
        }
        current = e.source();
    }
    None
}

fn describe(error: &rustls::Error) -> String {
    use rustls::{AlertDescription as A, CertificateError as C, Error as E};
    match error {
        E::InvalidCertificate(c) => match c {
            C::UnknownIssuer => "the server's certificate is signed by an unknown CA".into(),
            C::Expired | C::ExpiredContext { .. } => "the server's certificate expired".into(),
            C::NotValidYet | C::NotValidYetContext { .. } => "the server's certificate is not valid yet".into(),
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                format!("the server's certificate does not name the address dialed ({c})")
            }
            other => format!("the server's certificate is invalid: {other}"),
        },
        E::AlertReceived(alert) => match alert {
            A::CertificateRequired => "the server requires a client certificate (pass --cert and --key)".into(),
            A::UnknownCA => "the server refused our certificate: it is signed by a CA the server does not trust".into(),
            A::CertificateExpired => "the server refused our certificate: it expired".into(),
            A::BadCertificate | A::UnsupportedCertificate | A::CertificateUnknown => {
                format!("the server refused our certificate ({alert:?})")
            }
            other => format!("the server refused the TLS handshake ({other:?})"),
        },
        E::InvalidMessage(_) | E::InappropriateMessage { .. } | E::InappropriateHandshakeMessage { .. } => {
            "the server does not speak TLS".into()
        }
        other => format!("TLS failed: {other}"),
    }
}

/// Throwaway certificates made with rcgen: `local-cluster --tls` and the
/// tests. Not for production: the CA key lives only in memory.
pub struct ThrowawayCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pub cert_pem: String,
}

/// A certificate and its private key, PEM encoded.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

impl ThrowawayCa {
    pub fn new(name: &str) -> Result<Self, rcgen::Error> {
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key)?;
        Ok(ThrowawayCa { issuer: rcgen::Issuer::new(params, key), cert_pem: cert.pem() })
    }

    /// A certificate for `names` (IP addresses or DNS names), usable by a
    /// server and a client alike; `expired` dates it in the past.
    pub fn issue(&self, common_name: &str, names: &[&str], expired: bool) -> Result<Issued, rcgen::Error> {
        let key = rcgen::KeyPair::generate()?;
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(names)?;
        params.distinguished_name.push(rcgen::DnType::CommonName, common_name);
        params.extended_key_usages =
            vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth, rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        if expired {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
    }
}
