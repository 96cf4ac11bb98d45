//! What a GatewayPlugin spec must satisfy beyond its schema (or that a manifest read without an
//! API server may break), each problem with its field path.

use super::*;
use crate::problem::FieldError;
use crate::validate::Path;

impl GatewayPluginSpec {
    /// Every problem the schema cannot express (or that a manifest read without an API server
    /// may carry), each with its field path.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let spec = Path::root("spec");
        match (self.plugin_type, &self.wechat_mp_login, &self.tag) {
            (PluginType::WeChatMpLogin, Some(login), None) => {
                login.validate(&spec.field("wechatMpLogin"), &mut errors)
            }
            (PluginType::Tag, None, Some(tag)) => tag.validate(&spec.field("tag"), &mut errors),
            (PluginType::WeChatMpLogin, _, _) => errors.push(spec.error(
                "wechatMpLogin",
                "type WeChatMpLogin needs the wechatMpLogin block and no tag block",
            )),
            (PluginType::Tag, _, _) => errors.push(spec.error(
                "tag",
                "type Tag needs the tag block and no wechatMpLogin block",
            )),
        }
        if let Some(d) = &self.description {
            validate::max_len(&spec.field("description"), d, 1024, &mut errors);
        }
        errors
    }
}

impl WeChatMpLogin {
    fn validate(&self, at: &Path, errors: &mut Vec<FieldError>) {
        self.validate_apps(at, errors);
        validate::token(&at.field("code").field("name"), &self.code.name, errors);
        validate::token(
            &at.field("session").field("name"),
            &self.session.name,
            errors,
        );
        validate::token(
            &at.field("forward").field("name"),
            &self.forward.name,
            errors,
        );

        match &self.login {
            Some(login) => {
                let paths = at.field("login").field("paths");
                if login.paths.is_empty() || login.paths.len() > 32 {
                    errors.push(paths.here("must list 1 to 32 paths"));
                }
                for (i, p) in login.paths.iter().enumerate() {
                    validate::request_path(&paths.index(i), p, false, errors);
                }
            }
            None if self.code.location == CodeIn::Body => errors.push(at.error(
                "login",
                "code.in body needs login.paths, so that only login requests' bodies are read",
            )),
            None => {}
        }

        let session = at.field("session");
        let s = &self.session;
        if !(1..=MAX_TTL_MINUTES).contains(&s.ttl_minutes) {
            errors.push(session.error("ttlMinutes", format!("must be 1 to {MAX_TTL_MINUTES}")));
        }
        if let Some(renew) = s.renew_before_minutes
            && (renew == 0 || renew >= s.ttl_minutes)
        {
            errors.push(session.error(
                "renewBeforeMinutes",
                format!(
                    "must be at least 1 and below ttlMinutes ({})",
                    s.ttl_minutes
                ),
            ));
        }
        if !(1..=MAX_KEY_ROTATION_DAYS).contains(&s.key_rotation_days) {
            errors.push(session.error(
                "keyRotationDays",
                format!("must be 1 to {MAX_KEY_ROTATION_DAYS}"),
            ));
        }

        // The sidecar strips identity parameters from every request: a code or credential
        // sharing a name with one would be deleted before it is read.
        let forward = crate::render::contract::ForwardSpec::from(&self.forward);
        let identity = forward.identity_names();
        for (field, name) in [("code", &self.code.name), ("session", &self.session.name)] {
            if identity.iter().any(|id| validate::same_param(id, name)) {
                errors.push(at.field(field).error(
                    "name",
                    format!("{name:?} is an identity parameter the sidecar forwards and strips"),
                ));
            }
        }
        if let Some(tags) = &self.tags {
            let at = at.field("tags");
            let unique: std::collections::BTreeSet<_> = tags.fields.iter().collect();
            if tags.fields.is_empty() || unique.len() != tags.fields.len() {
                errors.push(at.error("fields", "must list distinct fields"));
            }
            let profile = at.field("profile");
            for (field, p) in [
                ("rawData", &tags.profile.raw_data),
                ("signature", &tags.profile.signature),
                ("encryptedData", &tags.profile.encrypted_data),
                ("iv", &tags.profile.iv),
            ] {
                validate::token(&profile.field(field).field("name"), &p.name, errors);
            }
        }
        if let Some(phone) = &self.phone {
            self.validate_phone(phone, &at.field("phone"), errors);
        }
        if !self.platform.is_wechat() {
            if self.phone.is_some() {
                errors.push(at.error(
                    "phone",
                    "phone numbers are WeChat's only (platform: wechat)",
                ));
            }
            if self.open_api {
                errors.push(at.error(
                    "openApi",
                    "the open-API port is WeChat's only (platform: wechat)",
                ));
            }
        }
        let code_is_header = self.code.location == CodeIn::Header;
        let session_is_header = s.accept_in == AcceptIn::Header || s.return_in == ReturnIn::Header;
        if code_is_header && session_is_header && validate::same_param(&self.code.name, &s.name) {
            errors.push(
                at.field("session")
                    .error("name", "must differ from code.name"),
            );
        }
    }
}

