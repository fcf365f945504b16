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

use crate::convert::{self, mechanism_to_pb, template_to_pb};
use crate::pb;
use craton_core::Direction;
use craton_core::attribute::{AttrValue, AttributeError, AttributeType as A};
use craton_core::mechanism::Registry;
use craton_core::ops::Mechanism;
use craton_store::engine::AttributeResults;
use craton_store::{
    HsmError, MessageKind, MessageOutput, ObjectHandle, OperationKind, PinStatus, Result,
    SessionHandle, SessionInfo, SessionState, Template, TokenInfo, UserType,
};
use std::collections::HashMap;
use std::sync::Mutex;
use zeroize::Zeroizing;

/// The token behind a daemon, as an [`craton_store::Engine`]: each call is one RPC, run to
/// completion before it returns, so synchronous callers (the PKCS#11 module's remote mode,
/// the CLI) use it like a local engine. Failures come back as the engine's errors (see
/// `craton_store::ck::to_hsm`); a daemon that cannot be reached or does not answer within
/// the configured timeout is `CKR_DEVICE_REMOVED`, never a hang.
#[derive(Debug)]
pub struct RemoteHsm {
    runtime: tokio::runtime::Runtime,
    client: HsmClient<Channel>,
    registry: Registry,
    /// The signature length of each session's running signing operation, as `SignInit`
    /// answered it: the two-call convention's length query then needs no round trip.
    signature_lengths: Mutex<HashMap<u64, usize>>,
}

fn remote_error(s: tonic::Status) -> HsmError {
    craton_store::ck::to_hsm(crate::status::rv_of(&s), s.message())
}

fn from_ck(e: crate::status::CkError) -> HsmError {
    craton_store::ck::to_hsm(e.rv(), "")
}

fn malformed(what: &str) -> HsmError {
    HsmError::Remote {
        rv: cryptoki_sys::CKR_DEVICE_ERROR,
        detail: format!("the daemon sent {what}"),
    }
}

fn pad<const N: usize>(text: &str) -> [u8; N] {
    let mut out = [b' '; N];
    let n = text.len().min(N);
    out[..n].copy_from_slice(&text.as_bytes()[..n]);
    out
}

fn length(n: u64) -> Result<usize> {
    usize::try_from(n).map_err(|_| malformed("a length beyond this platform's"))
}

fn message_kind(k: MessageKind) -> i32 {
    (match k {
        MessageKind::Encrypt => pb::MessageKind::Encrypt,
        MessageKind::Decrypt => pb::MessageKind::Decrypt,
        MessageKind::Sign => pb::MessageKind::Sign,
        MessageKind::Verify => pb::MessageKind::Verify,
    }) as i32
}

fn operation_kind(k: OperationKind) -> i32 {
    use pb::OperationKind as P;
    (match k {
        OperationKind::Sign => P::Sign,
        OperationKind::Verify => P::Verify,
        OperationKind::Encrypt => P::Encrypt,
        OperationKind::Decrypt => P::Decrypt,
        OperationKind::Digest => P::Digest,
        OperationKind::Find => P::Find,
        OperationKind::Message(MessageKind::Encrypt) => P::MessageEncrypt,
        OperationKind::Message(MessageKind::Decrypt) => P::MessageDecrypt,
        OperationKind::Message(MessageKind::Sign) => P::MessageSign,
        OperationKind::Message(MessageKind::Verify) => P::MessageVerify,
    }) as i32
}

fn session_state(n: u64) -> Result<SessionState> {
    use cryptoki_sys::*;
    Ok(match n {
        CKS_RO_PUBLIC_SESSION => SessionState::RoPublic,
        CKS_RW_PUBLIC_SESSION => SessionState::RwPublic,
        CKS_RO_USER_FUNCTIONS => SessionState::RoUser,
        CKS_RW_USER_FUNCTIONS => SessionState::RwUser,
        CKS_RW_SO_FUNCTIONS => SessionState::RwSo,
        _ => return Err(malformed("an unknown session state")),
    })
}

/// One RPC, run to completion: `rpc!(self, method, request)`.
macro_rules! rpc {
    ($self:ident, $method:ident, $req:expr) => {{
        let req = $req;
        $self.call(|mut c| async move { c.$method(req).await })
    }};
}

fn data(session: SessionHandle, data: &[u8]) -> pb::DataRequest {
    pb::DataRequest {
        session: session.0,
        data: data.to_vec(),
    }
}

