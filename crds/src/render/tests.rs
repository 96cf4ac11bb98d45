//! The rules of render, one test each. Objects are written as the YAML a user would apply.

use super::*;
use crate::binding::{Method, PathMatch};
use crate::manifests::{self, Objects};
use crate::plugin::PluginType;

const APPSECRET: &str = "s3cr3t-appsecret-value";

fn login_plugin(ns: &str, name: &str, extra: &str) -> String {
    format!(
        r#"
apiVersion: wxgate.dev/v1alpha1
kind: GatewayPlugin
metadata: {{ name: {name}, namespace: {ns} }}
spec:
  type: WeChatMpLogin
  wechatMpLogin:
    appId: wx0123456789abcdef
    credentialsSecretRef: {{ name: creds }}
{extra}
---
apiVersion: v1
kind: Secret
metadata: {{ name: {name}-credential-keys, namespace: {ns} }}
data:
  active: MDEwMjAzMDQ=   # 01020304
  "01020304": AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=
"#
    )
}

fn creds(ns: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Secret
metadata: {{ name: creds, namespace: {ns} }}
stringData: {{ appsecret: {APPSECRET} }}
"#
    )
}

fn tag_plugin(ns: &str, name: &str) -> String {
    format!(
        r#"
apiVersion: wxgate.dev/v1alpha1
kind: GatewayPlugin
metadata: {{ name: {name}, namespace: {ns} }}
spec:
  type: Tag
  tag: {{ rules: [ {{ from: {{ in: header, name: x-user-id }}, tag: user }} ] }}
"#
    )
}

fn binding(ns: &str, name: &str, plugin: &str, service: &str, apis: &str) -> String {
    format!(
        r#"
apiVersion: wxgate.dev/v1alpha1
kind: PluginBinding
metadata: {{ name: {name}, namespace: {ns} }}
spec:
  pluginRef: {{ name: {plugin} }}
  targetRef: {{ kind: Service, name: {service} }}
{apis}
"#
    )
}

fn objects(docs: &[String]) -> Objects {
    manifests::parse(&docs.join("\n---\n")).expect("test manifests parse")
}

fn shop() -> ServiceRef {
    ServiceRef::new("shop", "shop-api")
}

fn render_docs(docs: &[String]) -> Result<Rendered, Vec<Problem>> {
    render(&shop(), objects(docs).inputs())
}

fn reasons(problems: &[Problem]) -> Vec<(Kind, &str, Reason, &str)> {
    problems
        .iter()
        .map(|p| (p.kind, p.object.as_str(), p.reason, p.field.as_str()))
        .collect()
}

#[test]
fn whole_service_binding_renders_one_route_and_the_plugin_with_defaults() {
    let r = render_docs(&[
        login_plugin("shop", "mp-login", ""),
        creds("shop"),
        binding("shop", "b", "mp-login", "shop-api", ""),
    ])
    .unwrap();
    assert_eq!(r.config.routes.len(), 1);
    let route = &r.config.routes[0];
    assert_eq!(
        (route.binding.as_str(), route.plugin.as_str()),
        ("shop/b", "shop/mp-login")
    );
    assert_eq!(route.api, None);
    let RenderedPlugin::WeChatMpLogin(login) = &r.config.plugins["shop/mp-login"] else {
        panic!("login plugin expected")
    };
    assert_eq!(login.code.name, "js_code");
    assert_eq!(login.session.name, "user_session");
    assert_eq!(login.session.ttl_minutes, 120);
    assert_eq!(login.forward.name, "x-wx-login");
    let secret = &r.secret.plugins["shop/mp-login"];
    assert_eq!(secret.app_id, "wx0123456789abcdef");
    assert_eq!(secret.app_secret.expose(), APPSECRET);
    assert_eq!(secret.keys.active.to_string(), "01020304");
    assert_eq!(secret.keys.signing().unwrap().1.expose()[31], 31);
}

#[test]
fn the_config_never_holds_secret_material() {
    let r = render_docs(&[
        login_plugin("shop", "mp-login", ""),
        creds("shop"),
        binding("shop", "b", "mp-login", "shop-api", ""),
    ])
    .unwrap();
    let config = serde_json::to_string(&r.config).unwrap();
    assert!(!config.contains(APPSECRET));
    assert!(!config.contains("AAECAwQF"));
    let secret = serde_json::to_string(&r.secret).unwrap();
    assert!(secret.contains(APPSECRET));
    assert!(
        !format!("{:?}", r.secret).contains(APPSECRET),
        "Debug must redact"
    );
}

