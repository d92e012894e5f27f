{{- define "fraudpipeline-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "fraudpipeline-operator.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: fraudpipeline
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "fraudpipeline-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "fraudpipeline-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "fraudpipeline-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- /*
What the operator needs, and nothing more. It writes the children of each FraudPipeline; it
holds the pod, service and config map rights it grants the Spark driver's Role, because
Kubernetes lets nobody grant rights they do not hold. It reads Secrets only to report a missing
one (get, never list or watch).
*/ -}}
{{- define "fraudpipeline-operator.rules" -}}
- apiGroups: [fraudpipeline.dev]
  resources: [fraudpipelines]
  verbs: [get, list, watch]
- apiGroups: [fraudpipeline.dev]
  resources: [fraudpipelines/status]
  verbs: [get, patch, update]
- apiGroups: [kafka.strimzi.io]
  resources: [kafkatopics]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [kafka.strimzi.io]
  resources: [kafkas]
  verbs: [get]
- apiGroups: [sparkoperator.k8s.io]
  resources: [sparkapplications]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [""]
  resources: [configmaps, services, serviceaccounts]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
- apiGroups: [""]
  resources: [pods, persistentvolumeclaims]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, rolebindings]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [monitoring.coreos.com]
  resources: [servicemonitors, podmonitors, prometheusrules]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [grafana.integreatly.org]
  resources: [grafanadashboards, grafanadatasources, grafanafolders]
  verbs: [get, list, watch, create, patch, update, delete]
{{- end -}}