fn session(h: SessionHandle) -> pb::SessionRequest {
    pb::SessionRequest { session: h.0 }
}

fn operation(h: SessionHandle, m: &Mechanism, key: ObjectHandle) -> pb::OperationInit {
    pb::OperationInit {
        session: h.0,
        mechanism: Some(mechanism_to_pb(m)),
        key: key.0,
    }
}

fn wrap_request(
    h: SessionHandle,
    m: &Mechanism,
    wrapping: ObjectHandle,
    target: ObjectHandle,
) -> pb::WrapKeyRequest {
    pb::WrapKeyRequest {
        session: h.0,
        mechanism: Some(mechanism_to_pb(m)),
        wrapping_key: wrapping.0,
        key: target.0,
    }
}

impl RemoteHsm {
    /// Connects to the daemon `cfg` names, with a runtime of one thread (the caller's).
    pub fn connect(cfg: &ClientConfig) -> std::result::Result<RemoteHsm, ClientError> {
        RemoteHsm::connect_with(cfg, false)
    }

    /// Connects to the daemon `cfg` names. With `threads`, two runtime threads drive the
    /// connection, so many calling threads share it without taking turns at it; without, the
    /// calling threads drive it themselves (for hosts that forbid a library its own threads).
    pub fn connect_with(
        cfg: &ClientConfig,
        threads: bool,
    ) -> std::result::Result<RemoteHsm, ClientError> {
        let mut builder = if threads {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(2).thread_name("craton-hsm-client");
            b
        } else {
            tokio::runtime::Builder::new_current_thread()
        };
        let runtime = builder
            .enable_all()
            .build()
            .map_err(|e| ClientError::Transport(format!("cannot start a runtime: {e}")))?;
        let client = runtime.block_on(connect(cfg))?;
        let mut remote = RemoteHsm {
            runtime,
            client,
            registry: Registry::new(craton_core::Policy::default()),
            signature_lengths: Mutex::new(HashMap::new()),
        };
        let status = remote
            .status()
            .map_err(|e| ClientError::Transport(format!("{}: {e}", cfg.endpoint)))?;
        let p = status.policy.unwrap_or_default();
        remote.registry = Registry::new(craton_core::Policy {
            allow_weak_rsa: p.allow_weak_rsa,
            allow_sha1_signatures: p.allow_sha1_signatures,
            fips_only: p.fips_only,
        });
        Ok(remote)
    }

    fn call<T, F, Fut>(&self, f: F) -> Result<T>
    where
        F: FnOnce(HsmClient<Channel>) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    {
        self.runtime
            .block_on(f(self.client.clone()))
            .map(tonic::Response::into_inner)
            .map_err(remote_error)
    }

    /// The daemon's status.
    pub fn status(&self) -> Result<pb::StatusReply> {
        rpc!(self, get_status, pb::StatusRequest {})
    }

    /// The hex public key that verifies the daemon's audit seals.
    pub fn audit_public_key(&self) -> Result<String> {
        Ok(rpc!(self, audit_public_key, pb::Empty {})?.public_key)
    }

    /// The last `lines` entries of the daemon's audit log (needs an SO session).
    pub fn audit_tail(&self, so: SessionHandle, lines: u32) -> Result<Vec<String>> {
        let req = pb::AuditTailRequest {
            session: so.0,
            lines,
        };
        Ok(rpc!(self, audit_tail, req)?.lines)
    }

    /// Has the daemon seal and verify its audit log (needs an SO session).
    pub fn audit_verify(&self, so: SessionHandle) -> Result<pb::AuditVerifyReply> {
        rpc!(self, audit_verify, session(so))
    }

    /// Rotates the daemon's audit log (needs an SO session); returns where the old file went.
    pub fn audit_rotate(&self, so: SessionHandle) -> Result<String> {
        Ok(rpc!(self, audit_rotate, session(so))?.rotated_to)
    }

    /// An encrypted backup of the tokens of `so_sessions` (one SO session per token).
    pub fn backup(
        &self,
        so_sessions: &[SessionHandle],
        secret: &craton_store::backup::BackupSecret<'_>,
    ) -> Result<Zeroizing<Vec<u8>>> {
        use craton_store::backup::BackupSecret as S;
        use pb::backup_request::Secret;
        let req = pb::BackupRequest {
            sessions: so_sessions.iter().map(|s| s.0).collect(),
            secret: Some(match secret {
                S::Passphrase(p) => Secret::Passphrase(p.to_vec()),
                S::Key(k) => Secret::Key(k.to_vec()),
            }),
        };
        let mut stream = rpc!(self, backup_create, req)?;
        self.runtime.block_on(async move {
            let mut out = Zeroizing::new(Vec::new());
            while let Some(chunk) = stream.message().await.map_err(remote_error)? {
                out.extend_from_slice(&chunk.data);
            }
            Ok(out)
        })
    }