#[test]
fn api_binding_renders_a_route_per_api_with_methods_normalized() {
    let r = render_docs(&[
        login_plugin("shop", "mp-login", ""),
        creds("shop"),
        binding(
            "shop",
            "b",
            "mp-login",
            "shop-api",
            "  apis:\n  - { path: /orders, match: Prefix, methods: [POST, GET] }\n  - { path: '/users/{id}', match: Template }",
        ),
    ])
    .unwrap();
    let apis: Vec<_> = r
        .config
        .routes
        .iter()
        .map(|r| r.api.clone().unwrap())
        .collect();
    assert_eq!(apis.len(), 2);
    assert_eq!(
        (apis[0].path.as_str(), apis[0].match_type),
        ("/users/{id}", PathMatch::Template)
    );
    assert_eq!(
        (apis[1].path.as_str(), apis[1].match_type),
        ("/orders", PathMatch::Prefix)
    );
    assert_eq!(apis[1].methods, Some(vec![Method::Get, Method::Post]));
}

#[test]
fn a_binding_for_another_service_or_namespace_is_ignored() {
    let r = render_docs(&[
        login_plugin("shop", "mp-login", ""),
        creds("shop"),
        binding("shop", "mine", "mp-login", "shop-api", ""),
        binding("shop", "other-service", "missing-plugin", "cart-api", ""),
        binding("elsewhere", "other-ns", "missing-plugin", "shop-api", ""),
    ])
    .unwrap();
    assert_eq!(r.config.routes.len(), 1);
    assert_eq!(r.config.routes[0].binding, "shop/mine");
}

#[test]
fn precedence_api_over_service_exact_over_template_over_prefix_longer_over_shorter() {
    let r = render_docs(&[
        login_plugin("shop", "a", ""),
        login_plugin("shop", "b", ""),
        creds("shop"),
        binding("shop", "0-whole", "a", "shop-api", ""),
        binding(
            "shop",
            "1-apis",
            "b",
            "shop-api",
            "  apis:
  - { path: /orders, match: Prefix }
  - { path: /orders/all, match: Prefix }
  - { path: '/orders/{id}', match: Template }
  - { path: '/orders/{id}/items', match: Template }
  - { path: /orders, match: Exact }
  - { path: /orders, match: Exact, methods: [GET] }",
        ),
    ])
    .unwrap();
    let order: Vec<String> = r
        .config
        .routes
        .iter()
        .map(|r| match &r.api {
            None => "service".into(),
            Some(a) => format!(
                "{:?} {}{}",
                a.match_type,
                a.path,
                if a.methods.is_some() {
                    " [methods]"
                } else {
                    ""
                }
            ),
        })
        .collect();
    assert_eq!(
        order,
        [
            "Exact /orders [methods]",
            "Exact /orders",
            "Template /orders/{id}/items",
            "Template /orders/{id}",
            "Prefix /orders/all",
            "Prefix /orders",
            "service",
        ]
    );
}

#[test]
fn missing_plugin_is_reported_on_the_binding() {
    let problems = render_docs(&[binding("shop", "b", "nope", "shop-api", "")]).unwrap_err();
    assert_eq!(
        reasons(&problems),
        [(
            Kind::PluginBinding,
            "shop/b",
            Reason::PluginNotFound,
            "spec.pluginRef.name"
        )]
    );
    assert_eq!(problems[0].message, "GatewayPlugin shop/nope not found");
}

#[test]
fn missing_secret_is_reported_on_the_plugin() {
    let problems = render_docs(&[
        login_plugin("shop", "mp-login", ""),
        binding("shop", "b", "mp-login", "shop-api", ""),
    ])
    .unwrap_err();
    assert_eq!(
        reasons(&problems),
        [(
            Kind::GatewayPlugin,
            "shop/mp-login",
            Reason::SecretNotFound,
            "spec.wechatMpLogin.credentialsSecretRef"
        )]
    );
}

#[test]
fn missing_secret_key_is_reported_with_the_entry_name() {
    let no_appsecret = r#"
apiVersion: v1
kind: Secret
metadata: { name: creds, namespace: shop }
stringData: { other: x }
"#;
    let problems = render_docs(&[
        login_plugin("shop", "mp-login", ""),
        no_appsecret.into(),
        binding("shop", "b", "mp-login", "shop-api", ""),
    ])
    .unwrap_err();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].reason, Reason::SecretKeyInvalid);
    assert!(
        problems[0]
            .message
            .contains(r#"no usable entry "appsecret""#),
        "{}",
        problems[0]
    );
}

