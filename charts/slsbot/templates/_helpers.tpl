{{/*
The objects keep deploy/operator/'s fixed names (slsbot-operator, slsbot-admin-api, ...): the operator's defaults,
the runtimes' NetworkPolicies and the docs name them, and the CRDs and ClusterRoles are cluster-wide anyway, so a
cluster holds one release of this chart.
*/}}

{{/* deploy/operator/'s labels, the selector's among them; a selector is immutable: never change it. */}}
{{- define "slsbot.selectorLabels" -}}
app.kubernetes.io/name: slsbot-operator
{{- end }}

{{/* Every object's labels: deploy/operator/'s, and Helm's own. */}}
{{- define "slsbot.labels" -}}
{{ include "slsbot.selectorLabels" . }}
app.kubernetes.io/part-of: slsbot
{{ include "slsbot.helmLabels" . }}
{{- end }}

{{/* The labels Helm's conventions add; deploy/operator/ has none of them (the drift test sets them aside). */}}
{{- define "slsbot.helmLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{- define "slsbot.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/*
What `slsbot operator` calls, and nothing more, as deploy/operator/20-clusterrole.yaml and
deploy/operator-namespaced/20-role.yaml grant it (a test keeps all three the same); the comments there say why each
rule is needed. `get` on Secrets would let the operator's account read every Secret's data where it is granted:
watchNamespaces bounds that to the namespaces served.
*/}}
{{- define "slsbot.operatorRules" -}}
- apiGroups: [slsbot.io]
  resources: [strategies, tradingaccounts, riskpolicies, experiments]
  verbs: [get, list, watch, patch]
- apiGroups: [slsbot.io]
  resources: [strategies, experiments]
  verbs: [create]
- apiGroups: [slsbot.io]
  resources: [strategies]
  verbs: [delete]
- apiGroups: [slsbot.io]
  resources: [strategies/status, tradingaccounts/status, riskpolicies/status, experiments/status]
  verbs: [patch]
- apiGroups: [slsbot.io]
  resources: [incidents]
  verbs: [get, list, create, patch]
- apiGroups: [slsbot.io]
  resources: [incidents/status]
  verbs: [patch]
- apiGroups: [slsbot.io]
  resources: [strategies/finalizers, experiments/finalizers, backupschedules/finalizers]
  verbs: [update]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, create, patch, delete]
- apiGroups: [""]
  resources: [configmaps]
  verbs: [create, patch, delete]
- apiGroups: [""]
  resources: [services]
  verbs: [get, create, patch, delete]
- apiGroups: [""]
  resources: [persistentvolumeclaims]
  verbs: [create, delete]
- apiGroups: [slsbot.io]
  resources: [backupschedules]
  verbs: [get, list, watch]
- apiGroups: [slsbot.io]
  resources: [backupschedules/status]
  verbs: [patch]
- apiGroups: [""]
  resources: [serviceaccounts]
  verbs: [get, create]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles]
  verbs: [get, create, patch]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [rolebindings]
  verbs: [get, create]
- apiGroups: [batch]
  resources: [cronjobs]
  verbs: [get, list, create, patch, delete]
- apiGroups: [""]
  resources: [persistentvolumeclaims]
  verbs: [get]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [create, patch, delete]
- apiGroups: [""]
  resources: [pods]
  verbs: [list]
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, create, delete]
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, create, delete]
- apiGroups: [""]
  resources: [events]
  verbs: [create, list]
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get]
{{- end }}

{{/* What values.schema.json cannot say clearly: refused here with a message that names the value and the fix. */}}
{{- define "slsbot.validate" -}}
{{- if has (int .Values.adminApi.port) (list 8080 9090) }}
{{- fail (printf "adminApi.port: %v is the operator's %s port; pick another, e.g. 8443" .Values.adminApi.port (ternary "health" "metrics" (eq (int .Values.adminApi.port) 8080))) }}
{{- end }}
{{- $own := list "PYTHONUNBUFFERED" "SLSBOT_OPERATOR_CONTROL_KEY" "SLSBOT_OPERATOR_CONTROL_KEY_PREVIOUS" "SLSBOT_OPERATOR_CONTROL_KEY_GRACE_UNTIL" "SLSBOT_OPERATOR_STUDY_STORAGE" "SLSBOT_OPERATOR_OPERATOR_NAMESPACE" "SLSBOT_OPERATOR_ADMIN_API_PORT" }}
{{- range .Values.extraEnv }}
{{- if has .name $own }}
{{- fail (printf "extraEnv: %s is set by the chart itself; remove it (the admin API's port is adminApi.port, the control key is the Secret slsbot-operator-control-key)" .name) }}
{{- end }}
{{- end }}
{{- end }}