    /// What GetOutputLength answers (none: nothing pending, for MESSAGE_PENDING only).
    fn output_length(&self, req: pb::OutputLengthRequest) -> Result<Option<usize>> {
        rpc!(self, get_output_length, req)?
            .length
            .map(length)
            .transpose()
    }

    /// A length the running operation must be able to give.
    fn required_length(
        &self,
        h: SessionHandle,
        kind: pb::OutputKind,
        direction: Direction,
        input_length: usize,
    ) -> Result<usize> {
        self.output_length(pb::OutputLengthRequest {
            session: h.0,
            kind: kind as i32,
            decrypt: direction == Direction::Decrypt,
            input_length: input_length as u64,
            message_kind: 0,
        })?
        .ok_or_else(|| malformed("no length"))
    }

    /// Records the signature length `SignInit` answered (0: not known).
    fn signing(&self, h: SessionHandle, reply: &pb::SignInitReply) {
        if let Ok(mut lengths) = self.signature_lengths.lock() {
            match usize::try_from(reply.signature_length) {
                Ok(n) if n > 0 => lengths.insert(h.0, n),
                _ => lengths.remove(&h.0),
            };
        }
    }

    /// The session's signing operation has ended (or may have: any call that returns a
    /// signature ends it, and so does a failure).
    fn signed(&self, h: SessionHandle) {
        if let Ok(mut lengths) = self.signature_lengths.lock() {
            lengths.remove(&h.0);
        }
    }
}

impl craton_store::Engine for RemoteHsm {
    fn registry(&self) -> &Registry {
        &self.registry
    }

    fn slot_ids(&self) -> Result<Vec<u64>> {
        Ok(rpc!(self, list_slots, pb::Empty {})?.slots)
    }

    fn max_failed_logins(&self) -> Result<u32> {
        Ok(rpc!(self, get_token_info, pb::SlotRequest { slot: 0 })?.max_failed_logins)
    }

    fn find_all(&self, h: SessionHandle, template: &Template) -> Result<Vec<ObjectHandle>> {
        let req = pb::FindRequest {
            session: h.0,
            template: template_to_pb(template),
            max: 0,
        };
        Ok(rpc!(self, find_objects, req)?
            .objects
            .into_iter()
            .map(ObjectHandle)
            .collect())
    }

    fn token_info(&self, slot: u64) -> Result<TokenInfo> {
        let t = rpc!(self, get_token_info, pb::SlotRequest { slot })?;
        Ok(TokenInfo {
            label: pad(&t.label),
            serial: pad(&t.serial),
            initialized: t.initialized,
            user_pin_initialized: t.user_pin_initialized,
            user_pin: PinStatus {
                failures: t.user_pin_failures,
                count_low: t.user_pin_count_low,
                final_try: t.user_pin_final_try,
                locked: t.user_pin_locked,
            },
            so_pin: PinStatus {
                failures: t.so_pin_failures,
                count_low: t.so_pin_count_low,
                final_try: t.so_pin_final_try,
                locked: t.so_pin_locked,
            },
            sessions: t.sessions,
            rw_sessions: t.rw_sessions,
            min_pin_len: length(t.min_pin_len)?,
            max_pin_len: length(t.max_pin_len)?,
        })
    }

    fn init_token(&self, slot: u64, so_pin: &[u8], label: &str) -> Result<()> {
        let req = pb::InitTokenRequest {
            slot,
            so_pin: so_pin.to_vec(),
            label: label.to_owned(),
        };
        rpc!(self, init_token, req).map(drop)
    }

    fn open_session(&self, slot: u64, read_write: bool) -> Result<SessionHandle> {
        let req = pb::OpenSessionRequest { slot, read_write };
        Ok(SessionHandle(rpc!(self, open_session, req)?.session))
    }

    fn close_session(&self, h: SessionHandle) -> Result<()> {
        self.signed(h);
        rpc!(self, close_session, session(h)).map(drop)
    }

    fn close_all_sessions(&self, slot: u64) -> Result<()> {
        if let Ok(mut lengths) = self.signature_lengths.lock() {
            lengths.clear();
        }
        rpc!(self, close_all_sessions, pb::SlotRequest { slot }).map(drop)
    }

