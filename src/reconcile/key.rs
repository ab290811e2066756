//! SmoochKey adapter: a secret key, named `<name>.<resource uid>` in Smooch
//! so that the operator can find it again, with optional rotation.

use super::app::{AppConnection, connect_dependent, connect_dependent_for_cleanup};
use super::cache::Reads;
use super::secrets::KeptSecret;
use super::{Context, Managed, Observation, Origin};
use crate::resources::{CommonStatus, DeletionPolicy, SecretTemplate, SmoochKey};
use crate::smooch::jwt;
use crate::smooch::models::SecretKey;
use crate::smooch::{ApiVersion, Sensitive};
use crate::{Error, Result};
use jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// Longest `displayName` v2 takes.
const V2_DISPLAY_NAME_MAX: usize = 100;

/// The key in use, and the one it replaced while the overlap lasts.
pub struct KeyState {
    pub key: SecretKey,
    pub created_at: Timestamp,
    pub previous: Option<(String, Timestamp)>,
}

/// The Go-style durations the operator takes (CRD fields and flags): hours,
/// minutes, seconds and milliseconds, each at most once and in that order,
/// as Go prints them (`720h`, `1h30m`, `90s`, `500ms`).
pub const DURATION_PATTERN: &str = r"^([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?$";

/// Parses a duration of [`DURATION_PATTERN`] with jiff's duration parser
/// (its friendly format is a superset: spaces, unit names, days, signs, so
/// the shape is checked first).
pub fn parse_duration(text: &str) -> Option<Duration> {
    static SHAPE: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(DURATION_PATTERN).expect("valid pattern"));
    if text.is_empty() || !SHAPE.is_match(text) {
        return None;
    }
    let parsed: SignedDuration = text.parse().ok()?;
    Duration::try_from(parsed).ok()
}

impl SmoochKey {
    /// The key's name in Smooch: the spec's (or the resource's) name, then
    /// this resource's uid as the tag that finds it again after a crash.
    /// v2 caps a `displayName` at 100 characters: the name part is cut so
    /// that the tag always fits.
    fn smooch_name(&self, version: ApiVersion) -> String {
        let base = self.spec.name.clone().unwrap_or_else(|| self.name_any());
        let tag = self.uid().unwrap_or_default();
        let base: String = match version {
            ApiVersion::V1 => base,
            ApiVersion::V2 => {
                let room = V2_DISPLAY_NAME_MAX.saturating_sub(tag.chars().count() + 1);
                base.chars().take(room).collect()
            }
        };
        format!("{base}.{tag}")
    }

    /// (every, overlap) when rotation is configured.
    fn rotation(&self) -> Result<Option<(Duration, Duration)>> {
        let Some(r) = &self.spec.rotation else {
            return Ok(None);
        };
        let every = parse_duration(&r.every)
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                Error::InvalidSpec(format!(
                    "spec.rotation.every {:?} is not a duration",
                    r.every
                ))
            })?;
        let overlap = parse_duration(&r.overlap).ok_or_else(|| {
            Error::InvalidSpec(format!(
                "spec.rotation.overlap {:?} is not a duration",
                r.overlap
            ))
        })?;
        Ok(Some((every, overlap)))
    }

    fn recorded_time(
        &self,
        field: fn(&crate::resources::SmoochKeyStatus) -> &Option<String>,
    ) -> Option<Timestamp> {
        self.status
            .as_ref()
            .and_then(|s| field(s).as_ref()?.parse().ok())
    }

    fn recorded_previous(&self) -> Option<(String, Timestamp)> {
        let id = self.status.as_ref()?.previous_key_id.clone()?;
        let expires = self
            .recorded_time(|s| &s.previous_key_expires_at)
            .unwrap_or_else(Timestamp::now);
        Some((id, expires))
    }
}

/// When the key in use is to be replaced: `every` after it was created,
/// but never before the previous key's promised expiry (only one previous
/// key is kept, and it is never deleted early).
fn next_rotation(
    created_at: Timestamp,
    every: Duration,
    previous_expires: Option<Timestamp>,
) -> Timestamp {
    let every = SignedDuration::try_from(every).unwrap_or(SignedDuration::MAX);
    let due = created_at.checked_add(every).unwrap_or(Timestamp::MAX);
    previous_expires.map_or(due, |expires| due.max(expires))
}

