# The bench's login plugin and binding, sourced by run.sh and pair.sh.
# shellcheck shell=bash
manifests() { # $1 dir, $2 binding apis line, $3 more wechatMpLogin lines (indented 4 spaces)
  mkdir -p "$1"
  cat > "$1/m.yaml" <<YAML
apiVersion: wxgate.dev/v1alpha1
kind: GatewayPlugin
metadata: { name: mp-login }
spec:
  type: WeChatMpLogin
  wechatMpLogin:
    appId: wx0123456789abcdef
    credentialsSecretRef: { name: creds }
    login: { paths: [/login] }
${3:-}
---
apiVersion: wxgate.dev/v1alpha1
kind: PluginBinding
metadata: { name: b }
spec:
  pluginRef: { name: mp-login }
  targetRef: { name: app }
$2
---
apiVersion: v1
kind: Secret
metadata: { name: creds }
stringData: { appsecret: bench }
YAML
}