    fn session_info(&self, h: SessionHandle) -> Result<SessionInfo> {
        let i = rpc!(self, get_session_info, session(h))?;
        Ok(SessionInfo {
            slot: i.slot,
            state: session_state(i.state)?,
            read_write: i.read_write,
        })
    }

    fn login(&self, h: SessionHandle, user: UserType, pin: &[u8]) -> Result<()> {
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
        rpc!(self, login, req).map(drop)
    }

    fn logout(&self, h: SessionHandle) -> Result<()> {
        rpc!(self, logout, session(h)).map(drop)
    }

    fn init_pin(&self, h: SessionHandle, pin: &[u8]) -> Result<()> {
        let req = pb::InitPinRequest {
            session: h.0,
            pin: pin.to_vec(),
        };
        rpc!(self, init_pin, req).map(drop)
    }

    fn set_pin(&self, h: SessionHandle, old: &[u8], new: &[u8]) -> Result<()> {
        let req = pb::SetPinRequest {
            session: h.0,
            old_pin: old.to_vec(),
            new_pin: new.to_vec(),
        };
        rpc!(self, set_pin, req).map(drop)
    }

    fn generate_random(&self, h: SessionHandle, out: &mut [u8]) -> Result<()> {
        let length = u32::try_from(out.len()).map_err(|_| HsmError::Remote {
            rv: cryptoki_sys::CKR_ARGUMENTS_BAD,
            detail: "more random bytes than one call may ask for".into(),
        })?;
        let reply = rpc!(
            self,
            generate_random,
            pb::RandomRequest {
                session: h.0,
                length
            }
        )?;
        if reply.data.len() != out.len() {
            return Err(malformed("a different number of random bytes"));
        }
        out.copy_from_slice(&reply.data);
        Ok(())
    }

    fn seed_random(&self, h: SessionHandle, seed: &[u8]) -> Result<()> {
        rpc!(self, seed_random, data(h, seed)).map(drop)
    }

    fn create_object(&self, h: SessionHandle, template: &Template) -> Result<ObjectHandle> {
        let req = pb::TemplateRequest {
            session: h.0,
            template: template_to_pb(template),
        };
        Ok(ObjectHandle(rpc!(self, create_object, req)?.object))
    }

    fn copy_object(
        &self,
        h: SessionHandle,
        object: ObjectHandle,
        template: &Template,
    ) -> Result<ObjectHandle> {
        let req = pb::ObjectTemplateRequest {
            session: h.0,
            object: object.0,
            template: template_to_pb(template),
        };
        Ok(ObjectHandle(rpc!(self, copy_object, req)?.object))
    }

    fn destroy_object(&self, h: SessionHandle, object: ObjectHandle) -> Result<()> {
        let req = pb::ObjectRequest {
            session: h.0,
            object: object.0,
        };
        rpc!(self, destroy_object, req).map(drop)
    }