#[test]
fn app_id_comes_from_the_secret_when_the_spec_has_none() {
    let plugin =
        login_plugin("shop", "mp-login", "").replace("    appId: wx0123456789abcdef\n", "");
    let secret = |appid: &str| {
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{ name: creds, namespace: shop }}\nstringData: {{ appid: \"{appid}\", appsecret: x }}\n"
        )
    };
    let b = binding("shop", "b", "mp-login", "shop-api", "");
    let r = render_docs(&[plugin.clone(), secret("wxfedcba9876543210\n"), b.clone()]).unwrap();
    assert_eq!(
        r.secret.plugins["shop/mp-login"].app_id,
        "wxfedcba9876543210"
    );

    let problems = render_docs(&[plugin, secret("not-an-appid"), b]).unwrap_err();
    assert_eq!(problems[0].reason, Reason::SecretKeyInvalid);
    assert!(problems[0].message.contains("is not an AppID"));
}

#[test]
fn missing_or_malformed_key_ring_is_reported() {
    let without_ring = login_plugin("shop", "mp-login", "");
    let without_ring = without_ring.split("---").next().unwrap().to_owned();
    let b = binding("shop", "b", "mp-login", "shop-api", "");
    let problems = render_docs(&[without_ring.clone(), creds("shop"), b.clone()]).unwrap_err();
    assert_eq!(problems[0].reason, Reason::CredentialKeysNotFound);
    assert!(
        problems[0]
            .message
            .contains("shop/mp-login-credential-keys")
    );

    let bad_ring = "apiVersion: v1\nkind: Secret\nmetadata: { name: mp-login-credential-keys, namespace: shop }\ndata: { active: MDEwMjAzMDQ=, \"01020304\": c2hvcnQ= }\n";
    let problems = render_docs(&[without_ring, bad_ring.into(), creds("shop"), b]).unwrap_err();
    assert_eq!(problems[0].reason, Reason::CredentialKeysInvalid);
}

#[test]
fn two_plugins_of_one_type_on_the_same_route_conflict() {
    let apis = "  apis: [ { path: '/users/{id}', match: Template } ]";
    let same_route = "  apis: [ { path: '/users/{uid}', match: Template } ]";
    let problems = render_docs(&[
        login_plugin("shop", "a", ""),
        login_plugin("shop", "b", ""),
        creds("shop"),
        binding("shop", "ba", "a", "shop-api", apis),
        binding("shop", "bb", "b", "shop-api", same_route),
    ])
    .unwrap_err();
    assert_eq!(
        reasons(&problems),
        [
            (
                Kind::PluginBinding,
                "shop/ba",
                Reason::Conflict,
                "spec.apis"
            ),
            (
                Kind::PluginBinding,
                "shop/bb",
                Reason::Conflict,
                "spec.apis"
            ),
        ]
    );
    assert!(
        problems[0].message.contains("shop/a, shop/b"),
        "{}",
        problems[0]
    );

    // Two whole-Service bindings of different login plugins conflict too.
    let problems = render_docs(&[
        login_plugin("shop", "a", ""),
        login_plugin("shop", "b", ""),
        creds("shop"),
        binding("shop", "ba", "a", "shop-api", ""),
        binding("shop", "bb", "b", "shop-api", ""),
    ])
    .unwrap_err();
    assert_eq!(problems.len(), 2);
    assert!(
        problems
            .iter()
            .all(|p| p.reason == Reason::Conflict && p.field == "spec")
    );
}

#[test]
fn same_plugin_twice_or_plugins_of_different_types_do_not_conflict() {
    let r = render_docs(&[
        login_plugin("shop", "a", ""),
        tag_plugin("shop", "t"),
        creds("shop"),
        binding("shop", "b1", "a", "shop-api", ""),
        binding(
            "shop",
            "b2",
            "a",
            "shop-api",
            "  apis: [ { path: /orders } ]",
        ),
        binding(
            "shop",
            "b3",
            "a",
            "shop-api",
            "  apis: [ { path: /orders } ]",
        ),
        binding("shop", "b4", "t", "shop-api", ""),
    ])
    .unwrap();
    let types: Vec<_> = r.config.routes.iter().map(|r| r.plugin_type).collect();
    assert_eq!(types.iter().filter(|t| **t == PluginType::Tag).count(), 1);
    assert_eq!(r.config.plugins.len(), 2);
    assert!(r.secret.plugins.contains_key("shop/a"));
    assert!(
        !r.secret.plugins.contains_key("shop/t"),
        "tag plugins need no secret"
    );
}