impl Managed for SmoochKey {
    type Connection = AppConnection;
    type External = KeyState;
    const KIND: &'static str = "SmoochKey";
    const SECRET_SUFFIX: Option<&'static str> = Some("key");

    fn common_status(&self) -> Option<&CommonStatus> {
        self.status.as_ref().map(|s| &s.common)
    }
    fn recorded_id(&self) -> Option<String> {
        self.status.as_ref()?.key_id.clone()
    }
    fn deletion_policy(&self) -> DeletionPolicy {
        self.spec.deletion_policy
    }
    fn secret_template(&self) -> Option<&SecretTemplate> {
        self.spec.secret_template.as_ref()
    }
    fn status_json(&self) -> Value {
        serde_json::to_value(&self.status).unwrap_or(Value::Null)
    }
    fn app_name(&self) -> Option<&str> {
        Some(&self.spec.app_ref.name)
    }

    fn external_id(state: &KeyState) -> String {
        state.key.id.clone()
    }

    /// Keys are named `<name>.<resource uid>`.
    fn owner_tag(state: &KeyState) -> Option<String> {
        state
            .key
            .name
            .rsplit_once('.')
            .map(|(_, uid)| uid.to_string())
    }

    fn status_fields(&self, conn: &AppConnection, state: &KeyState) -> Map<String, Value> {
        let mut fields = Map::new();
        fields.insert("appId".into(), json!(conn.app_id));
        fields.insert("keyId".into(), json!(state.key.id));
        fields.insert("keyCreatedAt".into(), json!(state.created_at.to_string()));
        if let Some((id, expires)) = &state.previous {
            fields.insert("previousKeyId".into(), json!(id));
            fields.insert("previousKeyExpiresAt".into(), json!(expires.to_string()));
        }
        fields
    }

    async fn connect(&self, ctx: &Context, reads: Reads) -> Result<AppConnection> {
        self.rotation()?;
        connect_dependent(
            &self.namespace().unwrap_or_default(),
            &self.spec.app_ref.name,
            ctx,
            reads,
        )
        .await
    }

    async fn connect_for_cleanup(&self, ctx: &Context) -> Result<Option<AppConnection>> {
        let app_id = self.status.as_ref().and_then(|s| s.app_id.clone());
        connect_dependent_for_cleanup(
            &self.namespace().unwrap_or_default(),
            &self.spec.app_ref.name,
            app_id,
            ctx,
        )
        .await
    }

    async fn observe(&self, conn: &AppConnection, id: &str) -> Result<Option<KeyState>> {
        let Some(key) = super::found(conn.client.get_key(&conn.app_id, id).await)? else {
            return Ok(None);
        };
        let is_recorded = self.recorded_id().as_deref() == Some(id);
        let created_at = is_recorded
            .then(|| self.recorded_time(|s| &s.key_created_at))
            .flatten()
            .unwrap_or_else(Timestamp::now);
        Ok(Some(KeyState {
            key,
            created_at,
            previous: self.recorded_previous(),
        }))
    }

    async fn find_created(&self, conn: &AppConnection, _: &Context) -> Result<Option<KeyState>> {
        let name = self.smooch_name(conn.client.version());
        let keys = conn.client.list_keys(&conn.app_id).await?;
        // Smooch lists keys oldest first; after a rotation the newest is current.
        Ok(keys
            .into_iter()
            .rev()
            .find(|k| k.name == name)
            .map(|key| KeyState {
                key,
                created_at: Timestamp::now(),
                previous: None,
            }))
    }

    async fn create(&self, conn: &AppConnection, _: &Context) -> Result<KeyState> {
        let key = conn
            .client
            .create_key(&conn.app_id, &self.smooch_name(conn.client.version()))
            .await?;
        Ok(KeyState {
            key,
            created_at: Timestamp::now(),
            previous: self.recorded_previous(),
        })
    }