impl WeChatMpLogin {
    /// `appId` with `credentialsSecretRef`, or `apps`: exactly one form, distinct AppIDs, and
    /// an AppID parameter that the sidecar does not strip as an identity parameter.
    fn validate_apps(&self, at: &Path, errors: &mut Vec<FieldError>) {
        let check_ref = |secret: &Path, r: &CredentialsSecretRef, errors: &mut Vec<FieldError>| {
            validate::dns_subdomain(&secret.field("name"), &r.name, errors);
            validate::secret_key(&secret.field("appIdKey"), &r.app_id_key, errors);
            validate::secret_key(&secret.field("appSecretKey"), &r.app_secret_key, errors);
        };
        let platform = self.platform;
        let check_app_id = |at: &Path, app_id: &Option<String>, errors: &mut Vec<FieldError>| {
            if let Some(app_id) = app_id
                && !platform.is_app_id(app_id)
            {
                errors.push(at.error("appId", format!("must be {}", platform.app_id_shape())));
            }
        };
        match (&self.credentials_secret_ref, self.apps.is_empty()) {
            (Some(r), true) => {
                check_app_id(at, &self.app_id, errors);
                check_ref(&at.field("credentialsSecretRef"), r, errors);
            }
            (None, false) => {
                let apps = at.field("apps");
                if self.app_id.is_some() {
                    errors.push(at.error(
                        "appId",
                        "goes with credentialsSecretRef; with apps, set each app's appId",
                    ));
                }
                if self.apps.len() > MAX_APPS {
                    errors.push(apps.here(format!("must list at most {MAX_APPS} mini programs")));
                }
                let mut seen = std::collections::BTreeSet::new();
                for (i, app) in self.apps.iter().enumerate() {
                    let at = apps.index(i);
                    check_app_id(&at, &app.app_id, errors);
                    check_ref(
                        &at.field("credentialsSecretRef"),
                        &app.credentials_secret_ref,
                        errors,
                    );
                    if let Some(id) = &app.app_id
                        && !seen.insert(id.as_str())
                    {
                        errors.push(at.error("appId", format!("{id} is listed twice")));
                    }
                }
            }
            (Some(_), false) => errors.push(at.error(
                "apps",
                "set credentialsSecretRef (one mini program) or apps (several), not both",
            )),
            (None, true) => errors.push(at.error(
                "credentialsSecretRef",
                "required: the Secret with the APPSECRET (or apps, for several mini programs)",
            )),
        }
        if let Some(param) = &self.app_id_param {
            let name = &param.name;
            validate::token(&at.field("appIdParam").field("name"), name, errors);
            let forward = crate::render::contract::ForwardSpec::from(&self.forward);
            if forward
                .identity_names()
                .iter()
                .any(|id| validate::same_param(id, name))
            {
                errors.push(at.field("appIdParam").error(
                    "name",
                    format!("{name:?} is an identity parameter the sidecar forwards and strips"),
                ));
            }
        }
    }

    fn validate_phone(&self, phone: &PhoneSpec, at: &Path, errors: &mut Vec<FieldError>) {
        let name = &phone.code.name;
        validate::token(&at.field("code").field("name"), name, errors);
        let forward = crate::render::contract::ForwardSpec::from(&self.forward);
        if forward
            .identity_names()
            .iter()
            .any(|id| validate::same_param(id, name))
        {
            errors.push(at.field("code").error(
                "name",
                format!("{name:?} is an identity parameter the sidecar forwards and strips"),
            ));
        }
        let taken = [
            (
                "code.name",
                &self.code.name,
                self.code.location == phone.code.location,
            ),
            ("session.name", &self.session.name, true),
        ];
        for (field, other, same_place) in taken {
            if same_place && validate::same_param(other, name) {
                errors.push(
                    at.field("code")
                        .error("name", format!("must differ from {field}")),
                );
            }
        }
        if !phone.on_login && phone.paths.is_empty() {
            errors.push(at.here("needs onLogin, paths, or both"));
        }
        if phone.code.location == CodeIn::Body && phone.on_login && self.login.is_none() {
            errors.push(at.field("code").error(
                "in",
                "body with onLogin needs login.paths, so that only login requests' bodies are read",
            ));
        }
        let paths = at.field("paths");
        if phone.paths.len() > 32 {
            errors.push(paths.here("must list at most 32 paths"));
        }
        let login_paths = self
            .login
            .as_ref()
            .map(|l| l.paths.as_slice())
            .unwrap_or_default();
        for (i, p) in phone.paths.iter().enumerate() {
            validate::request_path(&paths.index(i), p, false, errors);
            if login_paths.contains(p) {
                errors.push(
                    paths
                        .index(i)
                        .here("is a login path: phone codes sent on logins need onLogin"),
                );
            }
        }
    }
}

impl TagPlugin {
    fn validate(&self, at: &Path, errors: &mut Vec<FieldError>) {
        let rules = at.field("rules");
        if self.rules.is_empty() || self.rules.len() > MAX_TAGS {
            errors.push(rules.here(format!("must hold 1 to {MAX_TAGS} rules")));
        }
        if self.rules.iter().filter(|r| r.trace_id).count() > 1 {
            errors.push(rules.here("at most one rule may set traceId"));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, rule) in self.rules.iter().enumerate() {
            let at = rules.index(i);
            if !validate::is_tag_name(&rule.tag) {
                errors.push(at.error(
                    "tag",
                    format!(
                        "must be 1 to {MAX_TAG_NAME_BYTES} bytes of lowercase letters, digits, _ - ."
                    ),
                ));
            }
            if !seen.insert(rule.tag.as_str()) {
                errors.push(at.error("tag", format!("tag {:?} is set by two rules", rule.tag)));
            }
            let name = &rule.from.name;
            if !validate::is_token(name) || name.bytes().any(|b| b.is_ascii_uppercase()) {
                errors.push(
                    at.field("from")
                        .error("name", "must be a lowercase parameter name"),
                );
            }
        }
    }
}
