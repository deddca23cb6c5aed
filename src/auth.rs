//! API keys and roles.
//!
//! Keys are random 32-byte secrets printed once as `ds_<64 hex>`; only their SHA-256 is stored.
//! Roles are ordered: `rep` < `manager` < `analyst` < `admin`; a route names the lowest role it
//! accepts. A rep key sees only its owner's deals and a manager key only its team's (a list of
//! owners or a region): the key's [`Scope`], carried by its [`Caller`] down to the store queries.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::{ApiError, KnownDetail};
use crate::store::scope::Scope;
use crate::store::{api_keys, Db};

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads and scores the deals of one owner (the key's).
    Rep,
    /// Rep, for the deals of a team: a list of owners or a region.
    Manager,
    /// Rep, plus imports, training, models and insights.
    Analyst,
    /// Analyst, plus key management and webhook administration.
    Admin,
}

impl Role {
    /// Parses `rep`, `manager`, `analyst` or `admin`.
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "rep" => Some(Role::Rep),
            "manager" => Some(Role::Manager),
            "analyst" => Some(Role::Analyst),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// True when keys of this role must be tied to owners or a region: they never see every
    /// deal.
    pub fn needs_scope(self) -> bool {
        self <= Role::Manager
    }

    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Rep => "rep",
            Role::Manager => "manager",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
        }
    }
}

/// A fresh random key (`ds_` + 64 hex characters).
pub fn generate_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("ds_{}", hex::encode(bytes))
}

/// The stored form of a key.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Remembers verified keys for a short time so each request does not cost a database read.
/// Revocations take effect within the TTL (`auth_cache_secs`).
#[derive(Debug)]
pub struct KeyCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Caller, Instant)>>,
}

impl KeyCache {
    /// A cache keeping entries for `ttl` (zero disables it).
    pub fn new(ttl: Duration) -> Self {
        KeyCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, hash: &str) -> Option<Caller> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.lock().ok()?;
        entries
            .get(hash)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(caller, _)| caller.clone())
    }

    fn put(&self, hash: String, caller: Caller) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() > 10_000 {
                entries.retain(|_, (_, at)| at.elapsed() < self.ttl);
            }
            entries.insert(hash, (caller, Instant::now()));
        }
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Key name.
    pub name: String,
    /// Key role.
    pub role: Role,
    /// The deals the key sees.
    pub scope: Scope,
}

/// The scope a key of `role` works in: its stored one for reps and managers (refused when it
/// has none, so an old rep key never falls back to every deal), every deal above.
pub fn effective_scope(name: &str, role: Role, stored: Scope) -> Result<Scope, KnownDetail> {
    if !role.needs_scope() {
        return Ok(Scope::All);
    }
    if stored.is_limited() {
        Ok(stored)
    } else {
        Err(KnownDetail::KeyWithoutOwner {
            key: name.to_owned(),
            role: role.as_str(),
        })
    }
}

/// The token of `Bearer <token>`. The scheme is case-insensitive (RFC 9110, section 11.1), so
/// `bearer` and `BEARER` are the same; spaces around the token are not part of it.
fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

async fn authenticate(req: &HttpRequest) -> Result<Caller, ApiError> {
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::Unauthorized(KnownDetail::MissingCredentials.into()))?;
    let key = bearer_token(header).ok_or_else(|| ApiError::Unauthorized(KnownDetail::NotBearer.into()))?;
    let hash = hash_key(key);
    let cache = req.app_data::<web::Data<KeyCache>>();
    if let Some(caller) = cache.and_then(|c| c.get(&hash)) {
        return Ok(caller);
    }
    let db = req
        .app_data::<web::Data<Db>>()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("database missing from app data")))?;
    let key = api_keys::find_active(db, &hash)
        .await?
        .ok_or_else(|| ApiError::Unauthorized(KnownDetail::UnknownKey.into()))?;
    let role = Role::parse(&key.role)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("bad role {} in api_keys", key.role)))?;
    let scope = effective_scope(&key.name, role, key.scope).map_err(|d| ApiError::Forbidden(d.into()))?;
    let caller = Caller {
        name: key.name,
        role,
        scope,
    };
    if let Some(cache) = cache {
        cache.put(hash, caller.clone());
    }
    Ok(caller)
}

macro_rules! role_extractor {
    ($name:ident, $role:expr, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone)]
        pub struct $name(pub Caller);

        impl FromRequest for $name {
            type Error = ApiError;
            type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

            fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
                let req = req.clone();
                Box::pin(async move {
                    let caller = authenticate(&req).await?;
                    if caller.role < $role {
                        return Err(ApiError::Forbidden(
                            KnownDetail::RoleTooLow {
                                needed: $role.as_str(),
                                key: caller.name,
                                has: caller.role.as_str(),
                            }
                            .into(),
                        ));
                    }
                    Ok($name(caller))
                })
            }
        }
    };
}

role_extractor!(
    RepAccess,
    Role::Rep,
    "A caller with at least the `rep` role (its reads are limited to `scope`)."
);
role_extractor!(
    AnalystAccess,
    Role::Analyst,
    "A caller with at least the `analyst` role."
);
role_extractor!(AdminAccess, Role::Admin, "A caller with the `admin` role.");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_hashes_stable() {
        let a = generate_key();
        let b = generate_key();
        assert_ne!(a, b);
        assert_eq!(a.len(), 67);
        assert_eq!(hash_key(&a), hash_key(&a));
        assert_ne!(hash_key(&a), a);
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for header in ["Bearer ds_x", "bearer ds_x", "BEARER ds_x", "bEaReR   ds_x "] {
            assert_eq!(bearer_token(header), Some("ds_x"), "{header}");
        }
        for header in ["Basic ds_x", "Bearer", "Bearer ", "Bearerds_x", "ds_x", ""] {
            assert_eq!(bearer_token(header), None, "{header}");
        }
    }

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Rep < Role::Manager && Role::Manager < Role::Analyst && Role::Analyst < Role::Admin);
        assert_eq!(Role::parse("manager"), Some(Role::Manager));
        assert_eq!(Role::parse("admin"), Some(Role::Admin));
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn reps_and_managers_need_a_scope_and_analysts_see_all() {
        let ana = Scope::Owners(vec!["ana".into()]);
        assert_eq!(effective_scope("k", Role::Rep, ana.clone()), Ok(ana.clone()));
        assert!(effective_scope("k", Role::Rep, Scope::All).is_err());
        assert!(effective_scope("k", Role::Manager, Scope::All).is_err());
        assert_eq!(effective_scope("k", Role::Analyst, Scope::All), Ok(Scope::All));
        // A scope stored on an analyst key does not narrow it: analysts see every deal.
        assert_eq!(effective_scope("k", Role::Admin, ana), Ok(Scope::All));
    }
}