    fn drift(&self, _: &AppConnection, state: &KeyState) -> Option<String> {
        let (every, _) = self.rotation().ok().flatten()?;
        let previous_expires = state.previous.as_ref().map(|(_, expires)| *expires);
        (next_rotation(state.created_at, every, previous_expires) <= Timestamp::now())
            .then(|| "rotation is due".to_string())
    }

    /// Rotation: a new key takes over; the old one stays valid for the
    /// overlap. The one before it has expired by now (see `next_rotation`).
    async fn update(&self, conn: &AppConnection, state: KeyState) -> Result<KeyState> {
        let (_, overlap) = self.rotation()?.unwrap_or_default();
        if let Some((older, _)) = &state.previous {
            delete_ignoring_missing(conn, older).await?;
        }
        let key = conn
            .client
            .create_key(&conn.app_id, &self.smooch_name(conn.client.version()))
            .await?;
        let now = Timestamp::now();
        let expires = now
            .checked_add(SignedDuration::try_from(overlap).unwrap_or(SignedDuration::ZERO))
            .unwrap_or(now);
        Ok(KeyState {
            key,
            created_at: now,
            previous: Some((state.key.id, expires)),
        })
    }

    async fn delete(&self, conn: &AppConnection, id: &str) -> Result<()> {
        if let Some((previous, _)) = self.recorded_previous() {
            delete_ignoring_missing(conn, &previous).await?;
        }
        Ok(conn.client.delete_key(&conn.app_id, id).await?)
    }

    async fn finish(
        &self,
        conn: &AppConnection,
        state: &KeyState,
        origin: Origin,
        current_secret: Option<&KeptSecret>,
    ) -> Result<Observation> {
        let now = Timestamp::now();
        let mut previous = state.previous.clone();
        if let Some((id, expires)) = &previous
            && *expires <= now
        {
            delete_ignoring_missing(conn, id).await?;
            previous = None;
        }
        // Keys with this resource's tag that are neither current nor
        // previous were left by an interrupted rotation or create.
        // (Not after a create: the lookup just before it found none.)
        if matches!(origin, Origin::Adopted | Origin::Recovered) || previous.is_some() {
            let name = self.smooch_name(conn.client.version());
            let keep = [
                Some(state.key.id.as_str()),
                previous.as_ref().map(|p| p.0.as_str()),
            ];
            for stray in conn.client.list_keys(&conn.app_id).await? {
                if stray.name == name && !keep.contains(&Some(stray.id.as_str())) {
                    delete_ignoring_missing(conn, &stray.id).await?;
                }
            }
        }

        // v2 promises a key's secret in the create answer only: a key read
        // again may come without it, and the Secret written after the
        // create holds it.
        let mut key = state.key.clone();
        if key.secret.expose().is_empty() {
            key.secret = current_secret
                .filter(|s| s.value("keyId").is_some_and(|id| id.expose() == key.id))
                .and_then(|s| s.value("secret"))
                .ok_or_else(|| crate::Error::NotAllowed {
                    reason: "KeySecretUnknown",
                    message: format!(
                        "Smooch did not return the secret of key {} and no Secret holds it; \
                         delete the key in Smooch so that a new one is made",
                        key.id
                    ),
                })?;
        }
        let state = &KeyState {
            key,
            created_at: state.created_at,
            previous: state.previous.clone(),
        };
        let jwt = match current_secret.and_then(|s| reusable_jwt(s, &state.key)) {
            Some(jwt) => jwt,
            None => conn.client.app_jwt(&conn.app_id, &state.key).await?,
        };

        let mut requeue_after = None;
        if let Some((_, expires)) = &previous {
            requeue_after = Some(duration_until(now, *expires));
        }
        if let Some((every, _)) = self.rotation()? {
            let due = next_rotation(state.created_at, every, previous.as_ref().map(|p| p.1));
            let until = duration_until(now, due);
            requeue_after = Some(requeue_after.map_or(until, |r: Duration| r.min(until)));
        }
        let status_fields = self.status_fields(
            conn,
            &KeyState {
                key: state.key.clone(),
                created_at: state.created_at,
                previous,
            },
        );

        Ok(Observation {
            external_id: state.key.id.clone(),
            status_fields,
            secret_data: Some(BTreeMap::from([
                ("appId".to_string(), Sensitive::from(conn.app_id.as_str())),
                ("keyId".to_string(), Sensitive::from(state.key.id.as_str())),
                ("secret".to_string(), state.key.secret.clone()),
                ("jwt".to_string(), jwt),
            ])),
            requeue_after,
        })
    }
}

