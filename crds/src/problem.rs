//! Problems found while validating or rendering: each names the object, the field path and a
//! reason a user can act on; the operator turns them into status conditions.

use std::fmt;

/// Why something cannot be used. Each is also a status condition reason (CamelCase).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// A field has a value the API cannot use, or fields combine in a way that cannot work.
    InvalidSpec,
    /// The `pluginRef` names no GatewayPlugin in the binding's namespace.
    PluginNotFound,
    /// A referenced Secret does not exist.
    SecretNotFound,
    /// A referenced Secret exists but lacks a key, or the value is unusable.
    SecretKeyInvalid,
    /// The credential key ring Secret `<plugin>-credential-keys` does not exist yet.
    CredentialKeysNotFound,
    /// The credential key ring Secret exists but is malformed.
    CredentialKeysInvalid,
    /// Two different plugins of one type are bound to exactly the same route.
    Conflict,
}

impl Reason {
    /// The CamelCase form used in status conditions and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::InvalidSpec => "InvalidSpec",
            Reason::PluginNotFound => "PluginNotFound",
            Reason::SecretNotFound => "SecretNotFound",
            Reason::SecretKeyInvalid => "SecretKeyInvalid",
            Reason::CredentialKeysNotFound => "CredentialKeysNotFound",
            Reason::CredentialKeysInvalid => "CredentialKeysInvalid",
            Reason::Conflict => "Conflict",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A problem with one field of a spec, before we know which object it belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// JSON path of the field, e.g. `spec.wechatMpLogin.session.ttlMinutes`.
    pub field: String,
    /// What is wrong, in words that never contain secret values.
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The kind of object a [`Problem`] belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    GatewayPlugin,
    PluginBinding,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::GatewayPlugin => "GatewayPlugin",
            Kind::PluginBinding => "PluginBinding",
        })
    }
}

/// One reason why an object cannot be rendered, addressed to that object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub kind: Kind,
    /// `<namespace>/<name>` of the object the problem belongs to.
    pub object: String,
    pub reason: Reason,
    /// JSON path of the offending field.
    pub field: String,
    pub message: String,
}

impl Problem {
    pub fn new(
        kind: Kind,
        object: impl Into<String>,
        reason: Reason,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            object: object.into(),
            reason,
            field: field.into(),
            message: message.into(),
        }
    }

    /// Problems for each field error of one object's spec.
    pub fn from_field_errors(kind: Kind, object: &str, errors: Vec<FieldError>) -> Vec<Problem> {
        errors
            .into_iter()
            .map(|e| Problem::new(kind, object, Reason::InvalidSpec, e.field, e.message))
            .collect()
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {} ({}): {}",
            self.kind, self.object, self.field, self.reason, self.message
        )
    }
}