#[test]
fn a_manifest_without_namespace_is_in_default() {
    let strip = |s: String| s.replace(", namespace: default", "");
    let r = render(
        &ServiceRef::new("default", "shop-api"),
        objects(&[
            strip(login_plugin("default", "mp-login", "")),
            strip(creds("default")),
            strip(binding("default", "b", "mp-login", "shop-api", "")),
        ])
        .inputs(),
    )
    .unwrap();
    assert_eq!(r.config.routes[0].binding, "default/b");
    assert!(r.config.plugins.contains_key("default/mp-login"));
}

#[test]
fn invalid_specs_are_reported_with_field_paths() {
    let extra = "    code: { in: body }\n    session: { ttlMinutes: 60, renewBeforeMinutes: 60, name: X_WX_OPENID }";
    let problems = render_docs(&[
        login_plugin("shop", "mp-login", extra),
        creds("shop"),
        binding(
            "shop",
            "b",
            "mp-login",
            "shop-api",
            "  apis: [ { path: orders }, { path: '/a/{id}' } ]",
        ),
        binding("shop", "c", "mp-login", "shop-api", ""),
    ])
    .unwrap_err();
    assert_eq!(
        reasons(&problems),
        [
            (
                Kind::GatewayPlugin,
                "shop/mp-login",
                Reason::InvalidSpec,
                "spec.wechatMpLogin.login"
            ),
            (
                Kind::GatewayPlugin,
                "shop/mp-login",
                Reason::InvalidSpec,
                "spec.wechatMpLogin.session.name"
            ),
            (
                Kind::GatewayPlugin,
                "shop/mp-login",
                Reason::InvalidSpec,
                "spec.wechatMpLogin.session.renewBeforeMinutes"
            ),
            (
                Kind::PluginBinding,
                "shop/b",
                Reason::InvalidSpec,
                "spec.apis[0].path"
            ),
            (
                Kind::PluginBinding,
                "shop/b",
                Reason::InvalidSpec,
                "spec.apis[1].path"
            ),
        ]
    );
}

#[test]
fn problems_never_quote_secret_values() {
    let bad_appid = "apiVersion: v1\nkind: Secret\nmetadata: { name: creds, namespace: shop }\nstringData: { appid: wxCANARYCANARYCANA, appsecret: \"\" }\n";
    let plugin =
        login_plugin("shop", "mp-login", "").replace("    appId: wx0123456789abcdef\n", "");
    let problems = render_docs(&[
        plugin,
        bad_appid.into(),
        binding("shop", "b", "mp-login", "shop-api", ""),
    ])
    .unwrap_err();
    assert_eq!(problems.len(), 2);
    assert!(problems.iter().all(|p| !p.to_string().contains("CANARY")));
}

#[test]
fn version_changes_exactly_when_content_does() {
    let docs = |ttl: u32| {
        vec![
            login_plugin(
                "shop",
                "mp-login",
                &format!("    session: {{ ttlMinutes: {ttl} }}"),
            ),
            creds("shop"),
            binding("shop", "b", "mp-login", "shop-api", ""),
        ]
    };
    let a = render_docs(&docs(120)).unwrap();
    let b = render_docs(&docs(120)).unwrap();
    let c = render_docs(&docs(60)).unwrap();
    assert_eq!(a.config.version.len(), 16);
    assert_eq!(a.config.version, b.config.version);
    assert_ne!(a.config.version, c.config.version);
    assert_eq!(
        a.secret.version, c.secret.version,
        "the secret did not change"
    );
}

#[test]
fn rendered_documents_round_trip_through_json() {
    let r = render_docs(&[
        login_plugin("shop", "mp-login", ""),
        tag_plugin("shop", "t"),
        creds("shop"),
        binding(
            "shop",
            "b",
            "mp-login",
            "shop-api",
            "  apis: [ { path: /orders, methods: [GET] } ]",
        ),
        binding("shop", "t", "t", "shop-api", ""),
    ])
    .unwrap();
    let config: RenderedConfig =
        serde_json::from_str(&serde_json::to_string(&r.config).unwrap()).unwrap();
    let secret: RenderedSecret =
        serde_json::from_str(&serde_json::to_string(&r.secret).unwrap()).unwrap();
    assert_eq!(config, r.config);
    assert_eq!(secret, r.secret);
}

