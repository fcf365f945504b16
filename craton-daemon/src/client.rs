//! Connecting to the daemon: mutual TLS with this client's certificate, trusting only the
//! configured CA, ALPN `h2`, and a deadline on every call so a dead daemon yields an error,
//! never a hang.

use crate::pb::hsm_client::HsmClient;
use craton_store::config::ClientConfig;
use std::time::Duration;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// Why a connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The endpoint or TLS settings were refused, or the daemon could not be reached.
    #[error("{0}")]
    Transport(String),
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path).map_err(|source| ClientError::Read {
        path: path.to_owned(),
        source,
    })
}

/// The endpoint for `cfg`, not yet connected.
pub fn endpoint(cfg: &ClientConfig) -> Result<Endpoint, ClientError> {
    let ca = read(&cfg.ca)?;
    let cert = read(&cfg.cert)?;
    let key = zeroize::Zeroizing::new(read(&cfg.key)?);
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .identity(Identity::from_pem(cert, key.as_slice()));
    let timeout = Duration::from_secs(cfg.timeout_secs.max(1));
    Endpoint::from_shared(cfg.endpoint.clone())
        .map_err(|e| ClientError::Transport(format!("endpoint {}: {e}", cfg.endpoint)))?
        .tls_config(tls)
        .map_err(|e| ClientError::Transport(format!("TLS settings: {e}")))
        .map(|e| {
            e.connect_timeout(timeout)
                .timeout(timeout)
                .tcp_nodelay(true)
                .http2_keep_alive_interval(Duration::from_secs(30))
                .keep_alive_while_idle(true)
        })
}

/// Connects now.
pub async fn connect(cfg: &ClientConfig) -> Result<HsmClient<Channel>, ClientError> {
    let channel = endpoint(cfg)?
        .connect()
        .await
        .map_err(|e| ClientError::Transport(format!("cannot reach {}: {e:?}", cfg.endpoint)))?;
    Ok(HsmClient::new(channel)
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20))
}

use crate::convert;
use crate::pb;
use craton_core::attribute::{AttrValue, AttributeError, AttributeType as A};
use craton_core::ops::Mechanism;
use craton_store::engine::AttributeResults;
use craton_store::{HsmError, ObjectHandle, PinStatus, SessionHandle, TokenInfo, UserType};

/// The token behind a daemon, as an [`craton_store::Engine`]: each call is one RPC, run to
/// completion on a runtime of its own, so synchronous callers (the CLI) use it like a local
/// engine. Failures come back as the engine's errors (see `craton_store::ck::to_hsm`).
#[derive(Debug)]
pub struct RemoteHsm {
    runtime: tokio::runtime::Runtime,
    client: HsmClient<Channel>,
}

fn remote_error(s: tonic::Status) -> HsmError {
    craton_store::ck::to_hsm(crate::status::rv_of(&s), s.message())
}

fn from_ck(e: crate::status::CkError) -> HsmError {
    craton_store::ck::to_hsm(e.rv(), "")
}

fn pad<const N: usize>(text: &str) -> [u8; N] {
    let mut out = [b' '; N];
    let n = text.len().min(N);
    out[..n].copy_from_slice(&text.as_bytes()[..n]);
    out
}

impl RemoteHsm {
    /// Connects to the daemon `cfg` names.
    pub fn connect(cfg: &ClientConfig) -> Result<RemoteHsm, ClientError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ClientError::Transport(format!("cannot start a runtime: {e}")))?;
        let client = runtime.block_on(connect(cfg))?;
        Ok(RemoteHsm { runtime, client })
    }

    fn call<T, F, Fut>(&self, f: F) -> craton_store::Result<T>
    where
        F: FnOnce(HsmClient<Channel>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.runtime
            .block_on(f(self.client.clone()))
            .map(tonic::Response::into_inner)
            .map_err(remote_error)
    }

    /// The daemon's status.
    pub fn status(&self) -> craton_store::Result<pb::StatusReply> {
        self.call(|mut c| async move { c.get_status(pb::StatusRequest {}).await })
    }
}

impl craton_store::Engine for RemoteHsm {
    fn slot_ids(&self) -> craton_store::Result<Vec<u64>> {
        Ok(self
            .call(|mut c| async move { c.list_slots(pb::Empty {}).await })?
            .slots)
    }

    fn token_info(&self, slot: u64) -> craton_store::Result<TokenInfo> {
        let t =
            self.call(|mut c| async move { c.get_token_info(pb::SlotRequest { slot }).await })?;
        let pin = |failures: u32, locked: bool| PinStatus {
            failures,
            count_low: failures > 0,
            final_try: false,
            locked,
        };
        Ok(TokenInfo {
            label: pad(&t.label),
            serial: pad(&t.serial),
            initialized: t.initialized,
            user_pin_initialized: t.user_pin_initialized,
            user_pin: pin(t.user_pin_failures, t.user_pin_locked),
            so_pin: pin(t.so_pin_failures, t.so_pin_locked),
            sessions: 0,
            rw_sessions: 0,
            min_pin_len: t.min_pin_len as usize,
            max_pin_len: t.max_pin_len as usize,
        })
    }

    fn max_failed_logins(&self) -> craton_store::Result<u32> {
        Ok(self
            .call(|mut c| async move { c.get_token_info(pb::SlotRequest { slot: 0 }).await })?
            .max_failed_logins)
    }

    fn init_token(&self, slot: u64, so_pin: &[u8], label: &str) -> craton_store::Result<()> {
        let req = pb::InitTokenRequest {
            slot,
            so_pin: so_pin.to_vec(),
            label: label.to_owned(),
        };
        self.call(|mut c| async move { c.init_token(req).await })
            .map(drop)
    }

