{{- define "wxgate.name" -}}{{ .Release.Name | trunc 40 | trimSuffix "-" }}{{- end -}}
{{- define "wxgate.labels" -}}
app.kubernetes.io/name: wxgate
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}
{{- define "wxgate.selector" -}}
app.kubernetes.io/name: wxgate
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}
{{- define "wxgate.tlsSecret" -}}{{ include "wxgate.name" . }}-webhook-tls{{- end -}}
{{- define "wxgate.webhookService" -}}{{ include "wxgate.name" . }}-webhook{{- end -}}