#[test]
fn no_bindings_renders_an_empty_config() {
    let r = render_docs(&[login_plugin("shop", "mp-login", ""), creds("shop")]).unwrap();
    assert!(r.config.routes.is_empty() && r.config.plugins.is_empty());
}

#[test]
fn more_tags_than_a_request_may_carry_are_noted() {
    let many_rules = (0..10)
        .map(|i| format!("{{ from: {{ in: query, name: q{i} }}, tag: t{i} }}"))
        .collect::<Vec<_>>()
        .join(", ");
    let tags = format!(
        r#"
apiVersion: wxgate.dev/v1alpha1
kind: GatewayPlugin
metadata: {{ name: tags, namespace: shop }}
spec:
  type: Tag
  tag: {{ rules: [ {many_rules} ] }}
"#
    );
    let render_with = |fields: &str| {
        render_docs(&[
            login_plugin("shop", "mp", &format!("    tags: {{ fields: [{fields}] }}")),
            creds("shop"),
            tags.clone(),
            binding("shop", "b1", "mp", "shop-api", ""),
            binding("shop", "b2", "tags", "shop-api", ""),
        ])
        .expect("renders")
        .config
        .tag_overflow()
    };
    assert_eq!(
        render_with("appid, openid, unionid, bucket, nickName, gender"),
        None,
        "6 + 10 = 16"
    );
    let note = render_with("appid, openid, unionid, bucket, nickName, gender, city").expect("17");
    assert!(
        note.contains("17 tags (7 WeChat tag fields + 10 Tag rules)"),
        "{note}"
    );
}

#[test]
fn phone_settings_render_with_defaults_and_bad_ones_are_reported() {
    let extra = "    login: { paths: [/login] }\n    phone: { paths: [/bind-phone] }";
    let rendered = render_docs(&[
        login_plugin("shop", "mp-login", extra),
        creds("shop"),
        binding("shop", "b", "mp-login", "shop-api", ""),
    ])
    .unwrap();
    let RenderedPlugin::WeChatMpLogin(login) = &rendered.config.plugins["shop/mp-login"] else {
        panic!("a login plugin");
    };
    let phone = login.phone.as_ref().unwrap();
    assert_eq!(
        (phone.code.location, phone.code.name.as_str()),
        (crate::plugin::CodeIn::Header, "phone_code")
    );
    assert!(phone.on_login && !phone.keep_in_credential);
    assert_eq!(phone.paths, ["/bind-phone"]);

    for (phone, field) in [
        ("{ onLogin: false }", "spec.wechatMpLogin.phone"),
        (
            "{ code: { name: js_code } }",
            "spec.wechatMpLogin.phone.code.name",
        ),
        (
            "{ code: { name: X-WX-PHONE-NUMBER } }",
            "spec.wechatMpLogin.phone.code.name",
        ),
        ("{ code: { in: body } }", "spec.wechatMpLogin.phone.code.in"),
        ("{ paths: [/login] }", "spec.wechatMpLogin.phone.paths[0]"),
        ("{ paths: [bind] }", "spec.wechatMpLogin.phone.paths[0]"),
    ] {
        let login = if field.ends_with(".in") {
            ""
        } else {
            "    login: { paths: [/login] }\n"
        };
        let extra = format!("{login}    phone: {phone}");
        let problems = render_docs(&[
            login_plugin("shop", "mp-login", &extra),
            creds("shop"),
            binding("shop", "b", "mp-login", "shop-api", ""),
        ])
        .unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, [field], "{phone}");
    }
}

/// A login plugin whose `wechatMpLogin` block is `block` (YAML indented by 4), with its keys.
fn login_block(name: &str, block: &str) -> String {
    format!(
        r#"
apiVersion: wxgate.dev/v1alpha1
kind: GatewayPlugin
metadata: {{ name: {name}, namespace: shop }}
spec:
  type: WeChatMpLogin
  wechatMpLogin:
{block}
---
apiVersion: v1
kind: Secret
metadata: {{ name: {name}-credential-keys, namespace: shop }}
data:
  active: MDEwMjAzMDQ=   # 01020304
  "01020304": AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=
"#
    )
}