    fn open_session(&self, slot: u64, read_write: bool) -> craton_store::Result<SessionHandle> {
        let req = pb::OpenSessionRequest { slot, read_write };
        Ok(SessionHandle(
            self.call(|mut c| async move { c.open_session(req).await })?
                .session,
        ))
    }

    fn close_session(&self, h: SessionHandle) -> craton_store::Result<()> {
        let req = pb::SessionRequest { session: h.0 };
        self.call(|mut c| async move { c.close_session(req).await })
            .map(drop)
    }

    fn login(&self, h: SessionHandle, user: UserType, pin: &[u8]) -> craton_store::Result<()> {
        let user_type = match user {
            UserType::So => cryptoki_sys::CKU_SO,
            UserType::User => cryptoki_sys::CKU_USER,
            UserType::ContextSpecific => cryptoki_sys::CKU_CONTEXT_SPECIFIC,
        };
        let req = pb::LoginRequest {
            session: h.0,
            user_type,
            pin: pin.to_vec(),
        };
        self.call(|mut c| async move { c.login(req).await })
            .map(drop)
    }

    fn init_pin(&self, h: SessionHandle, pin: &[u8]) -> craton_store::Result<()> {
        let req = pb::InitPinRequest {
            session: h.0,
            pin: pin.to_vec(),
        };
        self.call(|mut c| async move { c.init_pin(req).await })
            .map(drop)
    }

    fn set_pin(&self, h: SessionHandle, old: &[u8], new: &[u8]) -> craton_store::Result<()> {
        let req = pb::SetPinRequest {
            session: h.0,
            old_pin: old.to_vec(),
            new_pin: new.to_vec(),
        };
        self.call(|mut c| async move { c.set_pin(req).await })
            .map(drop)
    }

    fn create_object(
        &self,
        h: SessionHandle,
        template: &craton_store::Template,
    ) -> craton_store::Result<ObjectHandle> {
        let req = pb::TemplateRequest {
            session: h.0,
            template: convert::template_to_pb(template),
        };
        Ok(ObjectHandle(
            self.call(|mut c| async move { c.create_object(req).await })?
                .object,
        ))
    }

    fn generate_key(
        &self,
        h: SessionHandle,
        mechanism: &Mechanism,
        template: &craton_store::Template,
    ) -> craton_store::Result<ObjectHandle> {
        let req = pb::GenerateKeyRequest {
            session: h.0,
            mechanism: Some(convert::mechanism_to_pb(mechanism)),
            template: convert::template_to_pb(template),
        };
        Ok(ObjectHandle(
            self.call(|mut c| async move { c.generate_key(req).await })?
                .object,
        ))
    }

    fn generate_key_pair(
        &self,
        h: SessionHandle,
        mechanism: &Mechanism,
        public_template: &craton_store::Template,
        private_template: &craton_store::Template,
    ) -> craton_store::Result<(ObjectHandle, ObjectHandle)> {
        let req = pb::GenerateKeyPairRequest {
            session: h.0,
            mechanism: Some(convert::mechanism_to_pb(mechanism)),
            public_template: convert::template_to_pb(public_template),
            private_template: convert::template_to_pb(private_template),
        };
        let r = self.call(|mut c| async move { c.generate_key_pair(req).await })?;
        Ok((ObjectHandle(r.public_key), ObjectHandle(r.private_key)))
    }

    fn destroy_object(&self, h: SessionHandle, object: ObjectHandle) -> craton_store::Result<()> {
        let req = pb::ObjectRequest {
            session: h.0,
            object: object.0,
        };
        self.call(|mut c| async move { c.destroy_object(req).await })
            .map(drop)
    }

    fn attribute_values(
        &self,
        h: SessionHandle,
        object: ObjectHandle,
        wanted: &[A],
    ) -> craton_store::Result<AttributeResults> {
        use pb::attribute_result::Result as R;
        let req = pb::GetAttributeRequest {
            session: h.0,
            object: object.0,
            types: wanted.iter().map(|a| a.0).collect(),
        };
        let values = self
            .call(|mut c| async move { c.get_attribute_value(req).await })?
            .values;
        if values.len() != wanted.len() {
            return Err(HsmError::Remote {
                rv: cryptoki_sys::CKR_DEVICE_ERROR,
                detail: "the daemon answered a different number of attributes".into(),
            });
        }
        wanted
            .iter()
            .zip(values)
            .map(|(a, v)| match v.result {
                Some(R::Attribute(attr)) => convert::attribute(&attr)
                    .map(|(_, v)| Ok(v))
                    .map_err(from_ck),
                Some(R::Error(cryptoki_sys::CKR_ATTRIBUTE_SENSITIVE)) => {
                    Ok(Err(AttributeError::Sensitive(*a)))
                }
                Some(R::Error(_)) | None => Ok(Err(AttributeError::TypeInvalid(*a))),
            })
            .collect::<craton_store::Result<Vec<std::result::Result<AttrValue, _>>>>()
    }

    fn find_all(
        &self,
        h: SessionHandle,
        template: &craton_store::Template,
    ) -> craton_store::Result<Vec<ObjectHandle>> {
        let req = pb::FindRequest {
            session: h.0,
            template: convert::template_to_pb(template),
            max: 0,
        };
        Ok(self
            .call(|mut c| async move { c.find_objects(req).await })?
            .objects
            .into_iter()
            .map(ObjectHandle)
            .collect())
    }

    fn public_key_info(
        &self,
        h: SessionHandle,
        object: ObjectHandle,
    ) -> craton_store::Result<Vec<u8>> {
        let req = pb::ObjectRequest {
            session: h.0,
            object: object.0,
        };
        Ok(self
            .call(|mut c| async move { c.get_public_key_info(req).await })?
            .data)
    }
}
