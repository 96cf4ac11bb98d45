# The bench's login plugin and binding, and a login for a credential; sourced by run.sh, pair.sh
# and open-api.sh.
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
credential() { # $1 sidecar port, $2 js_code -> the credential of a login (fails without one)
  local c
  c=$(curl -s -o /dev/null -D - -X POST -H "js_code: $2" "http://127.0.0.1:$1/login" | tr -d '\r' | sed -n 's/^user_session: //p')
  [ -n "$c" ] || { echo "no credential from the sidecar on port $1" >&2; return 1; }
  echo "$c"
}