#[test]
fn apps_and_platforms_are_checked_with_field_paths() {
    let cases = [
        (
            "    platform: qq\n    appId: wx0123456789abcdef\n    credentialsSecretRef: { name: creds }",
            "spec.wechatMpLogin.appId",
        ),
        (
            "    appId: \"1109876543\"\n    credentialsSecretRef: { name: creds }",
            "spec.wechatMpLogin.appId",
        ),
        (
            "    platform: qq\n    appId: \"1109876543\"\n    credentialsSecretRef: { name: creds }\n    phone: {}",
            "spec.wechatMpLogin.phone",
        ),
        (
            "    platform: qq\n    appId: \"1109876543\"\n    credentialsSecretRef: { name: creds }\n    openApi: true",
            "spec.wechatMpLogin.openApi",
        ),
        (
            "    credentialsSecretRef: { name: creds }\n    apps: [ { appId: wx0123456789abcdef, credentialsSecretRef: { name: creds } } ]",
            "spec.wechatMpLogin.apps",
        ),
        (
            "    code: { name: js_code }",
            "spec.wechatMpLogin.credentialsSecretRef",
        ),
        (
            "    apps:\n      - { appId: wx0123456789abcdef, credentialsSecretRef: { name: creds } }\n      - { appId: wx0123456789abcdef, credentialsSecretRef: { name: creds } }",
            "spec.wechatMpLogin.apps[1].appId",
        ),
        (
            "    appId: wx0123456789abcdef\n    credentialsSecretRef: { name: creds }\n    appIdParam: { name: X-WX-OPENID }",
            "spec.wechatMpLogin.appIdParam.name",
        ),
    ];
    for (block, field) in cases {
        let problems = render_docs(&[
            login_block("mp", block),
            creds("shop"),
            binding("shop", "b", "mp", "shop-api", ""),
        ])
        .unwrap_err();
        assert_eq!(
            reasons(&problems),
            [(Kind::GatewayPlugin, "shop/mp", Reason::InvalidSpec, field)],
            "{block}"
        );
    }
}

#[test]
fn a_qq_plugin_renders_its_platform_and_two_apps_render_both() {
    let qq =
        "    platform: qq\n    appId: \"1109876543\"\n    credentialsSecretRef: { name: creds }";
    let rendered = render_docs(&[
        login_block("mp", qq),
        creds("shop"),
        binding("shop", "b", "mp", "shop-api", ""),
    ])
    .unwrap();
    let RenderedPlugin::WeChatMpLogin(login) = &rendered.config.plugins["shop/mp"] else {
        panic!("a login plugin")
    };
    assert_eq!(login.platform, crate::plugin::Platform::QQ);
    let json = serde_json::to_string(&rendered.config).unwrap();
    assert!(json.contains(r#""platform":"qq""#), "{json}");
    assert_eq!(rendered.secret.plugins["shop/mp"].app_id, "1109876543");

    // The AppID of the second app comes from its Secret, like the one-app form's.
    let two = "    apps:\n      - { appId: wx0123456789abcdef, credentialsSecretRef: { name: creds } }\n      - { credentialsSecretRef: { name: creds-b } }";
    let creds_b = "apiVersion: v1\nkind: Secret\nmetadata: { name: creds-b, namespace: shop }\nstringData: { appid: wx00000000000000bb, appsecret: other }\n".to_owned();
    let rendered = render_docs(&[
        login_block("mp", two),
        creds("shop"),
        creds_b.clone(),
        binding("shop", "b", "mp", "shop-api", ""),
    ])
    .unwrap();
    let secret = &rendered.secret.plugins["shop/mp"];
    let apps: Vec<&str> = secret.apps().map(|(id, _)| id).collect();
    assert_eq!(apps, ["wx0123456789abcdef", "wx00000000000000bb"]);
    let json = serde_json::to_string(&rendered.config).unwrap();
    assert!(
        !json.contains("other"),
        "no APPSECRET in the config: {json}"
    );

    // The same AppID twice, once read from a Secret: refused.
    let creds_dup = creds_b.replace("wx00000000000000bb", "wx0123456789abcdef");
    let problems = render_docs(&[
        login_block("mp", two),
        creds("shop"),
        creds_dup,
        binding("shop", "b", "mp", "shop-api", ""),
    ])
    .unwrap_err();
    assert!(
        problems.iter().any(|p| p.message.contains("listed twice")),
        "{problems:?}"
    );
}