fn duration_until(now: Timestamp, then: Timestamp) -> Duration {
    Duration::try_from(then.duration_since(now)).unwrap_or(Duration::ZERO) + Duration::from_secs(1)
}

/// The Secret's JWT, when it is for this key and verifies with its secret
/// (so the operator need not fetch a new one).
fn reusable_jwt(secret: &KeptSecret, key: &SecretKey) -> Option<Sensitive> {
    let token = secret.value("jwt")?;
    let kid = jwt::key_id_of(token.expose()).ok()?;
    let claims = jwt::verify(token.expose(), &key.secret).ok()?;
    (kid == key.id && claims.scope == jwt::Scope::App).then_some(token)
}

async fn delete_ignoring_missing(conn: &AppConnection, key_id: &str) -> Result<()> {
    match conn.client.delete_key(&conn.app_id, key_id).await {
        Err(e) if !e.is_not_found() => Err(e.into()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Secret;

    #[test]
    fn go_durations() {
        assert_eq!(
            parse_duration("720h"),
            Some(Duration::from_secs(720 * 3600))
        );
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration(""), None);
        assert_eq!(parse_duration("5d"), None);
        assert_eq!(parse_duration("h"), None);
        assert_eq!(parse_duration("99999999999999999h"), None);
        // Only the Go shape, not the rest of jiff's friendly format.
        for other in [
            "1h 30m", "1 hour", "-1h", "+1h", "30m1h", "1h1h", "1.5h", "PT1H",
        ] {
            assert_eq!(parse_duration(other), None, "{other}");
        }
        assert_eq!(
            parse_duration("1h2m3s4ms"),
            Some(Duration::from_millis(3_723_004))
        );
    }

    #[test]
    fn rotation_due_after_period_but_not_before_the_previous_key_expires() {
        let at = |t: &str| t.parse::<Timestamp>().unwrap();
        let created = at("2026-01-01T00:00:00Z");
        let every = Duration::from_secs(3600);
        assert_eq!(
            next_rotation(created, every, None),
            at("2026-01-01T01:00:00Z")
        );
        assert_eq!(
            next_rotation(created, every, Some(at("2026-01-01T00:30:00Z"))),
            at("2026-01-01T01:00:00Z")
        );
        // An overlap longer than the period: the previous key keeps its
        // promised expiry, so the next rotation waits for it.
        assert_eq!(
            next_rotation(created, every, Some(at("2026-01-01T03:00:00Z"))),
            at("2026-01-01T03:00:00Z")
        );
    }

    #[test]
    fn jwt_reused_only_for_the_same_key() {
        let key = SecretKey {
            id: "app_0123456789abcdef01234567".into(),
            secret: "s3cr3t-s3cr3t-s3cr3t-abc".into(),
            name: "k".into(),
        };
        let token = jwt::sign(&key.id, &key.secret, &jwt::Claims::app()).unwrap();
        let secret = KeptSecret::new(&Secret {
            data: Some(
                [(
                    "jwt".to_string(),
                    k8s_openapi::ByteString(token.expose().as_bytes().to_vec()),
                )]
                .into(),
            ),
            ..Default::default()
        });
        assert!(reusable_jwt(&secret, &key).is_some());
        let rotated = SecretKey {
            id: "app_aaaaaaaaaaaaaaaaaaaaaaaa".into(),
            secret: "another-secret-value-xyz".into(),
            name: "k".into(),
        };
        assert!(reusable_jwt(&secret, &rotated).is_none());
    }
}