    fn attribute_values(
        &self,
        h: SessionHandle,
        object: ObjectHandle,
        wanted: &[A],
    ) -> Result<AttributeResults> {
        use pb::attribute_result::Result as R;
        let req = pb::GetAttributeRequest {
            session: h.0,
            object: object.0,
            types: wanted.iter().map(|a| a.0).collect(),
        };
        let values = rpc!(self, get_attribute_value, req)?.values;
        if values.len() != wanted.len() {
            return Err(malformed("a different number of attributes"));
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
            .collect::<Result<Vec<std::result::Result<AttrValue, _>>>>()
    }

    fn set_attribute_values(
        &self,
        h: SessionHandle,
        object: ObjectHandle,
        template: &Template,
    ) -> Result<()> {
        let req = pb::ObjectTemplateRequest {
            session: h.0,
            object: object.0,
            template: template_to_pb(template),
        };
        rpc!(self, set_attribute_value, req).map(drop)
    }

    fn object_size(&self, h: SessionHandle, object: ObjectHandle) -> Result<u64> {
        let req = pb::ObjectRequest {
            session: h.0,
            object: object.0,
        };
        Ok(rpc!(self, get_object_size, req)?.size)
    }

    fn find_objects_init(&self, h: SessionHandle, template: &Template) -> Result<()> {
        let req = pb::TemplateRequest {
            session: h.0,
            template: template_to_pb(template),
        };
        rpc!(self, find_objects_init, req).map(drop)
    }

    fn find_objects(&self, h: SessionHandle, max: usize) -> Result<Vec<ObjectHandle>> {
        let req = pb::FindNextRequest {
            session: h.0,
            max: u64::try_from(max).unwrap_or(0),
        };
        Ok(rpc!(self, find_objects_next, req)?
            .objects
            .into_iter()
            .map(ObjectHandle)
            .collect())
    }

    fn find_objects_final(&self, h: SessionHandle) -> Result<()> {
        rpc!(self, find_objects_final, session(h)).map(drop)
    }

    fn public_key_info(&self, h: SessionHandle, object: ObjectHandle) -> Result<Vec<u8>> {
        let req = pb::ObjectRequest {
            session: h.0,
            object: object.0,
        };
        Ok(rpc!(self, get_public_key_info, req)?.data)
    }

    fn generate_key(
        &self,
        h: SessionHandle,
        mechanism: &Mechanism,
        template: &Template,
    ) -> Result<ObjectHandle> {
        let req = pb::GenerateKeyRequest {
            session: h.0,
            mechanism: Some(mechanism_to_pb(mechanism)),
            template: template_to_pb(template),
        };
        Ok(ObjectHandle(rpc!(self, generate_key, req)?.object))
    }

    fn generate_key_pair(
        &self,
        h: SessionHandle,
        mechanism: &Mechanism,
        public_template: &Template,
        private_template: &Template,
    ) -> Result<(ObjectHandle, ObjectHandle)> {
        let req = pb::GenerateKeyPairRequest {
            session: h.0,
            mechanism: Some(mechanism_to_pb(mechanism)),
            public_template: template_to_pb(public_template),
            private_template: template_to_pb(private_template),
        };
        let r = rpc!(self, generate_key_pair, req)?;
        Ok((ObjectHandle(r.public_key), ObjectHandle(r.private_key)))
    }

    fn wrap_key(
        &self,
        h: SessionHandle,
        mechanism: &Mechanism,
        wrapping: ObjectHandle,
        target: ObjectHandle,
    ) -> Result<Vec<u8>> {
        Ok(rpc!(self, wrap_key, wrap_request(h, mechanism, wrapping, target))?.data)
    }

    fn wrap_key_len(
        &self,
        h: SessionHandle,
        mechanism: &Mechanism,
        wrapping: ObjectHandle,
        target: ObjectHandle,
    ) -> Result<usize> {
        let req = wrap_request(h, mechanism, wrapping, target);
        length(rpc!(self, wrap_key_length, req)?.size)
    }

    fn wrap_key_authenticated(
        &self,
        h: SessionHandle,
        mechanism: &Mechanism,
        wrapping: ObjectHandle,
        target: ObjectHandle,
    ) -> Result<MessageOutput> {
        let req = wrap_request(h, mechanism, wrapping, target);
        let r = rpc!(self, wrap_key_authenticated, req)?;
        Ok(MessageOutput {
            data: Zeroizing::new(r.data),
            iv: r.generated_iv,
        })
    }

    fn wrap_key_authenticated_len(
        &self,
        h: SessionHandle,
        mechanism: &Mechanism,
        wrapping: ObjectHandle,
        target: ObjectHandle,
    ) -> Result<usize> {
        let req = wrap_request(h, mechanism, wrapping, target);
        length(rpc!(self, wrap_key_authenticated_length, req)?.size)
    }

    fn unwrap_key(
        &self,
        h: SessionHandle,
        mechanism: &Mechanism,
        unwrapping: ObjectHandle,
        wrapped: &[u8],
        template: &Template,
    ) -> Result<ObjectHandle> {
        let req = pb::UnwrapKeyRequest {
            session: h.0,
            mechanism: Some(mechanism_to_pb(mechanism)),
            unwrapping_key: unwrapping.0,
            wrapped_key: wrapped.to_vec(),
            template: template_to_pb(template),
        };
        Ok(ObjectHandle(rpc!(self, unwrap_key, req)?.object))
    }

    fn derive_key(
        &self,
        h: SessionHandle,
        mechanism: &Mechanism,
        base: ObjectHandle,
        template: &Template,
    ) -> Result<ObjectHandle> {
        let req = pb::DeriveKeyRequest {
            session: h.0,
            mechanism: Some(mechanism_to_pb(mechanism)),
            base_key: base.0,
            template: template_to_pb(template),
        };
        Ok(ObjectHandle(rpc!(self, derive_key, req)?.object))
    }

    fn encapsulate_key(
        &self,
        h: SessionHandle,
        mechanism: &Mechanism,
        public: ObjectHandle,
        template: &Template,
    ) -> Result<(Vec<u8>, ObjectHandle)> {
        let req = pb::EncapsulateRequest {
            session: h.0,
            mechanism: Some(mechanism_to_pb(mechanism)),
            public_key: public.0,
            template: template_to_pb(template),
        };
        let r = rpc!(self, encapsulate_key, req)?;
        Ok((r.ciphertext, ObjectHandle(r.object)))
    }

    fn encapsulate_key_len(
        &self,
        h: SessionHandle,
        mechanism: &Mechanism,
        public: ObjectHandle,
    ) -> Result<usize> {
        let req = pb::EncapsulateRequest {
            session: h.0,
            mechanism: Some(mechanism_to_pb(mechanism)),
            public_key: public.0,
            template: Vec::new(),
        };
        length(rpc!(self, encapsulate_key_length, req)?.size)
    }

    fn decapsulate_key(
        &self,
        h: SessionHandle,
        mechanism: &Mechanism,
        private: ObjectHandle,
        ciphertext: &[u8],
        template: &Template,
    ) -> Result<ObjectHandle> {
        let req = pb::DecapsulateRequest {
            session: h.0,
            mechanism: Some(mechanism_to_pb(mechanism)),
            private_key: private.0,
            ciphertext: ciphertext.to_vec(),
            template: template_to_pb(template),
        };
        Ok(ObjectHandle(rpc!(self, decapsulate_key, req)?.object))
    }

    fn cancel(&self, h: SessionHandle, kinds: &[OperationKind]) -> Result<()> {
        if kinds.contains(&OperationKind::Sign) {
            self.signed(h);
        }
        let req = pb::CancelRequest {
            session: h.0,
            kinds: kinds.iter().map(|k| operation_kind(*k)).collect(),
        };
        if req.kinds.is_empty() {
            // An empty list means "all" on the wire; nothing to end means no call.
            return Ok(());
        }
        rpc!(self, cancel_operations, req).map(drop)
    }

    fn operation_state(&self, h: SessionHandle) -> Result<Vec<u8>> {
        Ok(rpc!(self, get_operation_state, session(h))?.data)
    }

    fn set_operation_state(&self, h: SessionHandle, blob: &[u8]) -> Result<()> {
        // The restored operations are whatever the blob held.
        self.signed(h);
        rpc!(self, set_operation_state, data(h, blob)).map(drop)
    }

    fn sign_init(&self, h: SessionHandle, mechanism: &Mechanism, key: ObjectHandle) -> Result<()> {
        self.signed(h);
        let reply = rpc!(self, sign_init, operation(h, mechanism, key))?;
        self.signing(h, &reply);
        Ok(())
    }

    fn sign_recover_init(
        &self,
        h: SessionHandle,
        mechanism: &Mechanism,
        key: ObjectHandle,
    ) -> Result<()> {
        self.signed(h);
        let reply = rpc!(self, sign_recover_init, operation(h, mechanism, key))?;
        self.signing(h, &reply);
        Ok(())
    }

    fn signature_len(&self, h: SessionHandle) -> Result<usize> {
        let known = self
            .signature_lengths
            .lock()
            .ok()
            .and_then(|l| l.get(&h.0).copied());
        match known {
            Some(n) => Ok(n),
            None => length(rpc!(self, sign_length, session(h))?.size),
        }
    }

    fn sign(&self, h: SessionHandle, d: &[u8]) -> Result<Vec<u8>> {
        self.signed(h);
        Ok(rpc!(self, sign, data(h, d))?.data)
    }

    fn sign_recover(&self, h: SessionHandle, d: &[u8]) -> Result<Vec<u8>> {
        self.signed(h);
        Ok(rpc!(self, sign_recover, data(h, d))?.data)
    }

    fn sign_update(&self, h: SessionHandle, d: &[u8]) -> Result<()> {
        let done = rpc!(self, sign_update, data(h, d)).map(drop);
        if done.is_err() {
            // A failed update ends the operation.
            self.signed(h);
        }
        done
    }

    fn sign_final(&self, h: SessionHandle) -> Result<Vec<u8>> {
        self.signed(h);
        Ok(rpc!(self, sign_final, session(h))?.data)
    }

    fn verify_init(
        &self,
        h: SessionHandle,
        mechanism: &Mechanism,
        key: ObjectHandle,
    ) -> Result<()> {
        rpc!(self, verify_init, operation(h, mechanism, key)).map(drop)
    }

    fn verify_recover_init(
        &self,
        h: SessionHandle,
        mechanism: &Mechanism,
        key: ObjectHandle,
    ) -> Result<()> {
        rpc!(self, verify_recover_init, operation(h, mechanism, key)).map(drop)
    }

    fn verify(&self, h: SessionHandle, d: &[u8], signature: &[u8]) -> Result<()> {
        let req = pb::VerifyRequest {
            session: h.0,
            data: d.to_vec(),
            signature: signature.to_vec(),
        };
        rpc!(self, verify, req).map(drop)
    }

    fn verify_update(&self, h: SessionHandle, d: &[u8]) -> Result<()> {
        rpc!(self, verify_update, data(h, d)).map(drop)
    }

    fn verify_final(&self, h: SessionHandle, signature: &[u8]) -> Result<()> {
        let req = pb::VerifyRequest {
            session: h.0,
            data: Vec::new(),
            signature: signature.to_vec(),
        };
        rpc!(self, verify_final, req).map(drop)
    }

    fn verify_recover(&self, h: SessionHandle, signature: &[u8]) -> Result<Vec<u8>> {
        Ok(rpc!(self, verify_recover, data(h, signature))?.data)
    }

    fn verify_signature_init(
        &self,
        h: SessionHandle,
        mechanism: &Mechanism,
        key: ObjectHandle,
        signature: &[u8],
    ) -> Result<()> {
        let req = pb::VerifySignatureInitRequest {
            session: h.0,
            mechanism: Some(mechanism_to_pb(mechanism)),
            key: key.0,
            signature: signature.to_vec(),
        };
        rpc!(self, verify_signature_init, req).map(drop)
    }

    fn verify_signature(&self, h: SessionHandle, d: &[u8]) -> Result<()> {
        rpc!(self, verify_signature, data(h, d)).map(drop)
    }

    fn verify_signature_update(&self, h: SessionHandle, d: &[u8]) -> Result<()> {
        rpc!(self, verify_signature_update, data(h, d)).map(drop)
    }

    fn verify_signature_final(&self, h: SessionHandle) -> Result<()> {
        rpc!(self, verify_signature_final, session(h)).map(drop)
    }

    fn cipher_init(
        &self,
        h: SessionHandle,
        direction: Direction,
        mechanism: &Mechanism,
        key: ObjectHandle,
    ) -> Result<()> {
        let req = operation(h, mechanism, key);
        match direction {
            Direction::Encrypt => rpc!(self, encrypt_init, req).map(drop),
            Direction::Decrypt => rpc!(self, decrypt_init, req).map(drop),
        }
    }

    fn cipher_len(
        &self,
        h: SessionHandle,
        direction: Direction,
        input_len: usize,
    ) -> Result<usize> {
        self.required_length(h, pb::OutputKind::Cipher, direction, input_len)
    }

    fn cipher_update_len(
        &self,
        h: SessionHandle,
        direction: Direction,
        input_len: usize,
    ) -> Result<usize> {
        self.required_length(h, pb::OutputKind::CipherUpdate, direction, input_len)
    }

    fn cipher_final_len(&self, h: SessionHandle, direction: Direction) -> Result<usize> {
        self.required_length(h, pb::OutputKind::CipherFinal, direction, 0)
    }

    fn cipher(
        &self,
        h: SessionHandle,
        direction: Direction,
        input: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        let out = match direction {
            Direction::Encrypt => rpc!(self, encrypt, data(h, input))?,
            Direction::Decrypt => rpc!(self, decrypt, data(h, input))?,
        };
        Ok(Zeroizing::new(out.data))
    }

    fn encrypt(&self, h: SessionHandle, input: &[u8]) -> Result<Vec<u8>> {
        Ok(rpc!(self, encrypt, data(h, input))?.data)
    }

    fn cipher_update(
        &self,
        h: SessionHandle,
        direction: Direction,
        input: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        let out = match direction {
            Direction::Encrypt => rpc!(self, encrypt_update, data(h, input))?,
            Direction::Decrypt => rpc!(self, decrypt_update, data(h, input))?,
        };
        Ok(Zeroizing::new(out.data))
    }

    fn cipher_final(&self, h: SessionHandle, direction: Direction) -> Result<Zeroizing<Vec<u8>>> {
        let out = match direction {
            Direction::Encrypt => rpc!(self, encrypt_final, session(h))?,
            Direction::Decrypt => rpc!(self, decrypt_final, session(h))?,
        };
        Ok(Zeroizing::new(out.data))
    }

    fn digest_init(&self, h: SessionHandle, mechanism: &Mechanism) -> Result<()> {
        rpc!(self, digest_init, operation(h, mechanism, ObjectHandle(0))).map(drop)
    }

    fn digest_len(&self, h: SessionHandle) -> Result<usize> {
        self.required_length(h, pb::OutputKind::Digest, Direction::Encrypt, 0)
    }

    fn digest(&self, h: SessionHandle, d: &[u8]) -> Result<Vec<u8>> {
        Ok(rpc!(self, digest, data(h, d))?.data)
    }

    fn digest_update(&self, h: SessionHandle, d: &[u8]) -> Result<()> {
        rpc!(self, digest_update, data(h, d)).map(drop)
    }

    fn digest_key(&self, h: SessionHandle, key: ObjectHandle) -> Result<()> {
        let req = pb::ObjectRequest {
            session: h.0,
            object: key.0,
        };
        rpc!(self, digest_key, req).map(drop)
    }

    fn digest_final(&self, h: SessionHandle) -> Result<Vec<u8>> {
        Ok(rpc!(self, digest_final, session(h))?.data)
    }

    fn message_init(
        &self,
        h: SessionHandle,
        kind: MessageKind,
        mechanism: &Mechanism,
        key: ObjectHandle,
    ) -> Result<()> {
        let req = pb::MessageInitRequest {
            session: h.0,
            kind: message_kind(kind),
            mechanism: Some(mechanism_to_pb(mechanism)),
            key: key.0,
        };
        rpc!(self, message_init, req).map(drop)
    }

    fn message_final(&self, h: SessionHandle, kind: MessageKind) -> Result<()> {
        let req = pb::MessageKindRequest {
            session: h.0,
            kind: message_kind(kind),
        };
        rpc!(self, message_final, req).map(drop)
    }

    fn message_pending_len(&self, h: SessionHandle, kind: MessageKind) -> Result<Option<usize>> {
        self.output_length(pb::OutputLengthRequest {
            session: h.0,
            kind: pb::OutputKind::MessagePending as i32,
            decrypt: false,
            input_length: 0,
            message_kind: message_kind(kind),
        })
    }

    fn message_begin(
        &self,
        h: SessionHandle,
        kind: MessageKind,
        per_message: Option<Mechanism>,
    ) -> Result<Option<Vec<u8>>> {
        let req = pb::MessageBeginRequest {
            session: h.0,
            kind: message_kind(kind),
            mechanism: per_message.as_ref().map(mechanism_to_pb),
        };
        Ok(rpc!(self, message_begin, req)?.generated_iv)
    }

    fn message_part(&self, h: SessionHandle, kind: MessageKind, part: &[u8]) -> Result<()> {
        let req = pb::MessagePartRequest {
            session: h.0,
            kind: message_kind(kind),
            data: part.to_vec(),
        };
        rpc!(self, message_part, req).map(drop)
    }

    fn cipher_message(
        &self,
        h: SessionHandle,
        direction: Direction,
        per_message: Option<&Mechanism>,
        input: &[u8],
    ) -> Result<MessageOutput> {
        let req = pb::CipherMessageRequest {
            session: h.0,
            kind: message_kind(MessageKind::of_direction(direction)),
            mechanism: per_message.map(mechanism_to_pb),
            data: input.to_vec(),
        };
        let r = rpc!(self, cipher_message, req)?;
        Ok(MessageOutput {
            data: Zeroizing::new(r.data),
            iv: r.generated_iv,
        })
    }

    fn message_signature_len(&self, h: SessionHandle) -> Result<usize> {
        self.required_length(h, pb::OutputKind::MessageSignature, Direction::Encrypt, 0)
    }

    fn sign_message(&self, h: SessionHandle, d: &[u8], last_part: bool) -> Result<Vec<u8>> {
        let req = pb::SignMessageRequest {
            session: h.0,
            data: d.to_vec(),
            last_part,
        };
        Ok(rpc!(self, sign_message, req)?.data)
    }

    fn verify_message(
        &self,
        h: SessionHandle,
        d: &[u8],
        last_part: bool,
        signature: &[u8],
    ) -> Result<()> {
        let req = pb::VerifyMessageRequest {
            session: h.0,
            data: d.to_vec(),
            last_part,
            signature: signature.to_vec(),
        };
        rpc!(self, verify_message, req).map(drop)
    }
}
